from argparse import RawDescriptionHelpFormatter
from datetime import datetime, time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from annotation import exports
from annotation.models import Project
from annotation.services.exports import ExportFilters, preference_export_create

EXAMPLES = """
Writes into --out: train.jsonl + test.jsonl (or .parquet; `hf`: a datasets DatasetDict saved with save_to_disk;
`raw`: rankings.jsonl, one line per ranking) and export_meta.json. Gold prompts, excluded labelers and superseded
ranking versions are always left out. `openrlhf` / `verl`: a hand-off bundle for that Ray-based PPO engine (data in
its format, launch scripts with the platform's hyper-parameters, a README pinning the engine's version) to copy to a
GPU cluster. See docs/export.md.

examples:
  python manage.py export_preferences --project wmt23-ende --format jsonl --out exports/wmt
  python manage.py export_preferences --project chat --format hf --out exports/chat-hf --strategy majority
  python manage.py export_preferences --project chat --format parquet --out exports/p --margin rank-diff \\
      --min-labelers 3 --min-agreement 0.6 --category qa,coding --since 2025-01-01 --test-ratio 0.05
  python manage.py export_preferences --project chat --format jsonl --out exports/safe \\
      --exclude-flags all_bad,cant_judge --unsafe-file exports/unsafe.jsonl
  python manage.py export_preferences --project chat --format raw --out exports/raw --exclude-flags none
  python manage.py export_preferences --project chat --format openrlhf --out bundles/chat-openrlhf
  python manage.py export_preferences --project chat --format verl --out bundles/chat-verl --strategy majority
  python manage.py export_preferences --project form --dataset ratings --format parquet --out exports/ratings
  python manage.py export_preferences --project form --pairs-from scores --margin score-diff --out exports/scored
  python manage.py export_preferences --project ab --margin strength --strength-margins 1,0.67,0.33,0 --out exports/ab
"""


def _csv(cast=str):
    def parse(value: str) -> tuple:
        return tuple(cast(part.strip()) for part in value.split(",") if part.strip())

    return parse


def _moment(end_of_day: bool):
    def parse(value: str) -> datetime:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"not an ISO date or datetime: {value!r}") from exc
        if len(value) <= 10:  # a bare date: the whole day counts
            moment = datetime.combine(moment.date(), time.max if end_of_day else time.min)
        return moment if timezone.is_aware(moment) else timezone.make_aware(moment)

    return parse


