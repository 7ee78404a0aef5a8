"""Per-labeler quality: agreement with the others, gold accuracy, speed, flag rate, position bias, outliers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

from annotation.agreement._groups import group_mean, group_median, group_pearson, grouped_midranks, ranking_codes
from annotation.agreement.pairwise import ranked_pairs
from annotation.agreement.table import RankTable

LABELER_ROWS_MISMATCH = "{name} has {got} entries; it must align with the table's {expected} rows."
_EPS = 1e-9  # mean ranks are ratios of small integers: differences below this are ties


@dataclass(frozen=True)
class RankingAgreement:
    """Per ranking: its prompt and labeler, and Kendall's tau-b between the labeler's ranks and the mean rank the
    other labelers of the prompt gave the same responses (NaN when undefined)."""

    prompt: np.ndarray
    labeler: np.ndarray
    tau: np.ndarray


def consensus_agreement(table: RankTable) -> RankingAgreement:
    """Leave-one-out agreement of every ranking with the consensus of the prompt's other labelers.

    The consensus of response i without labeler l is the mean of the other labelers' midranks of i. Only
    responses that at least one other labeler ranked take part. tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)), as in
    ``scipy.stats.kendalltau``; computed for all rankings at once from their response pairs.
    """
    ranking, ranking_prompt, ranking_labeler = ranking_codes(table)
    n_rankings = len(ranking_prompt)
    midranks, _ = grouped_midranks(ranking, table.rank) if table.n_rows else (np.empty(0), None)
    total = np.bincount(table.response, weights=midranks, minlength=table.n_responses)
    count = np.bincount(table.response, minlength=table.n_responses)
    others = count[table.response] - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        consensus = np.where(others > 0, (total[table.response] - midranks) / others, np.nan)
    pairs = ranked_pairs(table)
    a, b = pairs.first_row, pairs.second_row
    x = np.sign(midranks[a] - midranks[b])
    difference = consensus[a] - consensus[b]
    y = np.where(np.abs(difference) < _EPS, 0.0, np.sign(difference))
    keep = np.isfinite(difference)
    owner = ranking[a][keep]
    x, y = x[keep], y[keep]
    n0 = np.bincount(owner, minlength=n_rankings).astype(np.float64)
    untied_x = n0 - np.bincount(owner, weights=x == 0, minlength=n_rankings)
    untied_y = n0 - np.bincount(owner, weights=y == 0, minlength=n_rankings)
    score = np.bincount(owner, weights=x * y, minlength=n_rankings)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = score / np.sqrt(untied_x * untied_y)
    tau[(untied_x == 0) | (untied_y == 0)] = np.nan
    return RankingAgreement(prompt=ranking_prompt, labeler=ranking_labeler, tau=np.clip(tau, -1.0, 1.0))


def labeler_scores(
    table: RankTable,
    gold: Mapping[int, Mapping[int, float]] | None = None,
    times: np.ndarray | None = None,
    flags: np.ndarray | None = None,
) -> list[dict[str, float | int]]:
    """One dict per labeler code that ranked anything, with:

    - ``n_rankings``; ``agreement``: mean tau-b with the leave-one-out consensus (``consensus_agreement``) over the
      rankings where tau-b is defined; ``n_agreement_undefined`` counts the others (a ranking sharing fewer than
      two responses with the prompt's other labelers, or all tied on either side);
    - ``gold_accuracy``: over gold prompts (``gold``: prompt code -> {response code: reference rank}), the share of
      response pairs the reference orders strictly that the labeler orders the same way; a labeler's tie scores
      1/2 (chance). NaN without gold pairs. ``n_gold_pairs`` counts them;
    - ``median_seconds``: median over rankings of ``times`` (seconds, aligned with the table's rows, constant within
      a ranking: its first row is used); ``flag_rate``: share of rankings with ``flags`` (same alignment) true;
    - ``position_bias``: Spearman correlation between given rank and shown position over the labeler's rows;
      positive means earlier-shown responses get better (lower) ranks. NaN without positions.
    """
    n_labelers = table.n_labelers
    ranking, _, ranking_labeler = ranking_codes(table)
    _, first_row = np.unique(ranking, return_index=True)
    agreement = consensus_agreement(table)
    defined = np.isfinite(agreement.tau)
    columns = {
        "n_rankings": np.bincount(ranking_labeler, minlength=n_labelers),
        "agreement": group_mean(agreement.labeler[defined], agreement.tau[defined], n_labelers),
        "n_agreement_undefined": np.bincount(agreement.labeler[~defined], minlength=n_labelers),
        "position_bias": _position_bias(table),
        "median_seconds": np.full(n_labelers, np.nan),
        "flag_rate": np.full(n_labelers, np.nan),
    }
    columns["gold_accuracy"], columns["n_gold_pairs"] = _gold_accuracy(table, gold)
    if times is not None:
        seconds = _per_ranking(times, first_row, table.n_rows, "times").astype(np.float64)
        columns["median_seconds"] = group_median(ranking_labeler, seconds, n_labelers)
    if flags is not None:
        flagged = _per_ranking(flags, first_row, table.n_rows, "flags").astype(np.float64)
        columns["flag_rate"] = group_mean(ranking_labeler, flagged, n_labelers)
    active = np.flatnonzero(columns["n_rankings"])
    return [
        {"labeler": int(code), **{name: _scalar(values[code]) for name, values in columns.items()}} for code in active
    ]


def _per_ranking(values: np.ndarray, first_row: np.ndarray, n_rows: int, name: str) -> np.ndarray:
    values = np.asarray(values)
    if len(values) != n_rows:
        raise ValueError(LABELER_ROWS_MISMATCH.format(name=name, got=len(values), expected=n_rows))
    return values[first_row]


def _scalar(value: np.generic) -> float | int:
    return int(value) if np.issubdtype(type(value), np.integer) else float(value)


def _position_bias(table: RankTable) -> np.ndarray:
    if table.position is None or not table.n_rows:
        return np.full(table.n_labelers, np.nan)
    rank_ranks, _ = grouped_midranks(table.labeler, table.rank)
    position_ranks, _ = grouped_midranks(table.labeler, table.position.astype(np.float64))
    # rank 1 = best: a positive correlation with position (0 = first shown) means a primacy bias
    return group_pearson(table.labeler, rank_ranks, position_ranks, table.n_labelers)


def _gold_accuracy(table: RankTable, gold: Mapping[int, Mapping[int, float]] | None) -> tuple[np.ndarray, np.ndarray]:
    n_labelers = table.n_labelers
    if not gold:
        return np.full(n_labelers, np.nan), np.zeros(n_labelers, dtype=np.int64)
    reference = np.full(table.n_responses, np.nan)
    for ranks in gold.values():
        for response, rank in ranks.items():
            if 0 <= response < table.n_responses:
                reference[response] = rank
    is_gold = np.isfinite(reference[table.response])
    pairs = ranked_pairs(table.take(is_gold))
    truth = np.sign(reference[pairs.second] - reference[pairs.first])
    strict = np.isfinite(truth) & (truth != 0)
    labeler, outcome, truth = pairs.labeler[strict], pairs.outcome[strict], truth[strict]
    credit = np.where(outcome == 0, 0.5, (outcome == truth).astype(np.float64))
    return group_mean(labeler, credit, n_labelers), np.bincount(labeler, minlength=n_labelers)


@dataclass(frozen=True)
class Outlier:
    labeler: int
    p_value: float  # Holm-adjusted
    median_agreement: float


def outlier_tests(agreement: RankingAgreement, min_rankings: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labelers, p_values, holm_adjusted)`` of the test ``outlier_labelers`` describes, for every labeler with at
    least ``min_rankings`` defined agreements (empty when no labeler qualifies or nobody else is left)."""
    defined = np.isfinite(agreement.tau)
    labeler, tau = agreement.labeler[defined], agreement.tau[defined]
    size = np.bincount(labeler)
    tested = np.flatnonzero(size >= min_rankings)
    if not len(tested) or len(tau) <= size[tested].max():
        empty = np.empty(0)
        return tested[:0], empty, empty
    p_values = _mann_whitney_less(labeler, tau, tested)
    return tested, p_values, holm(p_values)


def outlier_labelers(agreement: RankingAgreement, alpha: float = 0.05, min_rankings: int = 5) -> list[Outlier]:
    """Labelers whose agreement with the consensus is significantly below the others', most significant first.

    Test: for each labeler with at least ``min_rankings`` defined per-ranking tau-b values, a one-sided
    Mann-Whitney U test (normal approximation with tie and continuity corrections, as
    ``scipy.stats.mannwhitneyu(mine, others, alternative="less", method="asymptotic")``) of their values against
    the pooled values of all other labelers; p-values are Holm-adjusted over the labelers tested; a labeler is
    flagged when the adjusted p < alpha.
    Written out (not a loop over scipy) because every test compares against the same pooled sample: one ranking of
    all values gives every labeler's U at once.
    """
    tested, _, adjusted = outlier_tests(agreement, min_rankings)
    defined = np.isfinite(agreement.tau)
    medians = group_median(
        agreement.labeler[defined], agreement.tau[defined], int(agreement.labeler.max(initial=0)) + 1
    )
    flagged = [Outlier(int(code), float(p), float(medians[code])) for code, p in zip(tested, adjusted, strict=True)]
    return sorted((o for o in flagged if o.p_value < alpha), key=lambda o: o.p_value)


def _mann_whitney_less(labeler: np.ndarray, values: np.ndarray, tested: np.ndarray) -> np.ndarray:
    n = len(values)
    ranks = stats.rankdata(values)
    _, tie_counts = np.unique(values, return_counts=True)
    tie_term = float((tie_counts.astype(np.float64) ** 3 - tie_counts).sum())
    n1 = np.bincount(labeler)[tested].astype(np.float64)
    rank_sum = np.bincount(labeler, weights=ranks)[tested]
    n2 = n - n1
    u = rank_sum - n1 * (n1 + 1.0) / 2.0
    mean = n1 * n2 / 2.0
    sd = np.sqrt(n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0))))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (u - mean + 0.5) / sd
    return np.where(sd > 0, stats.norm.cdf(z), 1.0)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values: p_(i) * (m - i + 1), made monotone, capped at 1."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    scaled = p[order] * (len(p) - np.arange(len(p)))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted
