"""`manage.py score_responses --run ID [--project SLUG]`: store a trained reward model's score for every response of
a project, in batches, with a progress bar."""

from argparse import RawDescriptionHelpFormatter

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from annotation.models import Project
from rlhf.models import TrainingRun
from rlhf.selectors import disagreements_get
from rlhf.services import response_scores_compute
from rlhf.services.boundary import boundary_warnings, prompts_boundary_report, scoring_prompts_get

EXAMPLES = """
examples:
  python manage.py score_responses --run 7 --project helpfulness
  python manage.py score_responses --run 7                 # the project the run was trained on
  python manage.py score_responses --run 7 --batch-size 64

Scores replace this run's earlier scores of the same responses. The page /runs/ID/disagreements/ then lists the
prompts where the model's order and the labelers' majority disagree most.
"""


class Command(BaseCommand):
    help = "Score every response of a project with a run's reward model and store the scores."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, epilog=EXAMPLES, **kwargs
        )

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, required=True, metavar="ID", help="A succeeded reward-model run.")
        parser.add_argument("--project", default=None, metavar="SLUG", help="Default: the run's project.")
        parser.add_argument("--batch-size", type=int, default=32, help="Responses per forward pass (default 32).")

    def handle(self, *args, run: int, project: str | None, batch_size: int, **options):
        training_run = TrainingRun.objects.filter(pk=run).select_related("project").first()
        if training_run is None:
            raise CommandError(f"No run {run}.")
        target = Project.objects.filter(slug=project).first() if project else training_run.project
        if target is None:
            raise CommandError(f"No project {project!r}." if project else "The run has no project: pass --project.")
        boundary = prompts_boundary_report(run=training_run, prompts=scoring_prompts_get(project=target))
        for warning in boundary_warnings(boundary):  # most prompts out of the reward model's range
            self.stderr.write(self.style.WARNING(f"WARNING: {warning}"))
        from tqdm import tqdm

        bar = tqdm(total=0, unit="response", desc=f"scoring with run {run}", file=self.stderr._out)

        def show(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            scored = response_scores_compute(run=training_run, project=target, batch_size=batch_size, progress=show)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        finally:
            bar.close()
        report = disagreements_get(run=training_run, project=target, limit=0)
        rate = report["disagreement_rate"]
        self.stdout.write(self.style.SUCCESS(f"Scored {scored} responses of '{target.slug}' with run {run}."))
        if boundary and boundary.get("available"):
            self.stdout.write(
                f"  prompts out of the reward model's range: {boundary['share_out_of_range']:.1%} "
                f"({boundary['out_of_range_count']} of {boundary['checked']})"
            )
        self.stdout.write(
            f"  pairwise disagreement with the labelers' majority: {'—' if rate is None else f'{rate:.3f}'} "
            f"over {report['pairs_compared']} pairs; see {reverse('rlhf:run-disagreements', args=[run])}"
        )
