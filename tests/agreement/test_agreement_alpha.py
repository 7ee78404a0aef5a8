from dataclasses import replace

import krippendorff
import numpy as np
import pytest
from scipy import stats

from annotation.agreement import (
    DEFAULT_TIE_CODING,
    RankTable,
    alpha_from_reliability_data,
    alpha_long,
    coded_ranks,
    krippendorff_alpha,
)
from annotation.agreement import alpha as alpha_module

NAN = np.nan
# K. Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011), section C: 4 coders x 12 units with
# missing values. Published: nominal 0.743, ordinal 0.815, interval 0.849, ratio 0.797.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]
LEVELS = ["nominal", "ordinal", "interval", "ratio"]


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_alpha_reproduces_krippendorff_2011_worked_example(level, published):
    assert round(alpha_from_reliability_data(KRIPPENDORFF_2011, level), 3) == published


def _random_reliability_data(seed, coders, units, values, missing):
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, values + 1, units)
    data = np.clip(truth[None, :] + rng.integers(-1, 2, (coders, units)), 1, values).astype(float)
    data[rng.random(data.shape) < missing] = NAN
    return data


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_matches_krippendorff_package_on_random_data_with_missing_values(level, seed):
    data = _random_reliability_data(seed, coders=5, units=200, values=6, missing=0.4)

    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)

    assert alpha_from_reliability_data(data, level) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_matches_krippendorff_package_on_a_mid_size_array(level):
    # 20,000 units x 5 coders: the same shape of problem as the 100,000 x 4 benchmark, checked for correctness only
    data = _random_reliability_data(7, coders=5, units=20_000, values=4, missing=0.1)

    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)

    assert alpha_from_reliability_data(data, level) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_sparse_route_for_many_distinct_values_matches_package(level, monkeypatch):
    monkeypatch.setattr(alpha_module, "_DENSE_LIMIT", 0)
    rng = np.random.default_rng(3)
    data = np.round(rng.normal(10, 2, 300) + rng.normal(0, 1, (4, 300)), 1)  # ~100 distinct values
    data[rng.random(data.shape) < 0.3] = NAN

    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)

    assert alpha_from_reliability_data(data, level) == pytest.approx(expected, abs=1e-10)


def _recoded_per_ranking(table, method):
    """Each labeler's ranks of a prompt recoded with scipy.stats.rankdata, one ranking at a time."""
    rank = table.rank.copy()
    for prompt, labeler in {(int(p), int(lab)) for p, lab in zip(table.prompt, table.labeler, strict=True)}:
        rows = (table.prompt == prompt) & (table.labeler == labeler)
        rank[rows] = stats.rankdata(table.rank[rows], method=method)
    return replace(table, rank=rank)


@pytest.mark.parametrize("tie_coding", ["dense", "average"])
@pytest.mark.parametrize("level", LEVELS)
def test_krippendorff_alpha_on_a_rank_table_uses_responses_as_units(
    level, tie_coding, random_table, as_reliability_matrix
):
    table = random_table(seed=5, incomplete=0.3)
    recoded = _recoded_per_ranking(table, tie_coding)

    expected = krippendorff.alpha(reliability_data=as_reliability_matrix(recoded), level_of_measurement=level)

    assert krippendorff_alpha(table, level, tie_coding=tie_coding) == pytest.approx(expected, abs=1e-10)


def test_alpha_drops_units_coded_once():
    # the third unit has a single value: it must not change alpha (Krippendorff 2011, section C)
    with_single = alpha_long(np.array([0, 0, 1, 1, 2]), np.array([1.0, 1.0, 2.0, 3.0, 9.0]), "interval")
    without = alpha_long(np.array([0, 0, 1, 1]), np.array([1.0, 1.0, 2.0, 3.0]), "interval")

    assert with_single == pytest.approx(without)


def test_alpha_is_nan_for_a_single_labeler():
    table = RankTable(prompt=[0, 0, 0], labeler=[0, 0, 0], response=[0, 1, 2], rank=[1, 2, 3])

    assert np.isnan(krippendorff_alpha(table))


def test_alpha_is_one_when_labelers_agree_and_nan_when_only_one_value_is_used():
    agree = RankTable(prompt=[0] * 4, labeler=[0, 0, 1, 1], response=[0, 1, 0, 1], rank=[1, 2, 1, 2])
    all_tied = RankTable(prompt=[0] * 4, labeler=[0, 0, 1, 1], response=[0, 1, 0, 1], rank=[1, 1, 1, 1])

    assert krippendorff_alpha(agree) == pytest.approx(1.0)
    assert np.isnan(krippendorff_alpha(all_tied))


def test_alpha_rejects_an_unknown_level():
    with pytest.raises(ValueError, match="Unknown level"):
        alpha_long(np.array([0, 0]), np.array([1.0, 2.0]), "cardinal")


# Ties coded two ways (issue #12 item 12). One prompt, responses A, B, C; labeler 1 ties A and B on top (given as
# competition ranks 1, 1, 3), labeler 2 ranks strictly, labeler 3 ties A and C below B.
TIED_RANKS = RankTable(
    prompt=[0] * 9,
    labeler=[0, 0, 0, 1, 1, 1, 2, 2, 2],
    response=[0, 1, 2, 0, 1, 2, 0, 1, 2],
    rank=[1, 1, 3, 1, 2, 3, 2, 1, 2],
)
# the same rankings as coders x units, recoded by hand
TIED_DENSE = [[1, 1, 2], [1, 2, 3], [2, 1, 2]]
TIED_AVERAGE = [[1.5, 1.5, 3], [1, 2, 3], [2.5, 1, 2.5]]


@pytest.mark.parametrize("level", ["ordinal", "interval"])
def test_alpha_tie_coding_dense_and_average_match_the_package_on_the_recoded_ranks(level):
    dense = krippendorff.alpha(reliability_data=np.array(TIED_DENSE, float), level_of_measurement=level)
    average = krippendorff.alpha(reliability_data=np.array(TIED_AVERAGE, float), level_of_measurement=level)

    assert krippendorff_alpha(TIED_RANKS, level, tie_coding="dense") == pytest.approx(dense, abs=1e-12)
    assert krippendorff_alpha(TIED_RANKS, level, tie_coding="average") == pytest.approx(average, abs=1e-12)
    assert abs(dense - average) > 0.1  # ordinal 0.320 vs 0.506, interval 0.333 vs 0.511


def test_alpha_tie_coding_defaults_to_average_ranks():
    assert DEFAULT_TIE_CODING == "average"
    assert krippendorff_alpha(TIED_RANKS) == pytest.approx(krippendorff_alpha(TIED_RANKS, tie_coding="average"))


def test_alpha_tie_coding_does_not_matter_without_ties(random_table):
    table = random_table(seed=2, tie_rate=0.0)

    assert krippendorff_alpha(table, tie_coding="dense") == pytest.approx(
        krippendorff_alpha(table, tie_coding="average")
    )


def test_coded_ranks_recode_each_ranking_on_its_own():
    assert coded_ranks(TIED_RANKS, "dense").tolist() == [1, 1, 2, 1, 2, 3, 2, 1, 2]
    assert coded_ranks(TIED_RANKS, "average").tolist() == [1.5, 1.5, 3, 1, 2, 3, 2.5, 1, 2.5]


def test_alpha_rejects_an_unknown_tie_coding():
    with pytest.raises(ValueError, match="tie coding"):
        krippendorff_alpha(TIED_RANKS, tie_coding="min")
