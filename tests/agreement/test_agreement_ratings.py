"""Agreement on the per-response form (annotation.agreement.ratings), against values worked out by hand from
Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", and Fleiss & Cuzick (1979), and against the
`krippendorff` package on random data with missing values."""

import krippendorff
import numpy as np
import pytest

from annotation.agreement.ratings import label_kappa, rating_alpha


def long_form(matrix):
    """(prompt, labeler, response, value) from a labelers x responses matrix (NaN: not rated); two responses per
    prompt."""
    matrix = np.asarray(matrix, dtype=np.float64)
    labeler, response = np.nonzero(~np.isnan(matrix))
    return response // 2, labeler, response, matrix[labeler, response]


def test_interval_alpha_of_a_score_by_hand():
    # Two labelers score three responses 1, 2, 3 and 1, 3, 3. Coincidences: o11 = 2, o23 = o32 = 1, o33 = 2, so
    # n1 = 2, n2 = 1, n3 = 3, n = 6. Observed: sum o_ck (c - k)^2 = 2. Expected: sum n_c n_k (c - k)^2 over
    # ordered pairs = 2 * (2*1*1 + 2*3*4 + 1*3*1) = 58. alpha = 1 - (n - 1) * 2 / 58 = 48 / 58.
    prompt, labeler, response, value = long_form([[1, 2, 3], [1, 3, 3]])
    result = rating_alpha(prompt, labeler, response, value, "interval")
    assert result.alpha == pytest.approx(48 / 58)
    assert (result.n_units, result.n_values) == (3, 6)


def test_nominal_alpha_and_fleiss_kappa_of_a_label_by_hand():
    # Two labelers label four responses yes, yes, no, no and yes, no, no, no. Coincidences: o11 = 2,
    # o10 = o01 = 1, o00 = 4; n1 = 3, n0 = 5, n = 8. alpha = 1 - 7 * 2 / (2 * 3 * 5) = 16 / 30.
    # Fleiss: P = (1 + 0 + 1 + 1) / 4 = 0.75, P_e = (3/8)^2 + (5/8)^2 = 34/64, kappa = (0.75 - 34/64) / (30/64).
    prompt, labeler, response, value = long_form([[1, 1, 0, 0], [1, 0, 0, 0]])
    assert rating_alpha(prompt, labeler, response, value, "nominal").alpha == pytest.approx(16 / 30)
    assert label_kappa(response, value) == pytest.approx((0.75 - 34 / 64) / (30 / 64))


@pytest.mark.parametrize("level", ["interval", "ordinal", "nominal"])
def test_alpha_equals_the_krippendorff_package_with_missing_values(level):
    rng = np.random.default_rng(7)
    matrix = rng.integers(1, 8, size=(4, 30)).astype(np.float64)
    matrix[:, ::3] = np.clip(matrix[:, ::3] + rng.integers(-1, 2, size=(4, 10)), 1, 7)
    matrix[rng.random(matrix.shape) < 0.25] = np.nan
    prompt, labeler, response, value = long_form(matrix)
    ours = rating_alpha(prompt, labeler, response, value, level)
    assert ours.alpha == pytest.approx(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level))


def test_unpairable_and_missing_values_are_left_out():
    # Response 2 has one value only; NaN values are not ratings.
    prompt, labeler, response, value = long_form([[1, 2, 5], [1, 3, np.nan]])
    result = rating_alpha(prompt, labeler, response, value, "interval")
    assert (result.n_units, result.n_values) == (2, 4)
    assert np.isnan(rating_alpha(*long_form([[1, 2], [np.nan, np.nan]])).alpha)  # nothing pairable
    assert np.isnan(rating_alpha(*long_form([[3, 3], [3, 3]])).alpha)  # a single value: no expected disagreement


def test_bootstrap_interval_contains_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(3)
    truth = rng.integers(1, 8, size=40)
    matrix = np.clip(truth + rng.integers(-1, 2, size=(3, 40)), 1, 7).astype(np.float64)
    args = long_form(matrix)
    first = rating_alpha(*args, "interval", n_boot=200, seed=5)
    again = rating_alpha(*args, "interval", n_boot=200, seed=5)
    assert first.interval == again.interval
    assert first.interval[0] <= first.alpha <= first.interval[1]


def test_a_labeler_rating_a_response_twice_is_refused():
    with pytest.raises(ValueError, match="rated response code 4 more than once"):
        rating_alpha([0, 0], [1, 1], [4, 4], [3.0, 4.0])
