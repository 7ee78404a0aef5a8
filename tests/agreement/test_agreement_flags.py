import numpy as np
import pytest

from annotation.agreement import flag_alpha, flag_counts, flag_kappa, fleiss_kappa

# Worked example of the Wikipedia article "Fleiss' kappa": 10 subjects, 14 raters, 5 categories;
# published P = 0.378, P_e = 0.213, kappa = 0.210.
WIKIPEDIA_FLEISS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]

# J. L. Fleiss (1971), "Measuring nominal scale agreement among many raters", Psychological Bulletin 76(5):
# 30 patients, 6 psychiatrists, 5 diagnoses (1 depression, 2 personality disorder, 3 schizophrenia, 4 neurosis,
# 5 other); published kappa = 0.430. Data as shipped in R's irr package (`diagnoses`); one string per patient.
FLEISS_1971 = [
    "444444", "222555", "233335", "555555", "222444", "113333", "333355", "113334", "114444", "555555",
    "144444", "124444", "222333", "144444", "224445", "333335", "111455", "111112", "224444", "133555",
    "555555", "244444", "224555", "114444", "144445", "222224", "111155", "224444", "133333", "555555",
]  # fmt: skip


def test_fleiss_kappa_reproduces_the_wikipedia_worked_example():
    assert round(fleiss_kappa(np.array(WIKIPEDIA_FLEISS)), 3) == 0.210


def test_fleiss_kappa_reproduces_fleiss_1971():
    counts = np.array([[patient.count(str(c)) for c in range(1, 6)] for patient in FLEISS_1971])

    assert round(fleiss_kappa(counts), 3) == 0.430


def _fleiss_by_hand(counts):
    """Fleiss' kappa for unequal raters written with plain Python loops: every item's agreement P_i weighted by
    its m_i - 1 (Fleiss & Cuzick 1979, generalised to k categories), p_j from all ratings."""
    agreeing, weight, totals, raters = 0.0, 0, [0.0] * len(counts[0]), 0
    for row in counts:
        m = sum(row)
        if m < 2:
            continue
        agreeing += sum(n * (n - 1) for n in row) / m  # = (m - 1) * P_i
        weight += m - 1
        totals = [t + n for t, n in zip(totals, row, strict=True)]
        raters += m
    p_e = sum((t / raters) ** 2 for t in totals)
    return (agreeing / weight - p_e) / (1 - p_e)


def _fleiss_cuzick(counts):
    """Fleiss & Cuzick (1979), Applied Psychological Measurement 3(4): 537-542, for two categories as printed:
    kappa = 1 - sum_i x_i (n_i - x_i) / n_i / (N (n_bar - 1) p_bar q_bar), x_i the positive judgments."""
    n = [a + b for a, b in counts]
    x = [b for _, b in counts]
    n_bar = sum(n) / len(n)
    p_bar = sum(x) / sum(n)
    disagreement = sum(xi * (ni - xi) / ni for xi, ni in zip(x, n, strict=True))
    return 1 - disagreement / (len(n) * (n_bar - 1) * p_bar * (1 - p_bar))


def test_fleiss_kappa_with_unequal_raters_follows_fleiss_cuzick_not_the_unweighted_mean():
    # Issue #12 item 11: 3 raters agree "flagged", 2 raters split, 3 raters agree "not flagged".
    # P_i = 1, 0, 1; p = 4/8, P_e = 1/2. The unweighted mean P = 2/3 gave kappa = 1/3; Fleiss-Cuzick weights the
    # items by n_i - 1 = 2, 1, 2: P = 4/5, kappa = (4/5 - 1/2) / (1/2) = 0.6 (= 1 - (1/2) / (3 * 5/3 * 1/4)).
    counts = [[0, 3], [1, 1], [3, 0]]

    assert _fleiss_cuzick(counts) == pytest.approx(0.6)
    assert fleiss_kappa(np.array(counts)) == pytest.approx(0.6)


def test_fleiss_kappa_with_unequal_raters_and_three_categories_matches_a_hand_computation():
    # sum_j n_ij (n_ij - 1) / m_i = 2/3, 3, 0, 2/3 -> 13/3 over sum (m_i - 1) = 8: P = 13/24;
    # p = (3, 4, 5) / 12, P_e = 50/144 = 25/72; kappa = (39/72 - 25/72) / (47/72) = 14/47.
    counts = [[2, 1, 0], [0, 0, 4], [1, 1, 0], [0, 2, 1]]

    assert fleiss_kappa(np.array(counts)) == pytest.approx(14 / 47)


def test_fleiss_kappa_with_two_categories_equals_fleiss_cuzick():
    counts = [[3, 0], [1, 1], [0, 4], [2, 3], [0, 2], [5, 1]]

    assert fleiss_kappa(np.array(counts)) == pytest.approx(_fleiss_cuzick(counts))


def test_fleiss_kappa_with_varying_raters_per_item_matches_a_hand_computation():
    counts = [[3, 0], [1, 1], [0, 4], [2, 3], [1, 0], [0, 2]]  # item 5 has a single rater: left out

    assert fleiss_kappa(np.array(counts)) == pytest.approx(_fleiss_by_hand(counts))


def test_fleiss_kappa_with_equal_raters_is_the_unweighted_mean_of_fleiss_1971():
    counts = [[2, 1, 0], [0, 0, 3], [1, 1, 1], [0, 3, 0]]
    p_bar = (1 / 3 + 1 + 0 + 1) / 4
    p_e = (3 / 12) ** 2 + (5 / 12) ** 2 + (4 / 12) ** 2

    assert fleiss_kappa(np.array(counts)) == pytest.approx((p_bar - p_e) / (1 - p_e))


def test_fleiss_kappa_is_nan_when_every_rating_is_in_one_category():
    assert np.isnan(fleiss_kappa(np.array([[3, 0], [2, 0]])))


def test_flag_kappa_counts_one_flag_per_labeler_and_prompt():
    prompt = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    labeler = np.array([0, 1, 2, 0, 1, 0, 1, 2])
    flagged = np.array([1, 1, 0, 0, 0, 1, 1, 1], dtype=bool)

    counts = flag_counts(prompt, labeler, flagged)

    assert counts.tolist() == [[1, 2], [2, 0], [0, 3]]
    assert flag_kappa(prompt, labeler, flagged) == pytest.approx(_fleiss_by_hand(counts.tolist()))


def test_flag_alpha_is_nominal_alpha_and_close_to_kappa():
    rng = np.random.default_rng(0)
    prompt = np.repeat(np.arange(200), 3)
    labeler = np.tile(np.arange(3), 200)
    flagged = (rng.random(200) < 0.2)[prompt] ^ (rng.random(600) < 0.1)

    kappa = flag_kappa(prompt, labeler, flagged)

    # alpha only adds a small-sample correction to kappa's expected agreement: tiny with 600 ratings
    assert flag_alpha(prompt, labeler, flagged) == pytest.approx(kappa, abs=0.01)


def test_flag_counts_rejects_a_labeler_flagging_a_prompt_twice():
    with pytest.raises(ValueError, match="more than once"):
        flag_counts(np.array([4, 4]), np.array([1, 1]), np.array([True, False]))
