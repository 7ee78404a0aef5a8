"""`manage.py agreement --project SLUG [--json]`: a project's inter-annotator agreement report."""

import json
from argparse import ArgumentTypeError, RawDescriptionHelpFormatter

from django.core.management.base import BaseCommand, CommandError

from annotation.agreement import DEFAULT_TIE_CODING, TIE_CODINGS
from annotation.models import Project
from annotation.services.agreement import agreement_report_get

EXAMPLES = """
Gold prompts and labelers a manager excluded are left out of the project figures; excluded labelers are still
listed (marked). Intervals are 95% percentile bootstrap intervals over prompts. A labeler is an OUTLIER when their
agreement with the others' consensus is significantly below the other labelers' (one-sided Mann-Whitney U test,
Holm-adjusted p < 0.05). See docs/agreement.md for every definition.

examples:
  python manage.py agreement --project wmt23-ende
  python manage.py agreement --project wmt23-ende --json > agreement.json
  python manage.py agreement --project wmt23-ende --json --n-boot 1000 --seed 7 | jq .intervals
  python manage.py agreement --project wmt23-ende --n-boot 0          # no intervals, fastest
  python manage.py agreement --project wmt23-ende --tie-coding dense  # alpha on dense ranks (1, 1, 2)
"""

PROMPT_ADMIN_URL = "/admin/annotation/prompt/<prompt>/change/"
HEADLINE = [
    ("alpha_ordinal", "Krippendorff's alpha (ordinal)"),
    ("alpha_interval", "Krippendorff's alpha (interval)"),
    ("alpha_nominal", "Krippendorff's alpha (nominal)"),
    ("alpha_ratio", "Krippendorff's alpha (ratio)"),
    ("kendall_w_mean", "Kendall's W (mean over prompts)"),
    ("pairwise_agreement_ties_dropped", "Pairwise agreement, ties dropped"),
    ("pairwise_agreement_ties_as_outcome", "Pairwise agreement, tie as outcome"),
]
LABELER_COLUMNS = [
    ("username", "labeler"), ("n_rankings", "rankings"), ("agreement", "agreement"), ("gold_accuracy", "gold acc"),
    ("n_gold_pairs", "gold pairs"), ("position_bias", "pos bias"), ("median_seconds", "median s"),
    ("flag_rate", "flag rate"),
]  # fmt: skip
BREAKDOWN_COLUMNS = [
    ("group", "group"), ("n_prompts", "prompts"), ("n_rankings", "rankings"),
    ("pairwise_agreement_ties_dropped", "pairwise"), ("alpha_ordinal", "alpha ord"),
]  # fmt: skip


def n_boot_type(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 10_000:
        raise ArgumentTypeError("must be between 0 and 10000")
    return number


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value + 0.0:.3f}".replace("-0.000", "0.000")
    return str(value)


