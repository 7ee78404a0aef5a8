"""`manage.py run_chain --project SLUG [chain flags]`: the offline default chain on a project (SmolLM2-135M-Instruct,
prepared offline -> SFT on the best-ranked responses -> a reward model on the same tokenizer -> PPO), queued for the
worker (default) or here with a progress bar (--foreground)."""

from argparse import RawDescriptionHelpFormatter

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from rlhf.management.commands._training_cli import add_config_flags, config_from, creator, project_get, queue_or_train
from rlhf.models import TrainingRun
from rlhf.services.ppo import policy_run_create
from rlhf.training.registry import STAGES

COUNTS = lambda run: f"{run.export['sft_rows']} best responses, {run.export['train_pairs']} pairs"  # noqa: E731
EXAMPLES = """
examples:
  python manage.py run_chain --project demo                      # queued; `manage.py rlhf_worker` runs it
  python manage.py run_chain --project demo --foreground         # here, with a progress bar (CPU: tens of minutes)
  python manage.py run_chain --project demo --foreground --ppo-total-episodes 16 --sft-max-steps 4 --rm-max-steps 4
  python manage.py run_chain --project demo --base-model /path/to/Qwen2.5-0.5B-Instruct   # any causal LM
  python manage.py run_chain --project demo --foreground --base-model tiny   # the test fixture: seconds, word salad

The run's directory holds sft/, reward/ and ppo/ (and base/ for the tiny fixture); SmolLM2 is prepared into
MODELS_DIR on first use (`manage.py prepare_models` does it ahead). Its PPO policy is what
`generate_responses --model run:ID` samples from; its reward/ model can score responses. Every field of
rlhf.training.ppo_config.ChainConfig has a flag.
"""


class Command(BaseCommand):
    help = "The offline default chain SmolLM2 -> SFT -> reward model -> PPO on a project: queued, or --foreground."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, epilog=EXAMPLES, **kwargs
        )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, metavar="SLUG", help="The project to train on.")
        parser.add_argument("--name", default="", help="A name for the run.")
        parser.add_argument("--foreground", action="store_true", help="Train in this process, with a progress bar.")
        parser.add_argument("--test-ratio", type=float, default=None, help="Share of prompts held out (default 0.1).")
        parser.add_argument("--user", default=None, metavar="USERNAME", help="Record this user as the run's creator.")
        parser.add_argument("--site-url", default="http://127.0.0.1:8000", help="Base URL printed with the run page.")
        add_config_flags(parser, STAGES["chain"].config, set(STAGES["chain"].managed))

    def handle(self, *args, project, name, foreground, test_ratio, user, site_url, **options):
        export = {"test_ratio": test_ratio} if test_ratio is not None else {}
        try:
            run = policy_run_create(
                project=project_get(project), kind=TrainingRun.Kind.CHAIN, user=creator(user), name=name,
                config=config_from(options), export_options=export, enqueue=not foreground,
            )  # fmt: skip
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        run = queue_or_train(self, run, counts=COUNTS, site_url=site_url, foreground=foreground)
        if run is None:
            return
        metrics = run.metrics
        self.stdout.write(self.style.SUCCESS(f"Run {run.pk} succeeded: {run.output_dir}"))
        self.stdout.write(
            f"  reward-model accuracy {metrics.get('eval/accuracy')}; PPO held-out reward "
            f"{metrics.get('ppo/eval_reward_before')} -> {metrics.get('ppo/eval_reward_after')}; "
            f"KL {metrics.get('ppo/kl_final')} nats"
        )
