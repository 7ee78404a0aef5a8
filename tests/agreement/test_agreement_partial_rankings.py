"""Consensus and leave-one-out tau on partial rankings (issue #12 item 14), against independent computations:
an exhaustive Kemeny search over every strict order of a prompt's responses (n <= 7), and tau-b by scipy."""

from itertools import permutations

import numpy as np
import pytest

from annotation.agreement import RankTable, consensus_agreement, consensus_ranking, labeler_scores
from annotation.agreement.kemeny import KEMENY_EXACT_MAX, kemeny_order


def _table(rankings: dict[str, dict[str, int]]) -> RankTable:
    rows = [(0, lab, r, rank) for lab, ranks in rankings.items() for r, rank in ranks.items()]
    return RankTable.from_rows(rows)


def _kemeny_cost(order: tuple[str, ...], rankings: dict[str, dict[str, int]]) -> float:
    """Pairwise disagreements of a strict order with every labeler's ranking, over the pairs the labeler ranked;
    a labeler's tie against a strict consensus pair costs 1/2."""
    place = {response: i for i, response in enumerate(order)}
    cost = 0.0
    for ranks in rankings.values():
        for x in ranks:
            for y in ranks:
                if place[x] < place[y]:
                    cost += 1.0 if ranks[x] > ranks[y] else 0.5 if ranks[x] == ranks[y] else 0.0
    return cost


def _kemeny_optimal_orders(rankings: dict[str, dict[str, int]]) -> set[tuple[str, ...]]:
    responses = sorted({r for ranks in rankings.values() for r in ranks})
    costs = {order: _kemeny_cost(order, rankings) for order in permutations(responses)}
    best = min(costs.values())
    return {order for order, cost in costs.items() if cost == best}


def _consensus_extensions(rankings: dict[str, dict[str, int]]) -> set[tuple[str, ...]]:
    """Every strict order consistent with the consensus (a consensus tie allows either order)."""
    table = _table(rankings)
    consensus = consensus_ranking(table)
    level = {str(table.response_ids[r]): int(k) for r, k in zip(consensus.response, consensus.rank, strict=True)}
    return {
        order for order in permutations(sorted(level)) if all(level[a] <= level[b] for a, b in zip(order, order[1:]))
    }


AGREEING_PARTIAL = {  # every labeler's order is a sub-order of a > b > c > d > e
    "L0": {"a": 1, "b": 2, "c": 3},
    "L1": {"b": 1, "d": 2, "e": 3},
    "L2": {"a": 1, "e": 2},
}
DISJOINT = {"L0": {"a": 1, "b": 2}, "L1": {"c": 1, "d": 2, "e": 3}}  # no response in common
COMPLETE_NO_CYCLE = {"L0": {"a": 1, "b": 2, "c": 3}, "L1": {"a": 1, "b": 3, "c": 2}, "L2": {"a": 2, "b": 1, "c": 3}}


@pytest.mark.parametrize(
    "rankings", [AGREEING_PARTIAL, DISJOINT, COMPLETE_NO_CYCLE], ids=["agreeing", "disjoint", "complete"]
)
def test_consensus_is_a_kemeny_optimal_order_on_small_cases(rankings):
    assert _consensus_extensions(rankings) & _kemeny_optimal_orders(rankings)


def test_consensus_of_disjoint_subsets_ties_across_them_as_kemeny_is_indifferent():
    # Kemeny cost 0 for every merge of a > b with c > d > e: the consensus ties a with c and b with d
    assert _consensus_extensions(DISJOINT) <= _kemeny_optimal_orders(DISJOINT)


@pytest.mark.parametrize(
    "rankings",
    [
        # L1 ranked only c > d: c's midrank 1 pulls it level with b, though the only labeler comparing b, c says b > c
        {"L0": {"a": 1, "b": 2, "c": 3, "d": 4}, "L1": {"c": 1, "d": 2}},
        # complete rankings: the Condorcet order a > b > c > d (Kemeny cost 3) vs Borda's b > a > c > d (cost 4)
        {
            "L0": {"a": 1, "b": 2, "c": 3, "d": 4},
            "L1": {"a": 1, "b": 2, "c": 3, "d": 4},
            "L2": {"b": 1, "c": 2, "d": 3, "a": 4},
        },
    ],
    ids=["overlapping-subsets", "borda-vs-condorcet"],
)
def test_every_order_the_consensus_allows_is_kemeny_optimal(rankings):
    assert _consensus_extensions(rankings) <= _kemeny_optimal_orders(rankings)