def table(rows: list[dict], columns: list[tuple[str, str]], extra=None) -> list[str]:
    """Aligned text columns (text left, numbers right); `extra(row)` appends a free-text note to each row."""
    cells = [[title for _, title in columns]] + [[fmt(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    left = [any(isinstance(row.get(key), str) for row in rows) for key, _ in columns]
    lines = []
    for i, row in enumerate(cells):
        note = extra(rows[i - 1]) if extra and i else ""
        aligned = [cell.ljust(w) if lft else cell.rjust(w) for cell, w, lft in zip(row, widths, left, strict=True)]
        lines.append(f"  {'  '.join(aligned)}  {note}".rstrip())
    return lines


def _labeler_note(row: dict) -> str:
    notes = []
    if row.get("outlier"):
        notes.append(f"OUTLIER (p={fmt(row.get('outlier_p_value'))})")
    if row.get("excluded"):
        notes.append("EXCLUDED")
    return ", ".join(notes)


class Command(BaseCommand):
    help = "Inter-annotator agreement of a project: headline figures with intervals, labelers, flags, leaderboard."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, epilog=EXAMPLES, **kwargs
        )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, metavar="SLUG", help="Project slug.")
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="Print one JSON object (the whole report) only."
        )
        parser.add_argument(
            "--n-boot", type=n_boot_type, default=200, metavar="N", help="Bootstrap resamples (default 200; 0: none)."
        )
        parser.add_argument("--seed", type=int, default=0, help="Bootstrap seed (default 0).")
        parser.add_argument(
            "--tie-coding",
            choices=TIE_CODINGS,
            default=DEFAULT_TIE_CODING,
            help="How Krippendorff's alpha codes tied ranks: average (1, 1, 2 -> 1.5, 1.5, 3; default, Kendall's "
            "mid-ranks) or dense (1, 1, 2). See docs/agreement.md.",
        )

    def handle(self, *args, project: str, as_json: bool, n_boot: int, seed: int, tie_coding: str, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project with slug {project!r}.")
        report = agreement_report_get(project=target, n_boot=n_boot, seed=seed, tie_coding=tie_coding)
        if as_json:
            self.stdout.write(_json_dumps(report))
        else:
            self.stdout.write("\n".join(self.render(report)))

    def render(self, report: dict) -> list[str]:
        lines = [
            f"Agreement of project {report['project']}: {report['n_rankings']} rankings of {report['n_prompts']} "
            f"prompts by {report['n_labelers']} labelers (gold prompts and excluded labelers left out)."
        ]
        if not report["n_rankings"]:
            return [*lines, "No rankings to measure yet."]
        lines += self.headline(report)
        lines += self.histogram(report["per_prompt_histogram"])
        lines += ["", "Labelers (agreement: mean Kendall tau-b with the consensus of the others)"]
        lines += table(report["labelers"], LABELER_COLUMNS, _labeler_note)
        if report["flags"]:
            lines += ["", "Flags (rate over rankings, Fleiss' kappa over prompts)"]
            lines += table(
                report["flags"], [("flag", "flag"), ("label", "label"), ("rate", "rate"), ("kappa", "kappa")]
            )
        for key, title in [
            ("by_category", "By prompt category"),
            ("by_guideline_version", "By guideline version"),
            ("over_time", "Over time (ISO week)"),
        ]:
            lines += ["", title, *table(report[key], BREAKDOWN_COLUMNS)]
        lines += self.response_form(report.get("response_form"))
        lines += self.leaderboard(report)
        lines += ["", f"Lowest-agreement prompts (pairwise agreement, ties dropped; open one at {PROMPT_ADMIN_URL})"]
        lines += table(
            [{**row, "text": row["text"].replace("\n", " ")[:70]} for row in report["lowest_prompts"]],
            [("prompt_id", "prompt"), ("pairwise_agreement", "agreement"), ("n_labelers", "labelers"), ("text", "")],
        )
        return lines

    def response_form(self, form: dict | None) -> list[str]:
        """Agreement on each field of the per-response form (units: responses rated by two labelers or more)."""
        if form is None:
            return []
        rows = []
        if form["score"]:
            score = form["score"]
            rows.append({"field": score["field"], "kind": f"score {score['scale'][0]}-{score['scale'][1]}",
                         "alpha": score["alpha_interval"], "level": "interval", "low": score["interval"][0],
                         "high": score["interval"][1], "other": score["alpha_ordinal"], "other_name": "ordinal",
                         "value": score["mean"], "units": score["n_units"]})  # fmt: skip
        for label in form["labels"]:
            rows.append({"field": label["field"], "kind": "yes/no", "alpha": label["alpha_nominal"],
                         "level": "nominal", "low": label["interval"][0], "high": label["interval"][1],
                         "other": label["kappa"], "other_name": "kappa", "value": label["rate"],
                         "units": label["n_units"]})  # fmt: skip
        columns = [("field", "field"), ("kind", "kind"), ("alpha", "alpha"), ("level", "level"), ("low", "95% low"),
                   ("high", "95% high"), ("other", "other"), ("other_name", ""), ("value", "mean/rate"),
                   ("units", "responses")]  # fmt: skip
        title = f"Per-response form ({form['n_ratings']} ratings by {form['n_labelers']} labelers; texts: no figure)"
        return ["", title, *table(rows, columns)]

    def headline(self, report: dict) -> list[str]:
        intervals = report.get("intervals", {})
        title = f"95% interval ({report['n_boot']} resamples)" if intervals else "no intervals (--n-boot 0)"
        lines = ["", f"Headline figures                      value   {title}"]
        for key, label in HEADLINE:
            low_high = intervals.get(key)
            interval = f"[{fmt(low_high[0])}, {fmt(low_high[1])}]" if low_high else ""
            lines.append(f"  {label:<36}{fmt(report[key]):>6}   {interval}".rstrip())
        lines.append(f"  Ties coded as {report['tie_coding']} ranks for alpha (--tie-coding; docs/agreement.md).")
        return lines

    def histogram(self, histogram: dict) -> list[str]:
        edges, counts = histogram["edges"], histogram["counts"]
        scale = 40 / max(max(counts), 1)
        lines = ["", "Per-prompt pairwise agreement (ties dropped): prompts per bin"]
        for low, high, count in zip(edges, edges[1:], counts, strict=False):
            lines.append(f"  {low:.1f}-{high:.1f}  {'#' * round(count * scale):<40} {count}")
        return lines

    def leaderboard(self, report: dict) -> list[str]:
        if not report["leaderboard"]:
            return []
        columns = [
            ("place", "#"), ("model", "model"), ("rating", "rating"), ("low", "low"), ("high", "high"),
            ("n_comparisons", "comparisons"), ("win_rate", "win rate"),
        ]  # fmt: skip

        def placed(rows: list[dict]) -> list[dict]:
            return [{"place": i, **row} for i, row in enumerate(rows, start=1)]

        lines = ["", "Model leaderboard (Bradley-Terry, Elo scale, 95% interval)"]
        lines += [f"  WARNING: {warning}" for warning in report.get("leaderboard_warnings", [])]
        lines += table(placed(report["leaderboard"]), columns)
        for number, rows in enumerate(report.get("leaderboard_components", [])):
            lines += ["", f"Model leaderboard of group {number + 1} (fitted on its own comparisons)"]
            lines += table(placed(rows), columns)
        return lines


def _json_dumps(report: dict) -> str:
    return json.dumps(report, ensure_ascii=False, default=_plain)


def _plain(value):
    """numpy scalars may reach the report: they serialise as plain numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