class Command(BaseCommand):
    help = "Export a project's rankings as a preference dataset (TRL's prompt/chosen/rejected) with a train/test split."

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, epilog=EXAMPLES, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument(
            "--format",
            dest="fmt",
            choices=[*exports.FORMATS, *exports.BUNDLE_FORMATS],
            default="jsonl",
            help="jsonl (default), parquet, hf, raw; openrlhf or verl: a hand-off bundle for that engine.",
        )
        parser.add_argument("--out", type=Path, required=True, help="Output directory (created).")
        parser.add_argument("--strategy", choices=exports.STRATEGIES, default="all",
                            help="all: every labeler's pairs; majority: one row per response pair, majority "
                                 "direction; consensus: pairs of the mean-rank consensus (default: all).")  # fmt: skip
        parser.add_argument(
            "--ties",
            choices=exports.TIES,
            default="drop",
            help="keep: tied responses give a row with tie=true (TRL cannot train on those).",
        )
        parser.add_argument(
            "--margin",
            choices=exports.MARGINS,
            default="none",
            help="TRL's margin column: rank-diff; score-diff (chosen's score minus rejected's, per-response form); "
            "strength (pairwise: the strength's margin, see --strength-margins). The last two need --strategy all.",
        )
        parser.add_argument(
            "--dataset",
            choices=exports.DATASETS,
            default="pairs",
            help="pairs (default); ratings: one row per response per labeler with its score, labels and texts.",
        )
        parser.add_argument(
            "--pairs-from",
            choices=exports.PAIRS_FROM,
            default="ranks",
            help="scores: each labeler's per-response scores order the pairs (equal scores tie) instead of the ranks.",
        )
        parser.add_argument(
            "--strength-margins",
            default=None,
            help="Margin of strength 1..4 for --margin strength, e.g. 3,2,1,0 (default: the project's setting).",
        )
        parser.add_argument(
            "--columns",
            choices=exports.COLUMNS,
            default="full",
            help="full: also prompt_id, chosen_id, rejected_id, category, ...; trl: TRL's only.",
        )
        parser.add_argument(
            "--test-ratio",
            type=float,
            default=0.1,
            help="Share of prompts in test (default 0.1; above 0, at least min(3, ceil(ratio x prompts)) prompts).",
        )
        parser.add_argument("--seed", type=int, default=0, help="Seed of the split hash (default 0).")
        parser.add_argument(
            "--near-dup-threshold",
            type=float,
            default=0.8,
            help="Jaccard (word 5-shingles) from which prompts share a side; 1: exact only.",
        )
        parser.add_argument("--min-labelers", type=int, default=1, help="Prompts need this many labelers.")
        parser.add_argument(
            "--min-agreement",
            type=float,
            default=None,
            help="Prompts need this pairwise agreement (ties dropped, 0-1).",
        )
        parser.add_argument(
            "--exclude-flags",
            default="all",
            help="Leave out rankings with these flags: all (default), none, or a list: unsafe,all_bad",
        )
        parser.add_argument(
            "--unsafe-file",
            type=Path,
            default=None,
            help="Write rankings flagged 'unsafe' here (as pairs) instead of leaving them out.",
        )
        parser.add_argument("--guideline-version", type=_csv(int), default=(), help="e.g. 2 or 2,3")
        parser.add_argument("--since", type=_moment(False), default=None, help="Rankings made from (ISO date/time).")
        parser.add_argument("--until", type=_moment(True), default=None, help="Rankings made until (inclusive).")
        parser.add_argument("--category", type=_csv(), default=(), help="Prompt categories, e.g. qa,coding")
        parser.add_argument("--round", type=_csv(int), default=(), help="Labeling rounds, e.g. 1,2")
        parser.add_argument(
            "--objective", choices=["helpfulness", "harmlessness"], default="helpfulness",
            help="helpfulness (default): every prompt but the red-team ones; harmlessness: the red-team prompts' "
            "rankings only, a separate dataset (export it into its own --out).",
        )  # fmt: skip
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {opts['project']!r}.")
        try:
            options = exports.ExportOptions(
                strategy=opts["strategy"], ties=opts["ties"], margin=opts["margin"], columns=opts["columns"],
                test_ratio=opts["test_ratio"], seed=opts["seed"], near_duplicate_threshold=opts["near_dup_threshold"],
                min_labelers=opts["min_labelers"], min_agreement=opts["min_agreement"],
                exclude_flags=exports.parse_flag_list(opts["exclude_flags"]), dataset=opts["dataset"],
                pairs_from=opts["pairs_from"], strength_margins=exports.parse_margins(opts["strength_margins"]),
            )  # fmt: skip
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if opts["fmt"] in exports.BUNDLE_FORMATS and opts["unsafe_file"] is not None:
            raise CommandError(f"--unsafe-file does not go with --format {opts['fmt']}: export it with --format jsonl.")
        filters = ExportFilters(
            guideline_versions=opts["guideline_version"], since=opts["since"], until=opts["until"],
            categories=opts["category"], rounds=opts["round"], objective=opts["objective"],
        )  # fmt: skip
        bar = tqdm(total=0, unit="prompt", file=self.stderr._out, disable=opts["no_progress"], desc="export")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            result = preference_export_create(
                project=project, out=opts["out"], fmt=opts["fmt"], options=options, filters=filters,
                unsafe_path=opts["unsafe_file"], progress=progress,
            )  # fmt: skip
        except ValueError as exc:  # e.g. --format raw with --dataset ratings
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        self._summary(result)

    def _summary(self, result: exports.ExportResult) -> None:
        counts = result.meta["counts"]
        splits = counts["splits"]
        agreement = result.meta["agreement"]["pairwise_agreement_ties_dropped"]
        if result.meta["dataset"] == "ratings":
            self.stdout.write(
                self.style.SUCCESS(
                    f"Exported {counts['ratings']} ratings (one per response and labeler) from {counts['rankings']} "
                    f"rankings of {counts['prompts']} prompts: train {splits['train']['ratings']}, test "
                    f"{splits['test']['ratings']}; {counts['rankings_flag_excluded']} flagged rankings left out."
                )
            )
            for name in [*result.files, exports.META_FILE]:
                self.stdout.write(f"  {result.out / name}" if not Path(name).is_absolute() else f"  {name}")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Exported {counts['pairs']} pairs from {counts['rankings']} rankings of {counts['prompts']} prompts "
                f"({result.meta['strategy']}): train {splits['train']['pairs']} pairs / {splits['train']['prompts']} "
                f"prompts, test {splits['test']['pairs']} / {splits['test']['prompts']}; {counts['ties_dropped']} "
                f"tied pairs dropped, {counts['rankings_flag_excluded']} flagged rankings left out; "
                f"pairwise agreement {agreement}."
            )
        )
        bundle = result.meta.get("bundle")
        if bundle:
            scripts = ", ".join(bundle["scripts"])
            self.stdout.write(f"{bundle['engine']} {bundle['version']} bundle: {scripts} (README.md says how to run)")
        for name in [*result.files, exports.META_FILE]:
            self.stdout.write(f"  {result.out / name}" if not Path(name).is_absolute() else f"  {name}")
