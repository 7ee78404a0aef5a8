"""`manage.py compare_policy --run ID --project SLUG [--k 2]`: a blind comparison batch of a policy run against the
policy it started from, as a new labeling round; prints the reward model's predicted win rate."""

from argparse import RawDescriptionHelpFormatter

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from rlhf.management.commands._training_cli import project_get
from rlhf.services.comparison import policy_comparison_create
from rlhf.services.loop import PROMPT_SCOPES
from rlhf.services.policies import run_for

EXAMPLES = """
examples:
  python manage.py compare_policy --run 12 --project helpfulness                 # 2 + 2 responses, 8 prompts
  python manage.py compare_policy --run 12 --project helpfulness --k 3 --limit 50 --max-new-tokens 128
  python manage.py compare_policy --run 12 --project demo --k 2 --limit 6 && python manage.py load_demo --with-rankings
                                                   # the demo: its simulated labelers then rank the batch

Samples k responses per prompt from the run's policy and k from its reference (a PPO/DPO/GRPO run: its `policy`;
SFT: its base model; the default chain: its SFT stage), with the same seed, scores them with the run's reward model
(PPO, GRPO, chain) and adds them as a new round: labelers see 2k responses in their own shuffled order, never the
model names. Once ranked, the run page, the agreement page and GET /api/runs/ID/comparisons/ show the policy's win
rate against the reference (95% interval, bootstrap over prompts) next to the reward model's prediction.
"""


def _percent(value) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


class Command(BaseCommand):
    help = "Blind comparison batch: a policy run's responses against its reference's, as a new labeling round."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, epilog=EXAMPLES, **kwargs
        )

    def add_arguments(self, parser):
        parser.add_argument("--run", required=True, type=int, metavar="ID", help="A succeeded policy run.")
        parser.add_argument("--project", required=True, metavar="SLUG", help="Whose prompts and labelers.")
        parser.add_argument("--k", type=int, default=2, help="Responses per prompt from each model (default 2).")
        parser.add_argument("--limit", type=int, default=8, help="At most this many prompts (default 8).")
        parser.add_argument("--prompts", choices=PROMPT_SCOPES, default="all",
                            help="all: any original prompt (default); train: the export's train side.")  # fmt: skip
        parser.add_argument("--max-new-tokens", type=int, default=64, help="Tokens per response (default 64).")
        parser.add_argument("--temperature", type=float, default=0.7, help="Sampling temperature (default 0.7).")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, run, project, k, limit, prompts, max_new_tokens, temperature, seed, **options):
        target = project_get(project)
        from tqdm import tqdm

        bar = tqdm(total=0, unit="prompt", desc="sampling and scoring", file=self.stderr._out)

        def show(done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        try:
            result = policy_comparison_create(
                project=target, run=run_for(None, run), k=k, scope=prompts, limit=limit, max_new_tokens=max_new_tokens,
                temperature=temperature, seed=seed, progress=show,
            )  # fmt: skip
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        finally:
            bar.close()
        self.stdout.write(self.style.SUCCESS(
            f"Round {result.round} of '{target.slug}': {result.prompts} prompts, {result.responses} responses "
            f"({k} from the policy and {k} from the reference per prompt), blind."
        ))  # fmt: skip
        if result.rm:
            rm = result.rm
            interval = f" (95% interval {_percent(rm['low'])}–{_percent(rm['high'])})" if rm["low"] is not None else ""
            self.stdout.write(f"Reward model's predicted win rate of the policy: {_percent(rm['win_rate'])}{interval}.")
        else:
            self.stdout.write("The run has no reward model: no predicted win rate.")
        self.stdout.write(f"Once ranked: the run page (/runs/{run}/) shows the labelers' win rate.")
