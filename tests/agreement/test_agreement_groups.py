import numpy as np
import pytest
from scipy import stats

from annotation.agreement import _groups


@pytest.mark.parametrize("route", ["counting", "sorting"])
def test_grouped_midranks_match_scipy_rankdata_per_group(route, monkeypatch):
    if route == "sorting":
        monkeypatch.setattr(_groups, "_COUNTING_CELLS", -(10**9))
    rng = np.random.default_rng(0)
    group = rng.integers(0, 30, 500)
    value = rng.integers(1, 6, 500) / 2.0  # halves: averaged ranks occur in the data

    midranks, ties = _groups.grouped_midranks(group, value)

    for g in range(30):
        rows = group == g
        assert midranks[rows] == pytest.approx(stats.rankdata(value[rows]))
        counts = np.unique(value[rows], return_counts=True)[1]
        assert ties[g] == (counts**3 - counts).sum()


@pytest.mark.parametrize("route", ["counting", "sorting"])
def test_grouped_dense_ranks_match_scipy_rankdata_per_group(route, monkeypatch):
    if route == "sorting":
        monkeypatch.setattr(_groups, "_COUNTING_CELLS", -(10**9))
    rng = np.random.default_rng(1)
    group = rng.integers(0, 30, 500)
    value = rng.integers(1, 6, 500) / 2.0

    dense = _groups.grouped_dense_ranks(group, value)

    for g in range(30):
        rows = group == g
        assert dense[rows].tolist() == stats.rankdata(value[rows], method="dense").tolist()


@pytest.mark.parametrize("key", [[5, 5, 9, 9, 9, 2], [5, 2, 5, 9], [1, 1, 2, 3, 3]])
def test_dense_codes_invert_to_the_keys(key):
    key = np.array(key)

    codes, unique = _groups.dense_codes(key)

    assert np.array_equal(unique[codes], key)
    assert len(unique) == len(set(key.tolist()))


def test_pairs_within_gives_every_unordered_pair_of_a_group_once():
    group = np.array([2, 0, 2, 2, 0, 1])

    pairs = _groups.pairs_within(group, key=np.arange(6))

    assert sorted(zip(pairs.first.tolist(), pairs.second.tolist())) == [(0, 2), (0, 3), (1, 4), (2, 3)]
