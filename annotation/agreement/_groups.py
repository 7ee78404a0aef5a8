"""Vectorised group-by helpers shared by the metrics.

scipy.stats works on one sample at a time; the metrics need the same operation on ~500,000 small groups (one per
ranking), so these helpers do it for all groups at once with a sort and ``np.bincount``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotation.agreement.table import RankTable

_COUNTING_CELLS = 1 << 20  # groups x distinct values beyond 2 * rows: past this, midranks sort instead of count


def dense_codes(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, unique)`` with ``unique[codes] == key``, like ``np.unique(key, return_inverse=True)`` except that
    when equal keys already sit in contiguous runs (rows come from the database ordered by ranking) the codes
    number the runs in order and nothing is sorted; ``unique`` is then in order of appearance."""
    if not len(key):
        return np.empty(0, dtype=np.int64), key[:0]
    new = np.empty(len(key), dtype=bool)
    new[0] = True
    np.not_equal(key[1:], key[:-1], out=new[1:])
    run_keys = key[new]
    low, high = int(run_keys.min()), int(run_keys.max())
    grouped = np.all(run_keys[1:] > run_keys[:-1]) or (
        high - low <= 4 * len(key) and np.bincount(run_keys - low).max() <= 1
    )
    if grouped:
        return np.cumsum(new) - 1, run_keys
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    new[1:] = ordered[1:] != ordered[:-1]
    codes = np.empty(len(key), dtype=np.int64)
    codes[order] = np.cumsum(new) - 1
    return codes, ordered[new]


def ranking_codes(table: RankTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense code per row of its ranking (prompt, labeler), plus each ranking's prompt and labeler code."""
    n_labelers = np.int64(max(table.n_labelers, 1))
    codes, unique = dense_codes(table.prompt * n_labelers + table.labeler)
    prompts, labelers = np.divmod(unique, n_labelers)
    return codes, prompts, labelers


def response_owner(table: RankTable) -> np.ndarray:
    """The prompt code of every response code (0 for codes that do not occur)."""
    owner = np.zeros(table.n_responses, dtype=np.int64)
    owner[table.response] = table.prompt
    return owner


def response_slots(table: RankTable) -> tuple[np.ndarray, int]:
    """Each response code's index among its prompt's responses (by code), and the most responses of a prompt."""
    present = np.flatnonzero(np.bincount(table.response, minlength=table.n_responses))
    prompts = response_owner(table)[present]
    order = np.argsort(prompts, kind="stable")
    prompts = prompts[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = prompts[1:] != prompts[:-1]
    starts = np.flatnonzero(first)
    sizes = np.diff(np.append(starts, len(order)))
    slots = np.zeros(table.n_responses, dtype=np.int64)
    slots[present[order]] = np.arange(len(order)) - np.repeat(starts, sizes)
    return slots, int(sizes.max()) if sizes.size else 1


def grouped_midranks(group: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (scipy's ``rankdata(method="average")``) of ``value`` within each group, and per group the
    tie term sum(t**3 - t) over its runs of equal values (indexed by group code)."""
    n = len(value)
    if not n:
        return np.empty(0), np.zeros(0)
    n_groups = int(group.max()) + 1
    codes, domain = value_codes(value)
    cell = group * np.int64(len(domain)) + codes
    if n_groups * len(domain) <= 2 * n + _COUNTING_CELLS:
        # few distinct values (ranks, positions): count them per group instead of sorting
        counts = np.bincount(cell, minlength=n_groups * len(domain)).reshape(n_groups, len(domain))
        below = np.cumsum(counts, axis=1) - counts
        midranks = (below + (counts + 1.0) / 2.0).ravel()[cell]
        ties = (counts.astype(np.float64) ** 3 - counts).sum(axis=1)
        return midranks, ties
    order = np.argsort(cell, kind="stable")
    sorted_group, sorted_value = group[order], codes[order]
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(sorted_group[1:], sorted_group[:-1], out=new_group[1:])
    new_run = new_group.copy()
    new_run[1:] |= sorted_value[1:] != sorted_value[:-1]
    run_start = np.flatnonzero(new_run)
    run_length = np.diff(np.append(run_start, n))
    group_start = np.flatnonzero(new_group)
    run_group_start = group_start[np.cumsum(new_group)[run_start] - 1]
    run_mid = run_start + (run_length - 1) / 2.0 - run_group_start + 1.0
    midranks = np.empty(n)
    midranks[order] = np.repeat(run_mid, run_length)
    tie = run_length.astype(np.float64) ** 3 - run_length
    ties = np.bincount(sorted_group[run_start], weights=tie, minlength=n_groups)
    return midranks, ties


def grouped_dense_ranks(group: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Dense ranks (scipy's ``rankdata(method="dense")``: equal values share a rank, the next value gets the next
    integer) of ``value`` within each group."""
    n = len(value)
    if not n:
        return np.empty(0)
    n_groups = int(group.max()) + 1
    codes, domain = value_codes(value)
    cell = group * np.int64(len(domain)) + codes
    if n_groups * len(domain) <= 2 * n + _COUNTING_CELLS:
        used = np.bincount(cell, minlength=n_groups * len(domain)).reshape(n_groups, len(domain)) > 0
        return np.cumsum(used, axis=1).ravel()[cell].astype(np.float64)
    order = np.argsort(cell, kind="stable")
    sorted_group, sorted_value = group[order], codes[order]
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = sorted_group[1:] != sorted_group[:-1]
    new_run = new_group.copy()
    new_run[1:] |= sorted_value[1:] != sorted_value[:-1]
    level = np.cumsum(new_run)
    dense = np.empty(n)
    dense[order] = level - np.maximum.accumulate(np.where(new_group, level, 0)) + 1
    return dense


def value_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, domain)``: sorted distinct values and each value's index in them.

    Ranks are small integers or halves, so a lookup table replaces the sort of ``np.unique`` when it can."""
    values = np.asarray(values, dtype=np.float64)
    if not values.size:
        return np.empty(0, dtype=np.int64), np.empty(0)
    low, high = values.min(), values.max()
    for scale in (1.0, 2.0):
        if not (np.isfinite(low) and np.isfinite(high)) or (high - low) * scale >= 1e6:
            break
        offset = ((values - low) * scale).astype(np.int64)
        if np.array_equal(offset, (values - low) * scale):
            present = np.bincount(offset) > 0
            lookup = np.cumsum(present) - 1
            return lookup[offset], np.flatnonzero(present) / scale + low
    domain, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), domain


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
