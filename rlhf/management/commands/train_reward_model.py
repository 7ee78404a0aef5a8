"""`manage.py train_reward_model --project SLUG [config flags]`: snapshot the project's export and queue a reward-model
run (default, returns at once), or train it here with a progress bar (--foreground)."""

import types
from argparse import BooleanOptionalAction, RawDescriptionHelpFormatter
from dataclasses import fields
from typing import Union, get_args, get_origin

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from annotation.exports.options import STRATEGIES
from annotation.models import Project
from rlhf.models import TrainingRun
from rlhf.services import MANAGED_CONFIG_FIELDS, training_run_create, training_run_execute
from rlhf.training.config import RewardModelConfig
from rlhf.training.progress import ProgressEvent

EXAMPLES = """
examples:
  # queue a run with the offline default model (MiniLM-L6); a worker trains it (`manage.py rlhf_worker`)
  python manage.py train_reward_model --project helpfulness
  # train here and now, with a progress bar
  python manage.py train_reward_model --project helpfulness --foreground --epochs 2 --learning-rate 5e-5
  # any Hugging Face id or local path; LoRA; majority-vote pairs; 20% of the prompts held out
  python manage.py train_reward_model --project helpfulness --base-model ./my-model --lora --lora-r 8 \\
      --strategy majority --test-ratio 0.2
  # a tiny model built locally, 5 steps: a smoke test in seconds
  python manage.py train_reward_model --project helpfulness --base-model tiny --max-steps 5 --foreground

Every field of rlhf.training.config.RewardModelConfig has a flag (--max-length, --use-margin, --seed, ...);
unset flags keep the dataclass defaults. The run's page is printed; `--foreground` also prints the final metrics.
"""
ALIASES = {
    "num_train_epochs": ["--epochs"],
    "per_device_train_batch_size": ["--batch-size"],
    "use_lora": ["--lora"],
    "use_margin": ["--margin"],
}


def _flag_type(dc_field):
    kind = dc_field.type
    if get_origin(kind) in (Union, types.UnionType):
        kind = next(a for a in get_args(kind) if a is not type(None))
    return kind


class Command(BaseCommand):
    help = "Train a reward model on a project's preference export: queued for the worker, or --foreground."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, epilog=EXAMPLES, **kwargs
        )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, metavar="SLUG", help="The project to export and train on.")
        parser.add_argument("--name", default="", help="A name for the run (default: '<slug> reward model #ID').")
        parser.add_argument("--foreground", action="store_true", help="Train in this process, with a progress bar.")
        parser.add_argument("--user", default=None, metavar="USERNAME", help="Record this user as the run's creator.")
        parser.add_argument("--site-url", default="http://127.0.0.1:8000", help="Base URL printed with the run page.")
        export = parser.add_argument_group("export (the snapshot the run trains on)")
        export.add_argument("--strategy", choices=STRATEGIES, default=None, help="How rankings become pairs.")
        export.add_argument("--test-ratio", type=float, default=None, help="Share of prompts held out (default 0.1).")
        config = parser.add_argument_group("training config (rlhf.training.config.RewardModelConfig)")
        for dc_field in fields(RewardModelConfig):
            if dc_field.name in MANAGED_CONFIG_FIELDS:
                continue
            flags = [f"--{dc_field.name.replace('_', '-')}", *ALIASES.get(dc_field.name, [])]
            kind = _flag_type(dc_field)
            extra = {"action": BooleanOptionalAction} if kind is bool else {"type": kind}
            help_text = dc_field.metadata.get("help", "").replace("%", "%%") + f" (default: {dc_field.default!r})"
            config.add_argument(*flags, dest=f"cfg_{dc_field.name}", default=None, help=help_text, **extra)

    def handle(self, *args, project: str, name: str, foreground: bool, user, site_url: str, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project with slug {project!r}.")
        creator = get_user_model().objects.filter(username=user).first() if user else None
        if user and creator is None:
            raise CommandError(f"No user {user!r}.")
        config = {k.removeprefix("cfg_"): v for k, v in options.items() if k.startswith("cfg_") and v is not None}
        export = {k: options[k] for k in ("strategy", "test_ratio") if options[k] is not None}
        try:
            run = training_run_create(
                project=target, user=creator, name=name, config=config, export_options=export, enqueue=not foreground
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        url = site_url.rstrip("/") + reverse("rlhf:run-detail", args=[run.pk])
        pairs = f"{run.export['train_pairs']} training pairs, {run.export['test_pairs']} held out"
        if not foreground:
            self.stdout.write(f"Run {run.pk} queued ({pairs}): {url}")
            self.stdout.write("A worker trains it: python manage.py rlhf_worker")
            return
        self.stdout.write(f"Run {run.pk} ({pairs}), training here: {url}")
        self._foreground(run)

    def _foreground(self, run: TrainingRun) -> None:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="step", desc=f"run {run.pk}", file=self.stderr._out, dynamic_ncols=True)

        def show(event: ProgressEvent) -> None:
            if event.total_steps and bar.total != event.total_steps:
                bar.total = event.total_steps
            bar.n = min(event.step, bar.total or event.step)
            shown = {k.split("/")[-1]: f"{v:.4g}" for k, v in event.metrics.items() if "loss" in k or "accuracy" in k}
            bar.set_postfix(shown, refresh=False)
            bar.refresh()
            if event.message:
                bar.write(event.message, file=self.stderr._out)

        try:
            status = training_run_execute(run_id=run.pk, observer=show)
        finally:
            bar.close()
        run.refresh_from_db()
        if status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"Run {run.pk} {status}: {run.error.splitlines()[0] if run.error else ''}")
        accuracy = run.accuracy
        self.stdout.write(self.style.SUCCESS(f"Run {run.pk} succeeded. Model: {run.output_dir}"))
        self.stdout.write(f"  held-out accuracy: {accuracy}  human agreement: {run.config.get('human_agreement')}")
