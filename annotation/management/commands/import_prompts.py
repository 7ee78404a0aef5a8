"""`manage.py import_prompts FILE --project SLUG`: import prompts with responses (or pairwise files), all-or-nothing."""

from argparse import RawDescriptionHelpFormatter
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.services.imports import ImportFailed, ImportResult, prompts_import
from annotation.services.projects import project_get_or_create

EXAMPLES = """
file formats (see annotation/importing.py):
  JSONL   {"prompt": "text" or [{"role": "user", "content": "..."}], "responses": ["...", {"text": "...",
           "model": "policy-v1"}], "category": "qa", "source": "...", "id": "..."}   (2 to 10 responses)
  CSV     header: prompt, response_1 .. response_10 [, model_1 .., category, source, id]
  pairwise (TRL preference format), JSONL or CSV: prompt, chosen, rejected -> 2 responses and one imported ranking

examples:
  python manage.py import_prompts prompts.jsonl --project helpfulness
  python manage.py import_prompts prompts.csv --project helpfulness --name "Helpfulness, round 2"
  python manage.py import_prompts ../shared/data/hh_helpful_dev.jsonl --project hh-dev --kind pairwise
  python manage.py import_prompts crowd.jsonl --project helpfulness --on-refusal per_line

A file with any bad line imports nothing: every bad line is listed with its line number, and the exit status is 1.
Exact duplicates (same prompt and responses, in the file or already in the project) are skipped with a warning.
The project's hygiene checks (cap per `author`, personal information, near duplicates, evaluation sets) decide every
new line: a refused line fails the file, or with --on-refusal per_line is left out and listed (docs/labeling-modes.md).
"""


class Command(BaseCommand):
    help = "Import prompts with candidate responses from JSONL or CSV into a project (created if missing)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, epilog=EXAMPLES, **kwargs
        )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="A .jsonl (or .json/.ndjson) or .csv file.")
        parser.add_argument("--project", required=True, metavar="SLUG", help="Project slug; created if missing.")
        parser.add_argument(
            "--kind",
            choices=["auto", "prompts", "pairwise"],
            default="auto",
            help="File kind (default: auto, detected from the first line or the CSV header).",
        )
        parser.add_argument("--name", default="", help="Name of the project when it is created (default: from SLUG).")
        parser.add_argument(
            "--on-refusal", choices=["all_or_nothing", "per_line"], default=None,
            help="A line the hygiene checks refuse fails the file, or is left out and reported (default: the "
            "project's import_refusals).",
        )  # fmt: skip

    def handle(self, *args, file: Path, project: str, kind: str, name: str, on_refusal: str | None, **options):
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            target, created = project_get_or_create(slug=project, name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        try:
            # streamed, in short transactions (labelers keep working meanwhile): see prompts_import
            with file.open("rb") as stream:
                result = prompts_import(
                    project=target, file=stream, filename=file.name, kind=kind, on_refusal=on_refusal
                )
        except ImportFailed as exc:
            self._forget(target, created)
            raise CommandError(
                f"{len(exc.lines)} error(s) in {file.name}; nothing was imported:\n" + "\n".join(exc.lines)
            ) from None
        except ValidationError as exc:
            self._forget(target, created)
            raise CommandError("; ".join(exc.messages)) from None
        except BaseException:
            self._forget(target, created)
            raise
        self._summary(target, created, result)

    @staticmethod
    def _forget(project, created: bool) -> None:
        """A failed import leaves no new project behind either."""
        if created:
            project.delete()

    def _summary(self, project, created: bool, result: ImportResult) -> None:
        state = "created" if created else "existing"
        self.stdout.write(f"Project '{project.slug}' ({state}), {result.kind} file:")
        self.stdout.write(f"  prompts created:    {result.prompts_created}")
        self.stdout.write(f"  responses created:  {result.responses_created}")
        self.stdout.write(f"  rankings created:   {result.rankings_created}")
        self.stdout.write(f"  duplicates skipped: {result.duplicates_skipped}")
        self.stdout.write(f"  prompts refused:    {result.prompts_refused}")
        self.stdout.write(f"  prompts redacted:   {result.prompts_redacted}")
        self.stdout.write(f"  warnings:           {len(result.warnings)}")
        for warning in result.warnings:
            self.stdout.write(self.style.WARNING(f"    {warning}"))
        self.stdout.write(self.style.SUCCESS("Done."))
