"""Agreement on flags ("unsafe", "all responses bad", ...): Fleiss' kappa with a varying number of raters.

statsmodels is not a dependency and its ``fleiss_kappa`` assumes the same number of raters per item, so the
unequal-raters formula of Fleiss & Cuzick (1979) is written out here (a few lines on the items x categories counts).
"""

from __future__ import annotations

import numpy as np

from annotation.agreement.alpha import alpha_long

FLAGS_LENGTH_MISMATCH = "prompt, labeler and flagged must have the same length."
FLAGS_DUPLICATE = "Labeler code {labeler} flagged prompt code {prompt} more than once."
FLEISS_BAD_COUNTS = "counts must be a non-negative items x categories matrix."


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa from an items x categories matrix of rater counts; items may have different rater totals.

    Fleiss & Cuzick (1979): each item's agreement P_i = sum_j n_ij (n_ij - 1) / (m_i (m_i - 1)) is weighted by
    its m_i - 1, so P = sum_i sum_j n_ij (n_ij - 1) / m_i / sum_i (m_i - 1); p_j = sum_i n_ij / sum_i m_i,
    P_e = sum_j p_j^2, kappa = (P - P_e) / (1 - P_e). For two categories this is their formula
    1 - sum_i x_i (m_i - x_i) / m_i / (N (m_bar - 1) p q); with equal m_i it is Fleiss (1971) exactly (the plain
    mean of P_i). Items rated by fewer than two raters are left out (as alpha leaves out unpairable values).
    NaN when no item has two raters or every rating falls in one category (P_e = 1).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or (counts < 0).any():
        raise ValueError(FLEISS_BAD_COUNTS)
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    if not len(m):
        return float("nan")
    # the unweighted mean of P_i overweights items with few raters: 0.333 instead of 0.6 on [[0,3],[1,1],[3,0]]
    p_observed = float(((counts * (counts - 1.0)).sum(axis=1) / m).sum() / (m - 1.0).sum())
    p_category = counts.sum(axis=0) / m.sum()
    p_expected = float((p_category**2).sum())
    if p_expected >= 1.0 - 1e-12:
        return float("nan")
    return float((p_observed - p_expected) / (1.0 - p_expected))


def flag_counts(
    prompt: np.ndarray, labeler: np.ndarray, flagged: np.ndarray, n_prompts: int | None = None
) -> np.ndarray:
    """Prompts x [not flagged, flagged] counts from one (prompt, labeler, flagged) entry per ranking."""
    prompt = np.asarray(prompt, dtype=np.int64)
    labeler = np.asarray(labeler, dtype=np.int64)
    flagged = np.asarray(flagged, dtype=bool)
    if not (len(prompt) == len(labeler) == len(flagged)):
        raise ValueError(FLAGS_LENGTH_MISMATCH)
    n_labelers = int(labeler.max()) + 1 if labeler.size else 1
    key = np.sort(prompt * np.int64(n_labelers) + labeler)
    dup = np.flatnonzero(key[1:] == key[:-1])
    if dup.size:
        duplicate_prompt, duplicate_labeler = divmod(int(key[dup[0]]), n_labelers)
        raise ValueError(FLAGS_DUPLICATE.format(labeler=duplicate_labeler, prompt=duplicate_prompt))
    if n_prompts is None:
        n_prompts = int(prompt.max()) + 1 if prompt.size else 0
    cells = np.bincount(prompt * 2 + flagged, minlength=2 * n_prompts)
    return cells.reshape(n_prompts, 2)


def flag_kappa(prompt: np.ndarray, labeler: np.ndarray, flagged: np.ndarray) -> float:
    """Fleiss' kappa of a boolean flag, items = prompts, raters = the labelers who ranked each prompt."""
    return fleiss_kappa(flag_counts(prompt, labeler, flagged))


def flag_alpha(prompt: np.ndarray, labeler: np.ndarray, flagged: np.ndarray) -> float:
    """Nominal Krippendorff's alpha of a boolean flag (same input as ``flag_kappa``); it differs from kappa by
    alpha's small-sample correction of the expected agreement (and, with unequal raters, by weighting items by
    m_i instead of m_i - 1)."""
    flag_counts(prompt, labeler, flagged)  # validates
    return alpha_long(np.asarray(prompt), np.asarray(flagged, dtype=np.float64), "nominal")
