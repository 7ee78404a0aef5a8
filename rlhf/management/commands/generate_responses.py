"""`manage.py generate_responses --model RUN_OR_PATH --project SLUG [--k N]`: sample responses from a policy for a
project's prompts and add them as a new labeling round (their model recorded, hidden from labelers)."""

from argparse import RawDescriptionHelpFormatter

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from rlhf.management.commands._training_cli import project_get
from rlhf.services.boundary import boundary_warnings
from rlhf.services.loop import PROMPT_SCOPES, responses_generate
from rlhf.services.policies import RUN_REF, policy_resolve

EXAMPLES = """
examples:
  python manage.py generate_responses --model run:12 --project helpfulness          # 4 per prompt, train side
  python manage.py generate_responses --model 12 --project helpfulness --k 2 --max-new-tokens 128
  python manage.py generate_responses --model ./my-policy --project helpfulness --prompts all --no-originals

Each prompt comes back in a new round (the project's last round + 1) with the new responses and, unless
--no-originals, its old responses, so labelers rank old and new side by side; the model leaderboard then shows how
the new policy compares. Responses record `run-<id>:<name>` (or the path) as their model; labelers never see it.
"""


class Command(BaseCommand):
    help = "Sample responses from a policy (a run or a path) into a new labeling round of a project."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, epilog=EXAMPLES, **kwargs
        )

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, metavar="RUN_OR_PATH",
                            help="'run:ID' / ID of a succeeded policy run, a local path or a model id.")  # fmt: skip
        parser.add_argument("--project", required=True, metavar="SLUG")
        parser.add_argument("--k", type=int, default=4, help="Responses sampled per prompt (default 4).")
        parser.add_argument("--max-new-tokens", type=int, default=64, help="Tokens per response (default 64).")
        parser.add_argument("--temperature", type=float, default=0.7, help="Sampling temperature (default 0.7).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--prompts", choices=PROMPT_SCOPES, default="train",
                            help="train: the train side of the split (default); all.")  # fmt: skip
        parser.add_argument("--limit", type=int, default=None, help="At most this many prompts.")
        parser.add_argument("--round", type=int, default=None, help="The new round's number (default: last + 1).")
        parser.add_argument("--no-originals", action="store_true", help="Only the new responses in the round.")

    def handle(self, *args, model, project, k, max_new_tokens, temperature, seed, prompts, limit, round,
               no_originals, **options):  # fmt: skip
        target = project_get(project)
        from tqdm import tqdm

        bar = tqdm(total=0, unit="prompt", desc="sampling", file=self.stderr._out)

        def show(done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        try:
            source = policy_resolve(policy=model)[1] if RUN_REF.match(model.strip()) else model
            result = responses_generate(
                project=target, model=source, k=k, round=round, scope=prompts, include_original=not no_originals,
                max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, limit=limit, progress=show,
            )  # fmt: skip
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        finally:
            bar.close()
        self.stdout.write(self.style.SUCCESS(
            f"Round {result.round} of '{target.slug}': {result.prompts} prompts, {result.generated} new responses "
            f"from {result.model_name}" + (f", {result.copied} earlier responses alongside." if result.copied else ".")
        ))  # fmt: skip
        for warning in boundary_warnings(result.boundary):  # most prompts out of the policy's reward model's range
            self.stderr.write(self.style.WARNING(f"WARNING: {warning}"))
