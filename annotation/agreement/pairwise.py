"""Pairwise agreement: how often two labelers order a pair of responses the same way.

Every ranking expands into the C(k, 2) pairs of its responses; per response pair, the counts of labelers who
prefer the first, prefer the second, or tie give the agreeing labeler pairs in closed form, so no labeler x labeler
loop is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from annotation.agreement._groups import pairs_within_sorted, ranking_codes, response_slots
from annotation.agreement.table import RankTable

Ties = Literal["drop", "outcome"]
PAIRWISE_UNKNOWN_TIES = "Unknown ties convention {ties!r}; use 'drop' or 'outcome'."
_DENSE_CELLS = 1 << 25  # prompts x responses^2 cells counted densely; beyond that, sort the response pairs


@dataclass(frozen=True)
class RankedPairs:
    """One row per (ranking, unordered pair of its responses), ``first`` holding the smaller response code.

    ``outcome`` is +1 when the labeler ranked ``first`` better (lower rank), -1 when ``second`` is better, 0 tie.
    ``first_row`` / ``second_row`` index the table rows the pair came from.
    """

    prompt: np.ndarray
    labeler: np.ndarray
    first: np.ndarray
    second: np.ndarray
    outcome: np.ndarray
    first_row: np.ndarray
    second_row: np.ndarray


def ranked_pairs(table: RankTable) -> RankedPairs:
    """Expand every ranking into its pairwise comparisons (the preference pairs an export would produce)."""
    ranking, _, _ = ranking_codes(table)
    if np.all(ranking[1:] >= ranking[:-1]):  # rows already grouped by ranking (the usual database order)
        pairs = pairs_within_sorted(ranking)
        a, b = pairs.first, pairs.second
    else:
        order = np.argsort(ranking, kind="stable")
        pairs = pairs_within_sorted(ranking[order])
        a, b = order[pairs.first], order[pairs.second]
    swap = table.response[a] > table.response[b]
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    outcome = np.sign(table.rank[b] - table.rank[a]).astype(np.int8)
    return RankedPairs(
        prompt=table.prompt[a],
        labeler=table.labeler[a],
        first=table.response[a],
        second=table.response[b],
        outcome=outcome,
        first_row=a,
        second_row=b,
    )


def pairwise_counts(table: RankTable, ties: Ties = "drop") -> tuple[np.ndarray, np.ndarray]:
    """Per prompt code: (agreeing labeler pairs, compared labeler pairs), summed over the prompt's response pairs.

    For a response pair ranked by labelers of whom ``a`` prefer the first, ``b`` the second and ``t`` tie:
    ``ties="drop"`` counts C(a, 2) + C(b, 2) agreements out of C(a + b, 2) (a labeler who tied is left out);
    ``ties="outcome"`` counts C(a, 2) + C(b, 2) + C(t, 2) out of C(a + b + t, 2) (a tie must be matched).
    """
    if ties not in ("drop", "outcome"):
        raise ValueError(PAIRWISE_UNKNOWN_TIES.format(ties=ties))
    n_prompts = table.n_prompts
    pairs = ranked_pairs(table)
    if not len(pairs.first):
        return np.zeros(n_prompts), np.zeros(n_prompts)
    slots, width = response_slots(table)
    cell = (pairs.prompt * np.int64(width) + slots[pairs.first]) * np.int64(width) + slots[pairs.second]
    if n_prompts * width * width <= _DENSE_CELLS:  # count votes per response pair without sorting
        n_cells, cell_prompt = n_prompts * width * width, None
    else:
        cell_keys, cell = np.unique(cell, return_inverse=True)
        n_cells, cell_prompt = len(cell_keys), cell_keys // np.int64(width * width)
    first, second, tied = (np.bincount(cell, weights=pairs.outcome == o, minlength=n_cells) for o in (1, -1, 0))
    agree = _choose2(first) + _choose2(second)
    total = _choose2(first + second)
    if ties == "outcome":
        agree = agree + _choose2(tied)
        total = _choose2(first + second + tied)
    if cell_prompt is None:
        return agree.reshape(n_prompts, -1).sum(axis=1), total.reshape(n_prompts, -1).sum(axis=1)
    return (
        np.bincount(cell_prompt, weights=agree, minlength=n_prompts),
        np.bincount(cell_prompt, weights=total, minlength=n_prompts),
    )


def pairwise_agreement(table: RankTable, ties: Ties = "drop") -> float:
    """Fraction of (labeler pair, response pair) comparisons, pooled over prompts, where both labelers order the
    two responses the same way; NaN when no two labelers share a pair (e.g. a single labeler)."""
    agree, total = pairwise_counts(table, ties)
    return float(agree.sum() / total.sum()) if total.sum() else float("nan")


def pairwise_agreement_by_prompt(table: RankTable, ties: Ties = "drop") -> np.ndarray:
    """``pairwise_agreement`` of each prompt code; NaN where the prompt has no comparable labeler pairs."""
    agree, total = pairwise_counts(table, ties)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, agree / total, np.nan)


def pairwise_parts(table: RankTable, ties: Ties = "drop") -> np.ndarray:
    """Per-prompt ``[agree, total]`` for ``bootstrap_sums_ci`` of ``pairwise_agreement``."""
    return np.column_stack(pairwise_counts(table, ties))


def _choose2(count: np.ndarray) -> np.ndarray:
    return count * (count - 1.0) / 2.0
