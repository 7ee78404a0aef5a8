"""``export_meta.json``: what was exported, how, from which data, and a hash of the files."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from annotation.exports.options import SCHEMA_VERSION, ExportOptions
from annotation.exports.pipeline import ALPHA_TIE_CODING, ExportStats
from annotation.exports.split import Split

META_FILE = "export_meta.json"


def git_commit() -> str | None:
    """The repository's HEAD commit, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def content_hash(files: dict[str, str]) -> str:
    """sha256 over the data files' names and sha256s, in name order: equal for byte-identical exports."""
    listing = "".join(f"{name}\t{sha}\n" for name, sha in sorted(files.items()))
    return hashlib.sha256(listing.encode()).hexdigest()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _split_counts(counts: Any, dataset: str) -> dict[str, int]:
    """prompts, rankings and the rows of the dataset: pairs, or ratings."""
    rows = "ratings" if dataset == "ratings" else "pairs"
    return {"prompts": counts.prompts, "rankings": counts.rankings, rows: getattr(counts, rows)}


def export_meta(
    *,
    fmt: str,
    options: ExportOptions,
    stats: ExportStats,
    split: Split,
    files: dict[str, str],
    context: dict[str, Any],
    labelers: list[dict[str, Any]],
    columns: list[str],
    conversational: bool,
) -> dict[str, Any]:
    """The metadata dict. ``context`` carries the caller's facts: project, database filters, counts of what the
    database query left out (gold prompts, excluded labelers)."""
    pairs = asdict(stats.pairs)
    return {
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "format": fmt,
        "dataset": options.dataset,
        "strategy": options.strategy,
        "options": options.as_dict(),
        "columns": columns,
        "conversational": conversational,
        **context,
        "counts": {
            "prompts": sum(s.prompts for s in stats.splits.values()),
            "rankings": sum(s.rankings for s in stats.splits.values()),
            "pairs": pairs["pairs"],
            "ratings": sum(s.ratings for s in stats.splits.values()),
            "ties_dropped": pairs["ties_dropped"],
            "tie_rows": pairs["tie_rows"],
            "even_splits_dropped": pairs["even_splits_dropped"],
            "margin_missing": pairs["margin_missing"],
            "margin_clipped": pairs["margin_clipped"],
            "rankings_without_scores": stats.rankings_without_scores,
            "prompts_considered": stats.prompts_seen,
            "prompts_without_rankings": stats.prompts_without_rankings,
            "prompts_below_min_labelers": stats.prompts_below_min_labelers,
            "prompts_below_min_agreement": stats.prompts_below_min_agreement,
            "rankings_flag_excluded": stats.rankings_flag_excluded,
            "unsafe_rankings": stats.unsafe_rankings,
            "unsafe_pairs": stats.unsafe_pairs,
            "near_duplicate_groups": split.n_groups_merged,
            "prompts_in_near_duplicate_groups": split.n_prompts_merged,
            "splits": {name: _split_counts(counts, options.dataset) for name, counts in stats.splits.items()},
        },
        "labelers": labelers,
        "agreement": {
            **{name: _rounded(value) for name, value in stats.agreement().items()},
            "alpha_tie_coding": ALPHA_TIE_CODING,  # how alpha_ordinal coded tied ranks (docs/agreement.md)
        },
        "files": files,
        "content_hash": content_hash(files),
    }
