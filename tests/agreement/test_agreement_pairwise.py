from itertools import combinations

import numpy as np
import pytest

from annotation.agreement import RankTable, pairwise_agreement, pairwise_agreement_by_prompt, ranked_pairs


def _table(rankings):
    """rankings: {(prompt, labeler): {response: rank}}."""
    rows = [(p, lab, r, rank) for (p, lab), ranks in rankings.items() for r, rank in ranks.items()]
    return RankTable.from_rows(rows)


# Prompt 0, responses a, b, c. Hand count over labeler pairs x response pairs:
#   (a, b): L0 a, L1 a, L2 b      -> 1 agreeing labeler pair of 3 under both conventions
#   (a, c): L0 a, L1 a, L2 tie    -> drop: 1 of 1 (L2 left out); outcome: 1 of 3
#   (b, c): L0 b, L1 c, L2 b      -> 1 of 3
# drop: 3 / 7; outcome: 3 / 9.
THREE_LABELERS = {
    (0, "L0"): {"a": 1, "b": 2, "c": 3},
    (0, "L1"): {"a": 1, "b": 3, "c": 2},
    (0, "L2"): {"a": 2, "b": 1, "c": 2},
}


def test_pairwise_agreement_drops_pairs_a_labeler_tied():
    assert pairwise_agreement(_table(THREE_LABELERS), ties="drop") == pytest.approx(3 / 7)


def test_pairwise_agreement_counts_a_tie_as_an_outcome_that_must_match():
    assert pairwise_agreement(_table(THREE_LABELERS), ties="outcome") == pytest.approx(3 / 9)


def test_pairwise_agreement_is_nan_for_a_single_labeler():
    table = _table({(0, "solo"): {"a": 1, "b": 2, "c": 3}})

    assert np.isnan(pairwise_agreement(table))
    assert np.isnan(pairwise_agreement_by_prompt(table)).all()


def test_pairwise_agreement_by_prompt_when_both_labelers_tie():
    table = _table({(0, "L0"): {"a": 1, "b": 1}, (0, "L1"): {"a": 1, "b": 1}, (1, "L0"): {"x": 1, "y": 2}})

    assert np.isnan(pairwise_agreement_by_prompt(table, ties="drop")).all()
    assert pairwise_agreement_by_prompt(table, ties="outcome").tolist()[0] == 1.0
    assert np.isnan(pairwise_agreement_by_prompt(table, ties="outcome")[1])  # one labeler


def test_pairwise_agreement_pools_comparisons_over_prompts():
    rankings = dict(THREE_LABELERS)
    rankings[(1, "L0")] = {"x": 1, "y": 2}
    rankings[(1, "L1")] = {"x": 1, "y": 2}
    table = _table(rankings)

    assert pairwise_agreement(table) == pytest.approx((3 + 1) / (7 + 1))
    assert pairwise_agreement_by_prompt(table).tolist() == pytest.approx([3 / 7, 1.0])


def _brute_force(table, ties):
    agree = total = 0
    for prompt in np.unique(table.prompt):
        rows = np.flatnonzero(table.prompt == prompt)
        ranks = {}
        for i in rows:
            ranks.setdefault(table.labeler[i], {})[table.response[i]] = table.rank[i]
        for first, second in combinations(sorted(ranks), 2):
            shared = sorted(set(ranks[first]) & set(ranks[second]))
            for x, y in combinations(shared, 2):
                u = np.sign(ranks[first][x] - ranks[first][y])
                v = np.sign(ranks[second][x] - ranks[second][y])
                if ties == "drop" and (u == 0 or v == 0):
                    continue
                total += 1
                agree += u == v
    return agree / total


@pytest.mark.parametrize("ties", ["drop", "outcome"])
def test_pairwise_agreement_matches_a_brute_force_loop_on_random_data(random_table, ties):
    table = random_table(seed=9, incomplete=0.25, tie_rate=0.5)

    assert pairwise_agreement(table, ties) == pytest.approx(_brute_force(table, ties))


def test_ranked_pairs_expands_a_ranking_into_its_comparisons():
    table = _table({(0, "L0"): {"a": 2, "b": 1, "c": 2}})
    pairs = ranked_pairs(table)
    by_id = {
        (table.response_ids[f], table.response_ids[s]): int(o)
        for f, s, o in zip(pairs.first, pairs.second, pairs.outcome, strict=True)
    }

    assert by_id == {("a", "b"): -1, ("a", "c"): 0, ("b", "c"): 1}


def test_pairwise_agreement_rejects_an_unknown_ties_convention():
    with pytest.raises(ValueError, match="Unknown ties convention"):
        pairwise_agreement(_table(THREE_LABELERS), ties="half")


@pytest.mark.parametrize("ties", ["drop", "outcome"])
def test_pairwise_agreement_sorting_route_for_wide_prompts_matches_brute_force(random_table, ties, monkeypatch):
    from annotation.agreement import pairwise

    monkeypatch.setattr(pairwise, "_DENSE_CELLS", 0)
    table = random_table(seed=10, incomplete=0.25, tie_rate=0.5)

    assert pairwise_agreement(table, ties) == pytest.approx(_brute_force(table, ties))
