"""`manage.py eval_set FILE --project SLUG --name NAME`: upload (or replace) an evaluation set; `--list` shows them."""

from argparse import RawDescriptionHelpFormatter
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.models import EvalSet, Project
from annotation.services.hygiene import eval_set_upload

EXAMPLES = """
file formats:
  JSONL   one prompt per line: {"prompt": "text" or [{"role": "user", "content": "..."}]} or a JSON string
  .txt    one prompt per line

examples:
  python manage.py eval_set heldout.jsonl --project helpfulness --name heldout-v1
  python manage.py eval_set mmlu_questions.txt --project helpfulness --name mmlu
  python manage.py eval_set --list --project helpfulness

An evaluation set holds prompts that must never be trained on. New prompts (written or imported) that match one are
refused; the project's prompts that already match one are listed here and left out of every export (counted in
export_meta.json as left_out.eval_set_prompts). Uploading under an existing name replaces that set. A file with a bad
line stores nothing: every bad line is listed with its line number, and the exit status is 1.
"""


class Command(BaseCommand):
    help = "Upload an evaluation set (prompts never to train on) to a project, or list the project's sets."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, epilog=EXAMPLES, **kwargs
        )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, nargs="?", help="A .jsonl file (or .txt, one prompt per line).")
        parser.add_argument("--project", required=True, metavar="SLUG", help="The project's slug.")
        parser.add_argument("--name", default="", help="The set's name (default: the file's name without suffix).")
        parser.add_argument(
            "--list", dest="show", action="store_true", help="List the project's evaluation sets and stop."
        )

    def handle(self, *args, file: Path | None, project: str, name: str, show: bool, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project with the slug {project!r}.")
        if show:
            for eval_set in EvalSet.objects.filter(project=target):
                self.stdout.write(
                    f"{eval_set.name}\t{len(eval_set.prompts)} prompts\t{len(eval_set.matches)} matching project "
                    f"prompts\t{eval_set.filename}\t{eval_set.created_at:%Y-%m-%d %H:%M}"
                )
            return
        if file is None:
            raise CommandError("Name a file to upload, or pass --list.")
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            eval_set = eval_set_upload(project=target, name=name or file.stem, filename=file.name,
                                       data=file.read_bytes())  # fmt: skip
        except ValidationError as exc:
            raise CommandError(f"{file.name}: nothing was stored.\n" + "\n".join(exc.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"Stored {eval_set.name!r}: {len(eval_set.prompts)} prompts."))
        if eval_set.matches:
            self.stdout.write(self.style.WARNING(
                f"{len(eval_set.matches)} of the project's prompts match one of them; they are left out of exports:"
            ))  # fmt: skip
            for match in eval_set.matches[:50]:
                self.stdout.write(
                    f"  prompt {match['prompt']} ~ item {match['item']} (similarity {match['similarity']:.2f})"
                )
            if len(eval_set.matches) > 50:
                self.stdout.write(f"  … and {len(eval_set.matches) - 50} more (GET /api/projects/{project}/eval-sets/)")
