"""Percentile bootstrap over prompts.

Prompts are the independent units (a prompt's rankings share its responses), so resamples draw prompts with
replacement; a prompt drawn twice counts as two prompts. Two routes draw the same resamples for a seed:

* ``bootstrap_ci`` rebuilds a table per resample and calls any statistic: general, O(rows) per resample;
* ``bootstrap_sums_ci`` takes per-prompt sufficient statistics (``*_parts``) and a function of their sums: a
  resample is then one matrix product, so 1,000 resamples over 100,000 prompts take seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp

from annotation.agreement._groups import response_slots
from annotation.agreement.alpha import DEFAULT_TIE_CODING, Level, TieCoding, alpha_from_coincidences, alpha_parts
from annotation.agreement.kendall import kendall_w_parts
from annotation.agreement.pairwise import Ties, pairwise_parts
from annotation.agreement.table import RankTable

_CELLS_PER_CHUNK = 4_000_000  # resamples x prompts counted at once: bounds memory to ~32 MB per chunk


def resampled_prompts(n_prompts: int, n_boot: int, seed: int, chunk: int | None = None) -> Iterator[np.ndarray]:
    """Chunks of resamples, each a (resamples, n_prompts) array of drawn prompt indices; the concatenation of the
    chunks does not depend on the chunk size, so both bootstrap routes see the same resamples."""
    rng = np.random.default_rng(seed)
    chunk = chunk or max(1, min(n_boot, _CELLS_PER_CHUNK // max(n_prompts, 1)))
    for start in range(0, n_boot, chunk):
        yield rng.integers(0, n_prompts, size=(min(chunk, n_boot - start), n_prompts))


def percentile_interval(values: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """The (alpha / 2, 1 - alpha / 2) quantiles of the finite values; NaNs when there are none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not values.size:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def resample_table(table: RankTable, prompts: np.ndarray) -> RankTable:
    """The table made of the given prompt codes in order, a prompt drawn twice becoming two prompts (new prompt
    and response codes); labelers, positions and models keep their codes."""
    order = np.argsort(table.prompt, kind="stable")
    size = np.bincount(table.prompt, minlength=table.n_prompts)
    start = np.cumsum(size) - size
    take = size[prompts]
    local = np.arange(take.sum()) - np.repeat(np.cumsum(take) - take, take)
    rows = order[np.repeat(start[prompts], take) + local]
    slot = np.repeat(np.arange(len(prompts)), take)
    slot_of_response, width = response_slots(table)
    return RankTable(
        prompt=slot,
        labeler=table.labeler[rows],
        response=slot * width + slot_of_response[table.response[rows]],
        rank=table.rank[rows],
        position=None if table.position is None else table.position[rows],
        model=None if table.model is None else table.model[rows],
        labeler_ids=table.labeler_ids,
        model_ids=table.model_ids,
    )


def bootstrap_ci(
    table: RankTable,
    statistic: Callable[[RankTable], float],
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile (1 - alpha) interval of ``statistic`` over ``n_boot`` resamples of the table's prompts.

    Deterministic for a seed. Each resample rebuilds a table, so for 100,000 prompts use a few dozen resamples,
    or ``bootstrap_sums_ci`` / the ``*_ci`` shortcuts."""
    prompts = np.unique(table.prompt)
    if not len(prompts):
        return float("nan"), float("nan")
    values = [
        statistic(resample_table(table, prompts[draw]))
        for chunk in resampled_prompts(len(prompts), n_boot, seed)
        for draw in chunk
    ]
    return percentile_interval(np.asarray(values), alpha)


def bootstrap_sums_ci(
    parts: np.ndarray | sp.spmatrix,
    finish: Callable[[np.ndarray], np.ndarray],
    groups: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile interval of a statistic that is a function of per-prompt sums.

    ``parts`` holds one row of sufficient statistics per prompt code; ``finish`` maps a (resamples, k) array of
    column sums to the statistic per resample; ``groups`` are the prompt codes to resample (default: all rows)."""
    values = bootstrap_sums(parts, finish, groups, n_boot, seed)
    return percentile_interval(values, alpha)


def bootstrap_sums(
    parts: np.ndarray | sp.spmatrix,
    finish: Callable[[np.ndarray], np.ndarray],
    groups: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """The statistic of each resample (see ``bootstrap_sums_ci``)."""
    # sparse even when dense: scipy's sparse x dense product is a plain loop, while a BLAS call on these skinny
    # products spawns threads that stall on a busy machine
    parts = sp.csr_matrix(parts, dtype=np.float64)
    groups = np.arange(parts.shape[0]) if groups is None else np.asarray(groups)
    if not len(groups):
        return np.empty(0)
    parts = parts[groups].T.tocsr()
    out = []
    for draws in resampled_prompts(len(groups), n_boot, seed):
        offsets = np.arange(len(draws))[:, None] * len(groups)
        counts = np.bincount((draws + offsets).ravel(), minlength=draws.size).reshape(draws.shape)
        sums = (parts @ counts.T.astype(np.float64)).T
        out.append(np.asarray(finish(np.asarray(sums))))
    return np.concatenate(out) if out else np.empty(0)


def alpha_ci(
    table: RankTable,
    level: Level = "ordinal",
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    tie_coding: TieCoding = DEFAULT_TIE_CODING,
) -> tuple[float, float]:
    """Bootstrap interval of ``krippendorff_alpha`` (same resamples as ``bootstrap_ci`` with that statistic)."""
    parts, domain = alpha_parts(table, tie_coding)
    V = len(domain)  # noqa: N806
    finish = lambda sums: alpha_from_coincidences(sums.reshape(len(sums), V, V), domain, level)  # noqa: E731
    return bootstrap_sums_ci(parts, finish, np.unique(table.prompt), n_boot, seed, alpha)


def pairwise_agreement_ci(
    table: RankTable, ties: Ties = "drop", n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Bootstrap interval of ``pairwise_agreement``."""
    return bootstrap_sums_ci(pairwise_parts(table, ties), _ratio, np.unique(table.prompt), n_boot, seed, alpha)


def kendall_w_mean_ci(table: RankTable, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Bootstrap interval of ``kendall_w_mean``."""
    return bootstrap_sums_ci(kendall_w_parts(table), _ratio, np.unique(table.prompt), n_boot, seed, alpha)


def _ratio(sums: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sums[:, 1] > 0, sums[:, 0] / sums[:, 1], np.nan)