def _random_profile(seed: int, n_responses: int) -> dict[str, dict[str, int]]:
    """2-4 labelers, each ranking a random subset (>= 2) of the responses, ties allowed."""
    rng = np.random.default_rng(seed)
    names = "abcdefghijkl"[:n_responses]
    profile = {}
    for labeler in range(rng.integers(2, 5)):
        subset = rng.choice(list(names), size=rng.integers(2, n_responses + 1), replace=False)
        ranks = rng.integers(1, len(subset) + 1, len(subset))
        profile[f"L{labeler}"] = {r: int(rank) for r, rank in zip(subset, ranks, strict=True)}
    return profile


@pytest.mark.parametrize("seed", range(40))
def test_every_order_the_consensus_allows_is_kemeny_optimal_on_random_partial_rankings(seed):
    rankings = _random_profile(seed, n_responses=3 + seed % 4)  # 3-6 responses

    assert _consensus_extensions(rankings) <= _kemeny_optimal_orders(rankings)


def test_consensus_of_seven_responses_is_kemeny_optimal():
    rankings = _random_profile(7, n_responses=7)

    assert _consensus_extensions(rankings) <= _kemeny_optimal_orders(rankings)


def test_order_above_the_exact_size_is_locally_kemeny():
    # 10 responses (> KEMENY_EXACT_MAX): no two adjacent responses of the order against a strict majority
    rng = np.random.default_rng(3)
    for _ in range(20):
        votes = rng.integers(0, 4, size=(10, 10)).astype(float)
        np.fill_diagonal(votes, 0)
        order = kemeny_order(votes, rng.permutation(10).astype(float))
        assert sorted(order.tolist()) == list(range(10))
        assert all(votes[lower, upper] <= votes[upper, lower] for upper, lower in zip(order, order[1:]))


def test_order_up_to_the_exact_size_matches_an_exhaustive_search():
    rng = np.random.default_rng(4)
    n = KEMENY_EXACT_MAX - 1
    votes = rng.integers(0, 4, size=(n, n)).astype(float)
    np.fill_diagonal(votes, 0)

    def cost(order):
        return sum(votes[order[j], order[i]] for i in range(n) for j in range(i + 1, n))

    assert cost(kemeny_order(votes, np.zeros(n))) == min(cost(order) for order in permutations(range(n)))


def test_consensus_keeps_a_tie_only_between_responses_no_majority_separates():
    # a, b: one labeler each way and equal mean midranks -> tied; c below both
    rankings = {"L0": {"a": 1, "b": 2, "c": 3}, "L1": {"b": 1, "a": 2, "c": 3}}
    table = _table(rankings)

    consensus = consensus_ranking(table)

    assert {str(table.response_ids[r]): int(k) for r, k in zip(consensus.response, consensus.rank)} == {
        "a": 1,
        "b": 1,
        "c": 2,
    }


def test_tau_is_undefined_when_a_ranking_shares_fewer_than_two_responses_with_the_others():
    # L1 shares only c with the others: no pair to compare, tau undefined (NaN). L2 shares a and b with L0.
    rankings = {"L0": {"a": 1, "b": 2, "c": 3}, "L1": {"c": 1, "d": 2}, "L2": {"a": 1, "b": 2}}
    table = _table(rankings)

    agreement = consensus_agreement(table)
    tau = {str(table.labeler_ids[lab]): t for lab, t in zip(agreement.labeler, agreement.tau, strict=True)}

    assert np.isnan(tau["L1"])
    assert tau["L2"] == pytest.approx(1.0)  # L2: a > b; the others' mean on a, b: L0 only, a > b
    # L0 against the others' mean on a, b, c (a: 1, b: 2 from L2; c: 1 from L1): pairs (a,b) +1, (a,c) tie, (b,c) -1
    # -> C - D = 0: tau-b 0
    assert tau["L0"] == pytest.approx(0.0)


