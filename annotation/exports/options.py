"""What an export does: the options every entry point (command, API, admin) builds and the metadata records."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

SCHEMA_VERSION = 1

Strategy = Literal["all", "majority", "consensus"]
Format = Literal["jsonl", "parquet", "hf", "raw"]
STRATEGIES: tuple[str, ...] = ("all", "majority", "consensus")
FORMATS: tuple[str, ...] = ("jsonl", "parquet", "hf", "raw")
TIES: tuple[str, ...] = ("drop", "keep")
MARGINS: tuple[str, ...] = ("none", "rank-diff", "score-diff", "strength")
PER_LABELER_MARGINS: tuple[str, ...] = ("score-diff", "strength")  # one labeler's judgment per row: strategy all
COLUMNS: tuple[str, ...] = ("full", "trl")
DATASETS: tuple[str, ...] = ("pairs", "ratings")
PAIRS_FROM: tuple[str, ...] = ("ranks", "scores")
# Llama 2's "large" margins for strength 1 (significantly better) .. 4 (negligibly better / unsure); a project's
# own mapping (Project.strength_margins) replaces them in exports from the database. docs/labeling-modes.md.
DEFAULT_STRENGTH_MARGINS: tuple[float, ...] = (3.0, 2.0, 1.0, 0.0)
ALL_FLAGS = "all"  # exclude_flags=("all",): any flag excludes a ranking (the default)
UNSAFE_FLAG = "unsafe"

OPTION_UNKNOWN = "Unknown {name} {value!r}; use one of: {choices}."
OPTION_RATIO = "test_ratio must be between 0 and 1, got {value}."
OPTION_THRESHOLD = "near_duplicate_threshold must be between 0 and 1 (1 = exact duplicates only), got {value}."
OPTION_MIN_LABELERS = "min_labelers must be at least 1, got {value}."
OPTION_MIN_AGREEMENT = "min_agreement must be between 0 and 1, got {value}."
OPTION_MARGIN_STRATEGY = "margin {margin} is one labeler's judgment per row: it needs strategy all, not {strategy}."
OPTION_STRENGTH_MARGINS = "strength_margins must be 4 non-negative numbers (strength 1 to 4), got {value!r}."


@dataclass(frozen=True)
class ExportOptions:
    """How rankings become preference rows. Filters that need the database live in the service's filters."""

    strategy: str = field(default="all", metadata={"help": "all | majority | consensus"})
    ties: str = field(default="drop", metadata={"help": "drop: tied responses give no row; keep: a tie row"})
    margin: str = field(default="none", metadata={"help": "none | rank-diff (TRL's `margin` column, a float)"})
    columns: str = field(default="full", metadata={"help": "full: TRL columns + ids/category; trl: TRL's only"})
    test_ratio: float = field(
        default=0.1,
        metadata={
            "help": "Share of prompts (by group) in the test split; above 0, at least min(3, ceil(ratio x groups))."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the prompt hash that decides the split."})
    near_duplicate_threshold: float = field(
        default=0.8, metadata={"help": "Jaccard of word 5-shingles above which prompts share a split side."}
    )
    min_labelers: int = field(default=1, metadata={"help": "Leave out prompts ranked by fewer labelers."})
    min_agreement: float | None = field(
        default=None, metadata={"help": "Leave out prompts whose pairwise agreement (ties dropped) is lower."}
    )
    exclude_flags: tuple[str, ...] = field(
        default=(ALL_FLAGS,), metadata={"help": "Rankings carrying any of these flags are left out; 'all': any flag."}
    )
    unsafe_separate: bool = field(
        default=False, metadata={"help": "Write rankings flagged 'unsafe' into a separate sink instead."}
    )
    dataset: str = field(
        default="pairs", metadata={"help": "pairs: preference pairs; ratings: one row per response per labeler"}
    )
    pairs_from: str = field(
        default="ranks", metadata={"help": "ranks; scores: each labeler's per-response scores order the pairs"}
    )
    strength_margins: tuple[float, ...] | None = field(
        default=None, metadata={"help": "margin per strength 1..4 (margin strength); None: the project's"}
    )

    def __post_init__(self) -> None:
        choices_of = (
            ("strategy", STRATEGIES), ("ties", TIES), ("margin", MARGINS), ("columns", COLUMNS),
            ("dataset", DATASETS), ("pairs_from", PAIRS_FROM),
        )  # fmt: skip
        for name, choices in choices_of:
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(OPTION_UNKNOWN.format(name=name, value=value, choices=", ".join(choices)))
        if self.margin in PER_LABELER_MARGINS and self.strategy != "all":
            raise ValueError(OPTION_MARGIN_STRATEGY.format(margin=self.margin, strategy=self.strategy))
        if self.strength_margins is not None:
            margins = tuple(self.strength_margins)
            ok = len(margins) == 4 and all(
                isinstance(m, int | float) and not isinstance(m, bool) and math.isfinite(m) and m >= 0 for m in margins
            )
            if not ok:
                raise ValueError(OPTION_STRENGTH_MARGINS.format(value=self.strength_margins))
            object.__setattr__(self, "strength_margins", tuple(float(m) for m in margins))
        if not 0.0 <= self.test_ratio <= 1.0:
            raise ValueError(OPTION_RATIO.format(value=self.test_ratio))
        if not 0.0 < self.near_duplicate_threshold <= 1.0:
            raise ValueError(OPTION_THRESHOLD.format(value=self.near_duplicate_threshold))
        if self.min_labelers < 1:
            raise ValueError(OPTION_MIN_LABELERS.format(value=self.min_labelers))
        if self.min_agreement is not None and not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError(OPTION_MIN_AGREEMENT.format(value=self.min_agreement))
        object.__setattr__(self, "exclude_flags", tuple(self.exclude_flags))

    def excludes(self, flags: list[str]) -> bool:
        """Whether a ranking with these flags is left out of the main dataset."""
        if not flags:
            return False
        if ALL_FLAGS in self.exclude_flags:
            return True
        return any(flag in self.exclude_flags for flag in flags)

    def with_unsafe(self, separate: bool) -> ExportOptions:
        return replace(self, unsafe_separate=separate)

    def with_strength_margins(self, margins: tuple[float, ...]) -> ExportOptions:
        """These margins unless the options already name their own (the project's mapping as the default)."""
        return self if self.strength_margins is not None else replace(self, strength_margins=tuple(margins))

    @property
    def strength_margin_values(self) -> tuple[float, ...]:
        return self.strength_margins if self.strength_margins is not None else DEFAULT_STRENGTH_MARGINS

    @property
    def needs_scores(self) -> bool:
        """Whether the export reads the per-response scores (pairs from scores, score margins, ratings)."""
        return self.pairs_from == "scores" or self.margin == "score-diff" or self.dataset == "ratings"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["exclude_flags"] = list(self.exclude_flags)
        data["strength_margins"] = None if self.strength_margins is None else list(self.strength_margins)
        return data


def parse_margins(value: str | None) -> tuple[float, ...] | None:
    """'3,2,1,0' -> (3.0, 2.0, 1.0, 0.0); None or '' -> None (the project's mapping). Raises ValueError."""
    if value is None or not value.strip():
        return None
    try:
        margins = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise ValueError(OPTION_STRENGTH_MARGINS.format(value=value)) from None
    ExportOptions(strength_margins=margins)  # validates
    return margins


def parse_flag_list(value: str | None) -> tuple[str, ...]:
    """'all' (default) -> any flag excludes; 'none' or '' -> no flag does; 'unsafe,all_bad' -> those do."""
    if value is None or value.strip().lower() == ALL_FLAGS:
        return (ALL_FLAGS,)
    if value.strip().lower() in ("", "none"):
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())
