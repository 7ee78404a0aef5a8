from argparse import RawDescriptionHelpFormatter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.services.imports import ImportFailed
from annotation.services.projects import project_get_or_create
from annotation.services.ranking_imports import rankings_import

EXAMPLES = """
File format: one JSON object per line and annotator with `item_id`, `annotator_id`, `outputs` {name: text},
`ranks` {name: rank} (1 = best; ties share a rank; averaged ranks like 2.5 become dense ranks) and optionally
`source` (the prompt text); other fields are kept as metadata. Output names become the responses' model names,
annotators become (inactive) labelers of the project. A file with any bad line imports nothing.

examples:
  python manage.py import_rankings ../shared/data/wmt23_ende_3raters.jsonl --project wmt23-ende
  python manage.py import_rankings ratings.jsonl --project my-eval
"""


class Command(BaseCommand):
    help = "Import existing multi-labeler rankings (creates the project if it does not exist)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, epilog=EXAMPLES, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="JSONL file, one line per item and annotator.")
        parser.add_argument("--project", required=True, help="Project slug (created when missing).")

    def handle(self, *args, file: Path, project: str, **options):
        if not file.exists():
            raise CommandError(f"No such file: {file}")
        target, created = project_get_or_create(slug=project)
        try:
            result = rankings_import(project=target, data=file.read_bytes())
        except ImportFailed as exc:
            if created:
                target.delete()
            raise CommandError("nothing was imported:\n" + "\n".join(exc.lines)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{'Created' if created else 'Updated'} project {target.slug}: {result.prompts_created} prompts, "
                f"{result.responses_created} responses, {result.rankings_created} rankings, "
                f"{result.labelers_created} new labelers, {result.items_skipped} items already present (skipped)."
            )
        )
