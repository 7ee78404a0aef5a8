"""`manage.py train_reward_model --project SLUG [config flags]`: snapshot the project's export and queue a reward-model
run (default, returns at once), or train it here with a progress bar (--foreground)."""

from argparse import RawDescriptionHelpFormatter

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.exports.options import STRATEGIES
from rlhf.management.commands._training_cli import (
    add_config_flags,
    config_from,
    creator,
    project_get,
    queue_or_train,
    reward_bar_metric,
)
from rlhf.services import MANAGED_CONFIG_FIELDS, training_run_create
from rlhf.training.config import RewardModelConfig

PAIRS = lambda run: f"{run.export['train_pairs']} training pairs, {run.export['test_pairs']} held out"  # noqa: E731
EXAMPLES = """
examples:
  # queue a run with the offline default model (MiniLM-L6); a worker trains it (`manage.py rlhf_worker`)
  python manage.py train_reward_model --project helpfulness
  # train here and now, with a progress bar
  python manage.py train_reward_model --project helpfulness --foreground --epochs 2 --learning-rate 5e-5
  # any Hugging Face id or local path; LoRA; majority-vote pairs; 20% of the prompts held out
  python manage.py train_reward_model --project helpfulness --base-model ./my-model --lora --lora-r 8 \\
      --strategy majority --test-ratio 0.2
  # the 'tiny' test fixture (a random model built locally), 5 steps: a smoke test in seconds
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
        add_config_flags(parser, RewardModelConfig, MANAGED_CONFIG_FIELDS, ALIASES)

    def handle(self, *args, project: str, name: str, foreground: bool, user, site_url: str, **options):
        export = {k: options[k] for k in ("strategy", "test_ratio") if options[k] is not None}
        try:
            run = training_run_create(
                project=project_get(project),
                user=creator(user),
                name=name,
                config=config_from(options),
                export_options=export,
                enqueue=not foreground,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        run = queue_or_train(self, run, counts=PAIRS, site_url=site_url, foreground=foreground, shows=reward_bar_metric)
        if run is None:
            return
        self.stdout.write(self.style.SUCCESS(f"Run {run.pk} succeeded. Model: {run.output_dir}"))
        self.stdout.write(f"  held-out accuracy: {run.accuracy}  human agreement: {run.config.get('human_agreement')}")
