"""Vectorised group-by helpers shared by the metrics.

scipy.stats works on one sample at a time; the metrics need the same operation on ~500,000 small groups (one per
ranking), so these helpers do it for all groups at once with a sort and ``np.bincount``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotation.agreement.table import RankTable


def ranking_codes(table: RankTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense code per row of its ranking (prompt, labeler), plus each ranking's prompt and labeler code."""
    key = table.prompt * np.int64(max(table.n_labelers, 1)) + table.labeler
    unique, codes = np.unique(key, return_inverse=True)
    prompts, labelers = np.divmod(unique, np.int64(max(table.n_labelers, 1)))
    return codes.astype(np.int64), prompts, labelers


def grouped_midranks(group: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (scipy's ``rankdata(method="average")``) of ``value`` within each group, and per group the
    tie term sum(t**3 - t) over its runs of equal values (indexed by group code)."""
    n = len(value)
    n_groups = int(group.max()) + 1 if n else 0
    if not n:
        return np.empty(0), np.zeros(0)
    order = np.lexsort((value, group))
    sorted_group, sorted_value = group[order], value[order]
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(sorted_group[1:], sorted_group[:-1], out=new_group[1:])
    new_run = new_group.copy()
    new_run[1:] |= sorted_value[1:] != sorted_value[:-1]
    position = np.arange(n)
    group_start = np.maximum.accumulate(np.where(new_group, position, 0))
    run_start = np.flatnonzero(new_run)
    run_length = np.diff(np.append(run_start, n))
    run_of = np.cumsum(new_run) - 1
    mid = (run_start + (run_length - 1) / 2.0)[run_of] - group_start + 1.0
    midranks = np.empty(n)
    midranks[order] = mid
    tie = run_length.astype(np.float64) ** 3 - run_length
    ties = np.bincount(sorted_group[run_start], weights=tie, minlength=n_groups)
    return midranks, ties


@dataclass(frozen=True)
class Pairs:
    """Every unordered pair of rows inside a group, ``first`` holding the row with the smaller sort key."""

    first: np.ndarray
    second: np.ndarray


def pairs_within(group: np.ndarray, key: np.ndarray) -> Pairs:
    """All unordered pairs of rows sharing a group code; rows in a pair are ordered by ``key`` (ties keep both)."""
    order = np.lexsort((key, group))
    pairs = pairs_within_sorted(group[order])
    return Pairs(order[pairs.first], order[pairs.second])


def pairs_within_sorted(group: np.ndarray) -> Pairs:
    """``pairs_within`` for a ``group`` array that is already sorted: pairs of indices (i < j) with equal group."""
    n = len(group)
    if not n:
        empty = np.empty(0, dtype=np.int64)
        return Pairs(empty, empty)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = group[1:] != group[:-1]
    starts = np.flatnonzero(new_group)
    sizes = np.diff(np.append(starts, n))
    local = np.arange(n) - np.repeat(starts, sizes)
    partners = np.repeat(sizes, sizes) - 1 - local  # rows after this one in its group
    first = np.repeat(np.arange(n), partners)
    offsets = np.cumsum(partners) - partners
    step = np.arange(len(first)) - np.repeat(offsets, partners) + 1
    return Pairs(first, first + step)


def group_mean(group: np.ndarray, value: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of ``value`` per group code; NaN for empty groups."""
    total = np.bincount(group, weights=value, minlength=n_groups)
    count = np.bincount(group, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def group_pearson(group: np.ndarray, x: np.ndarray, y: np.ndarray, n_groups: int) -> np.ndarray:
    """Pearson correlation of x and y within each group; NaN where a group has < 2 rows or no variance."""
    count = np.bincount(group, minlength=n_groups).astype(np.float64)
    mean_x = group_mean(group, x, n_groups)
    mean_y = group_mean(group, y, n_groups)
    dx, dy = x - mean_x[group], y - mean_y[group]
    sxy = np.bincount(group, weights=dx * dy, minlength=n_groups)
    sxx = np.bincount(group, weights=dx * dx, minlength=n_groups)
    syy = np.bincount(group, weights=dy * dy, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sxy / np.sqrt(sxx * syy)
    r[(count < 2) | (sxx <= 1e-12 * np.maximum(count, 1)) | (syy <= 1e-12 * np.maximum(count, 1))] = np.nan
    return np.clip(r, -1.0, 1.0)


def group_median(group: np.ndarray, value: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of the finite values per group; NaN where a group has none."""
    keep = np.isfinite(value)
    group, value = group[keep], value[keep]
    order = np.lexsort((value, group))
    group, value = group[order], value[order]
    count = np.bincount(group, minlength=n_groups)
    start = np.cumsum(count) - count
    out = np.full(n_groups, np.nan)
    has = count > 0
    low = start[has] + (count[has] - 1) // 2
    high = start[has] + count[has] // 2
    out[has] = (value[low] + value[high]) / 2.0
    return out
