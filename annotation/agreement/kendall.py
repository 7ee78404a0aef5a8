"""Kendall's coefficient of concordance W, one value per prompt, with the correction for ties.

scipy has no Kendall's W; computing it prompt by prompt in Python would take minutes for 100,000 prompts, so the
rank sums and tie terms of all prompts come out of one sort and a few ``np.bincount`` calls.
"""

from __future__ import annotations

import numpy as np

from annotation.agreement._groups import grouped_midranks, ranking_codes
from annotation.agreement.table import RankTable


def kendall_w(table: RankTable) -> np.ndarray:
    """W per prompt code (length ``table.n_prompts``), corrected for ties:

        W = 12 S / (m^2 (n^3 - n) - m sum_j T_j),   T_j = sum over tie groups of labeler j of (t^3 - t)

    with m labelers, n responses, S = sum_i (R_i - m (n + 1) / 2)^2 and R_i the sum of the midranks response i got.
    W needs complete blocks, so it is computed on the responses every labeler of the prompt ranked, re-ranked
    within them. NaN where m < 2, n < 2, or every labeler tied everything (the denominator is 0).
    """
    n_prompts = table.n_prompts
    if not table.n_rows:
        return np.full(n_prompts, np.nan)
    ranking, ranking_prompt, _ = ranking_codes(table)
    complete = _complete_rows(table, ranking_prompt)
    if not complete.all():
        table = table.take(complete)
        ranking, ranking_prompt, _ = ranking_codes(table)
    midranks, ties = grouped_midranks(ranking, table.rank)
    m = np.bincount(ranking_prompt, minlength=n_prompts).astype(np.float64)
    n = np.bincount(table.prompt, minlength=n_prompts) / np.maximum(m, 1.0)
    rank_sum = np.bincount(table.response, weights=midranks, minlength=table.n_responses)
    count = np.bincount(table.response, minlength=table.n_responses)
    ranked = np.flatnonzero(count)
    owner = np.zeros(table.n_responses, dtype=np.int64)
    owner[table.response] = table.prompt
    deviation = rank_sum[ranked] - m[owner[ranked]] * (n[owner[ranked]] + 1.0) / 2.0
    s = np.bincount(owner[ranked], weights=deviation**2, minlength=n_prompts)
    tie_total = np.bincount(ranking_prompt, weights=ties, minlength=n_prompts)
    denominator = m**2 * (n**3 - n) - m * tie_total
    with np.errstate(invalid="ignore", divide="ignore"):
        w = 12.0 * s / denominator
    valid = (m >= 2) & (n >= 2) & (denominator > 1e-9 * np.maximum(m**2 * (n**3 - n), 1.0))
    return np.where(valid, np.clip(w, 0.0, 1.0), np.nan)


def kendall_w_mean(table: RankTable) -> float:
    """Unweighted mean of the per-prompt W over prompts where it is defined; NaN if none."""
    w = kendall_w(table)
    w = w[np.isfinite(w)]
    return float(w.mean()) if w.size else float("nan")


def kendall_w_parts(table: RankTable) -> np.ndarray:
    """Per-prompt ``[W, 1]`` (``[0, 0]`` where W is undefined), for ``bootstrap_sums_ci`` of ``kendall_w_mean``."""
    w = kendall_w(table)
    defined = np.isfinite(w)
    return np.column_stack([np.where(defined, w, 0.0), defined.astype(np.float64)])


def _complete_rows(table: RankTable, ranking_prompt: np.ndarray) -> np.ndarray:
    """Mask of rows whose response every labeler of its prompt ranked (all rows when rankings are complete)."""
    m = np.bincount(ranking_prompt, minlength=table.n_prompts)
    count = np.bincount(table.response, minlength=table.n_responses)
    return count[table.response] == m[table.prompt]
