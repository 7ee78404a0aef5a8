"""Krippendorff's alpha over long-format data, vectorised.

The ``krippendorff`` package wants a dense coders x units matrix and builds a units x values x values array; with
400,000 units that is slow and memory hungry, and it cannot give per-prompt coincidence matrices for a fast
bootstrap. Here the coincidence matrix comes from the units x values count matrix built with one ``np.bincount``
(from its non-zeros when that matrix would be large).
Reference: K. Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011), sections B-E.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

from annotation.agreement._groups import (
    grouped_dense_ranks,
    grouped_midranks,
    pairs_within_sorted,
    ranking_codes,
    response_owner,
    value_codes,
)
from annotation.agreement.table import RankTable

Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval", "ratio")
ALPHA_UNKNOWN_LEVEL = "Unknown level of measurement {level!r}; use one of nominal, ordinal, interval, ratio."
TieCoding = Literal["average", "dense"]
TIE_CODINGS: tuple[TieCoding, ...] = ("average", "dense")
# Mid-ranks for ties (M. G. Kendall, "The treatment of ties in ranking problems", Biometrika 33, 1945): every ranking
# of n responses then has rank sum n (n + 1) / 2, so a rank means the same position whatever the ties above it.
DEFAULT_TIE_CODING: TieCoding = "average"
ALPHA_UNKNOWN_TIE_CODING = "Unknown tie coding {tie_coding!r}; use one of average, dense."
_DENSE_LIMIT = 1 << 24  # units x values cells counted densely with bincount; beyond that, sort the keys


def coincidence_parts(
    unit: np.ndarray, value: np.ndarray, group: np.ndarray | None = None, n_groups: int = 1
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Per-group coincidence matrices ``o`` (Krippendorff 2011, section E), flattened to a sparse
    ``(n_groups, V * V)`` matrix, and the value domain (length V).

    ``group`` maps each unit code to a group (a prompt) so a bootstrap can resample groups by summing rows; by
    default every unit is in group 0. Units with fewer than two values are not pairable and are dropped.
    """
    cells, amounts, cell_unit, domain = _coincidence_cells(unit, value)
    rows = np.zeros(len(cells), dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)[cell_unit]
    parts = sp.coo_matrix((amounts, (rows, cells)), shape=(n_groups, len(domain) ** 2)).tocsr()
    return parts, domain


def coincidences(unit: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The coincidence matrix ``o`` (V x V) of all pairable units, and the value domain (length V)."""
    unit = np.asarray(unit, dtype=np.int64)
    codes, domain = value_codes(value)
    V = len(domain)  # noqa: N806 - Krippendorff's notation
    n_units = int(unit.max()) + 1 if unit.size else 0
    if n_units * V > _DENSE_LIMIT:
        cells, amounts, _, domain = _coincidence_cells(unit, value)
        size = len(domain)
        return np.bincount(cells, weights=amounts, minlength=size * size).reshape(size, size), domain
    # few values (ranks): o = N' diag(w) N - diag(N' w), N the units x values count matrix, w_u = 1 / (m_u - 1)
    counts = np.bincount(unit * V + codes, minlength=n_units * V).reshape(n_units, V).astype(np.float64)
    m = counts.sum(axis=1)
    w = np.divide(1.0, m - 1.0, out=np.zeros_like(m), where=m >= 2)
    weighted = counts.T * w
    # einsum, not @: a BLAS call on this skinny product spawns threads that stall on a busy machine
    return np.einsum("cu,uk->ck", weighted, counts) - np.diag(weighted.sum(axis=1)), domain


def _coincidence_cells(unit: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Contributions to ``o``: flat cell index (c * V + k), amount, and the unit it comes from; plus the domain."""
    unit = np.asarray(unit, dtype=np.int64)
    value = np.asarray(value, dtype=np.float64)
    m = np.bincount(unit) if unit.size else np.zeros(0, dtype=np.int64)
    keep = m[unit] >= 2
    unit, value = unit[keep], value[keep]
    codes, domain = value_codes(value)
    V = len(domain)  # noqa: N806
    nz_unit, nz_code, nz_count = _nonzero_counts(unit, codes, V)
    weight = 1.0 / (m[nz_unit] - 1.0)
    # diagonal: n_uc (n_uc - 1) / (m_u - 1); off-diagonal, both orders: n_uc n_uk / (m_u - 1)
    pairs = pairs_within_sorted(nz_unit)
    a, b = pairs.first, pairs.second
    off = weight[a] * nz_count[a] * nz_count[b]
    cells = np.concatenate([nz_code * (V + 1), nz_code[a] * V + nz_code[b], nz_code[b] * V + nz_code[a]])
    amounts = np.concatenate([weight * nz_count * (nz_count - 1.0), off, off])
    return cells, amounts, np.concatenate([nz_unit, nz_unit[a], nz_unit[a]]), domain


def _nonzero_counts(unit: np.ndarray, codes: np.ndarray, V: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: N803
    """(unit, value code, count) for every non-zero cell of the units x values count matrix, sorted by unit."""
    if not unit.size:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0)
    key = unit * np.int64(V) + codes
    n_cells = (int(unit.max()) + 1) * V
    if n_cells <= _DENSE_LIMIT:
        counts = np.bincount(key, minlength=n_cells)
        cells = np.flatnonzero(counts)
        cell_counts = counts[cells]
    else:
        cells, cell_counts = np.unique(key, return_counts=True)
    nz_unit, nz_code = np.divmod(cells, np.int64(V))
    return nz_unit, nz_code, cell_counts.astype(np.float64)


def alpha_from_coincidences(o: np.ndarray, domain: np.ndarray, level: Level) -> np.ndarray:
    """Alpha from coincidence matrices ``o`` of shape (..., V, V): 1 - (n - 1) sum(o * d) / sum(n_c n_k d).

    Vectorised over leading axes so a bootstrap can evaluate many resamples at once. NaN where the expected
    disagreement is zero (a single value used) or nothing is pairable."""
    o = np.asarray(o, dtype=np.float64)
    n_c = o.sum(axis=-2)
    n = n_c.sum(axis=-1)
    d = _distances(domain, n_c, level)
    observed = (o * d).sum(axis=(-2, -1))
    expected = (n_c[..., :, None] * n_c[..., None, :] * d).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - (n - 1.0) * observed / expected
    return np.where((expected > 0) & (n > 1), alpha, np.nan)


def _distances(domain: np.ndarray, n_c: np.ndarray, level: Level) -> np.ndarray:
    """Squared difference functions (Krippendorff 2011, section D); the ordinal one depends on the marginals."""
    c, k = domain[:, None], domain[None, :]
    if level == "nominal":
        return (c != k).astype(np.float64)
    if level == "interval":
        return (c - k) ** 2
    if level == "ratio":
        total = c + k
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total != 0, ((c - k) / total) ** 2, 0.0)
    if level == "ordinal":
        # (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2 == (cs_k - cs_c + (n_c - n_k) / 2)^2, symmetric in c, k
        cs = np.cumsum(n_c, axis=-1)
        return (cs[..., None, :] - cs[..., :, None] + (n_c[..., :, None] - n_c[..., None, :]) / 2.0) ** 2
    raise ValueError(ALPHA_UNKNOWN_LEVEL.format(level=level))


