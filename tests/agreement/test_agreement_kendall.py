import numpy as np
import pytest
from scipy import stats

from annotation.agreement import RankTable, kendall_w, kendall_w_mean

# Anxiety ratings of 20 subjects by 3 raters (scores 1-6, many ties), the example data of the R package irr
# (Gamer, Lemon, Fellows & Singh), `kendall(anxiety, correct = TRUE)`: Wt = 0.54, Chisq(19) = 30.8,
# p = 0.0429 (values as asserted in the pyirr port's tests, sophiedkk/pyirr tests/test_kendall.py).
ANXIETY = [
    [3, 3, 2], [3, 6, 1], [3, 4, 4], [4, 6, 4], [5, 2, 3], [5, 4, 2], [2, 2, 1], [3, 4, 6], [5, 3, 1], [2, 3, 1],
    [2, 2, 1], [6, 3, 2], [1, 3, 3], [5, 3, 3], [2, 2, 1], [2, 2, 1], [1, 1, 3], [2, 3, 3], [4, 3, 2], [3, 4, 2],
]  # fmt: skip


def _table_from_matrix(scores):
    """One prompt; rows of ``scores`` are responses, columns labelers."""
    scores = np.asarray(scores, dtype=float)
    n, m = scores.shape
    rows = [(0, rater, subject, scores[subject, rater]) for subject in range(n) for rater in range(m)]
    return RankTable.from_rows(rows)


def test_kendall_w_with_tie_correction_reproduces_irr_anxiety_example():
    w = kendall_w(_table_from_matrix(ANXIETY))[0]
    n, m = 20, 3
    chisq = m * (n - 1) * w

    assert round(w, 2) == 0.54
    assert round(chisq, 1) == 30.8
    assert round(stats.chi2.sf(chisq, n - 1), 4) == 0.0429


def _w_scipy(scores):
    """Direct recomputation: midranks with scipy.stats.rankdata, then Kendall's formula with the tie correction."""
    ranks = np.column_stack([stats.rankdata(column) for column in scores.T])
    n, m = ranks.shape
    s = ((ranks.sum(axis=1) - m * (n + 1) / 2) ** 2).sum()
    ties = sum(
        (counts**3 - counts).sum() for column in scores.T for counts in [np.unique(column, return_counts=True)[1]]
    )
    return 12 * s / (m**2 * (n**3 - n) - m * ties)


def test_kendall_w_matches_a_per_prompt_scipy_recomputation_on_random_data(random_table):
    table = random_table(seed=11, n_prompts=60, tie_rate=0.5)
    w = kendall_w(table)

    for prompt in range(table.n_prompts):
        rows = table.prompt == prompt
        labelers = np.unique(table.labeler[rows])
        responses = np.unique(table.response[rows])
        if len(labelers) < 2:
            assert np.isnan(w[prompt])
            continue
        scores = np.full((len(responses), len(labelers)), np.nan)
        scores[np.searchsorted(responses, table.response[rows]), np.searchsorted(labelers, table.labeler[rows])] = (
            table.rank[rows]
        )
        assert w[prompt] == pytest.approx(_w_scipy(scores), abs=1e-12)


def test_kendall_w_uses_the_responses_every_labeler_ranked(random_table):
    table = random_table(seed=4, n_prompts=30, incomplete=0.3, per_prompt=(2, 4))
    w = kendall_w(table)

    for prompt in range(table.n_prompts):
        rows = table.prompt == prompt
        labelers = np.unique(table.labeler[rows])
        counts = np.bincount(table.response[rows])
        common = np.flatnonzero(counts == len(labelers))
        if len(common) < 2:
            continue
        scores = np.array(
            [[table.rank[rows & (table.labeler == lab) & (table.response == r)][0] for lab in labelers] for r in common]
        )
        if np.isfinite(w[prompt]):
            assert w[prompt] == pytest.approx(_w_scipy(scores), abs=1e-12)


def test_kendall_w_is_one_for_identical_rankings_and_zero_for_opposite_pairs():
    same = _table_from_matrix([[1, 1, 1], [2, 2, 2], [3, 3, 3]])
    opposite = _table_from_matrix([[1, 3], [2, 2], [3, 1]])

    assert kendall_w(same)[0] == pytest.approx(1.0)
    assert kendall_w(opposite)[0] == pytest.approx(0.0)


def test_kendall_w_is_nan_for_a_single_labeler_and_for_all_tied_rankings():
    single = _table_from_matrix([[1], [2], [3]])
    all_tied = _table_from_matrix([[1, 1], [1, 1], [1, 1]])

    assert np.isnan(kendall_w(single)[0])
    assert np.isnan(kendall_w(all_tied)[0])


def test_kendall_w_with_dense_and_averaged_ranks_agree():
    dense = _table_from_matrix([[1, 1], [1, 2], [2, 3], [3, 3]])
    averaged = _table_from_matrix([[1.5, 1], [1.5, 2], [3, 3.5], [4, 3.5]])

    assert kendall_w(dense)[0] == pytest.approx(kendall_w(averaged)[0])


def test_kendall_w_mean_skips_undefined_prompts():
    rows = [(0, 0, 0, 1), (0, 0, 1, 2), (0, 1, 0, 1), (0, 1, 1, 2), (1, 0, 2, 1), (1, 0, 3, 2)]
    table = RankTable.from_rows(rows)

    assert kendall_w(table).tolist()[1] != kendall_w(table).tolist()[1]  # NaN: one labeler
    assert kendall_w_mean(table) == pytest.approx(1.0)