def test_labeler_scores_leave_undefined_tau_out_of_the_mean_and_count_it():
    rankings = {"L0": {"a": 1, "b": 2, "c": 3}, "L1": {"c": 1, "d": 2}, "L2": {"a": 1, "b": 2}}
    table = _table(rankings)

    scores = {str(table.labeler_ids[s["labeler"]]): s for s in labeler_scores(table)}

    assert np.isnan(scores["L1"]["agreement"]) and scores["L1"]["n_agreement_undefined"] == 1
    assert scores["L2"]["agreement"] == pytest.approx(1.0) and scores["L2"]["n_agreement_undefined"] == 0


def _tau_against_kemeny_of_the_others(rankings: dict[str, dict[str, int]], left_out: str) -> float:
    """Kendall's tau-b (scipy) between one labeler's ranks and the Kemeny consensus (`consensus_ranking`) of the
    others, over the responses both sides ranked."""
    from scipy.stats import kendalltau

    others = {lab: ranks for lab, ranks in rankings.items() if lab != left_out}
    table = _table(others)
    consensus = consensus_ranking(table)
    level = {str(table.response_ids[r]): int(k) for r, k in zip(consensus.response, consensus.rank, strict=True)}
    shared = sorted(set(level) & set(rankings[left_out]))
    if len(shared) < 2:
        return float("nan")
    return float(kendalltau([rankings[left_out][r] for r in shared], [level[r] for r in shared]).statistic)


@pytest.mark.parametrize("seed", range(40))
def test_leave_one_out_tau_equals_tau_against_the_kemeny_consensus_of_two_others(seed):
    """Issue #12: the leave-one-out consensus (the others' mean midrank, vectorised over every ranking) and the main
    consensus (Kemeny) agree where projects live: two other labelers (overlap 3) who ranked every response, ties
    allowed. There the mean-midrank order is Kemeny-optimal and ties exactly the pairs no majority separates, so tau
    is the same number either way (docs/agreement.md, "Leave-one-out consensus")."""
    rng = np.random.default_rng(seed)
    responses = [chr(ord("a") + i) for i in range(int(rng.integers(2, 7)))]
    rankings = {
        lab: {r: int(rank) for r, rank in zip(responses, rng.integers(1, len(responses) + 1, len(responses)))}
        for lab in ("L0", "L1", "L2")
    }
    table = _table(rankings)
    agreement = consensus_agreement(table)
    loo = {str(table.labeler_ids[lab]): t for lab, t in zip(agreement.labeler, agreement.tau, strict=True)}

    for lab in rankings:
        kemeny = _tau_against_kemeny_of_the_others(rankings, lab)
        assert (np.isnan(loo[lab]) and np.isnan(kemeny)) or loo[lab] == pytest.approx(kemeny), (lab, rankings)


def test_leave_one_out_consensus_is_the_mean_midrank_where_it_differs_from_kemeny():
    """With three other labelers the two consensuses can differ; leave-one-out keeps the mean midrank (documented)."""
    rankings = {
        "me": {"a": 1, "b": 2, "c": 3},
        "o0": {"c": 1, "a": 2, "b": 3},
        "o1": {"c": 1, "a": 2, "b": 3},
        "o2": {"a": 1, "b": 2, "c": 3},
    }
    table = _table(rankings)
    agreement = consensus_agreement(table)
    loo = {str(table.labeler_ids[lab]): t for lab, t in zip(agreement.labeler, agreement.tau, strict=True)}
    # the others' mean midranks: a 5/3, c 5/3, b 8/3 -> a and c tied above b: pairs (a,b) +1, (a,c) tie, (b,c) -1
    assert loo["me"] == pytest.approx(0.0)
    # their Kemeny order: c > a (2:1), a > b (3:0), c > b (2:1) -> c > a > b: (a,b) +1, (a,c) -1, (b,c) -1
    assert _tau_against_kemeny_of_the_others(rankings, "me") == pytest.approx(-1 / 3)