def alpha_long(unit: np.ndarray, value: np.ndarray, level: Level = "interval") -> float:
    """Krippendorff's alpha from long data: one entry per (unit, coder) pairable value; missing = absent."""
    if level not in LEVELS:
        raise ValueError(ALPHA_UNKNOWN_LEVEL.format(level=level))
    o, domain = coincidences(unit, value)
    return float(alpha_from_coincidences(o, domain, level))


def alpha_from_reliability_data(data: np.ndarray, level: Level = "interval") -> float:
    """Alpha from a coders x units matrix with NaN for missing values (the ``krippendorff`` package's input)."""
    data = np.asarray(data, dtype=np.float64)
    _, unit = np.nonzero(~np.isnan(data))
    return alpha_long(unit, data[~np.isnan(data)], level)


def coded_ranks(table: RankTable, tie_coding: TieCoding = DEFAULT_TIE_CODING) -> np.ndarray:
    """The table's ranks recoded within each ranking (one labeler, one prompt): ``"average"`` gives tied responses
    the mean of the places they share (1, 1, 2 -> 1.5, 1.5, 3), ``"dense"`` the next integer after the rank above
    (1, 1, 3 -> 1, 1, 2). Ranks given either way, or as competition ranks, recode to the same values."""
    if tie_coding not in TIE_CODINGS:
        raise ValueError(ALPHA_UNKNOWN_TIE_CODING.format(tie_coding=tie_coding))
    if not table.n_rows:
        return table.rank
    ranking, _, _ = ranking_codes(table)
    if tie_coding == "dense":
        return grouped_dense_ranks(ranking, table.rank)
    return grouped_midranks(ranking, table.rank)[0]


def krippendorff_alpha(table: RankTable, level: Level = "ordinal", tie_coding: TieCoding = DEFAULT_TIE_CODING) -> float:
    """Alpha with units = responses (each belongs to one prompt), coders = labelers, values = the ranks given,
    recoded per ranking by ``tie_coding`` (``coded_ranks``): with ties, the two codings give different alphas.

    Responses ranked by fewer than two labelers are dropped, as Krippendorff prescribes for unpairable units."""
    return alpha_long(table.response, coded_ranks(table, tie_coding), level)


def alpha_parts(table: RankTable, tie_coding: TieCoding = DEFAULT_TIE_CODING) -> tuple[sp.csr_matrix, np.ndarray]:
    """Per-prompt coincidence matrices (rows = prompt codes) for ``bootstrap_sums_ci``."""
    rank = coded_ranks(table, tie_coding)
    return coincidence_parts(table.response, rank, response_owner(table), max(table.n_prompts, 1))
