import numpy as np
import pytest

from annotation.agreement import (
    RankTable,
    bradley_terry,
    bradley_terry_fit,
    comparison_components,
    consensus_ranking,
    elo_ratings,
    leaderboard_fit,
    model_leaderboard,
)


def _table(rankings, models=None):
    rows = [
        {"prompt": p, "labeler": lab, "response": r, "rank": rank, "model": (models or {}).get(r)}
        for (p, lab), ranks in rankings.items()
        for r, rank in ranks.items()
    ]
    return RankTable.from_rows(rows)


def test_consensus_ranking_gives_equal_mean_ranks_a_shared_dense_rank():
    table = _table(
        {
            (0, "L0"): {"a": 1, "b": 2, "c": 3},
            (0, "L1"): {"a": 2, "b": 1, "c": 3},
            (1, "L0"): {"x": 1, "y": 1, "z": 2},
        }
    )

    consensus = consensus_ranking(table)
    by_id = {table.response_ids[r]: (s, k) for r, s, k in zip(consensus.response, consensus.score, consensus.rank)}

    assert by_id == {"a": (1.5, 1), "b": (1.5, 1), "c": (3.0, 2), "x": (1.5, 1), "y": (1.5, 1), "z": (3.0, 2)}
    assert consensus.prompt.tolist() == [0, 0, 0, 1, 1, 1]


def test_consensus_ranking_orders_by_mean_midrank():
    table = _table(
        {(0, "L0"): {"a": 3, "b": 1, "c": 2}, (0, "L1"): {"a": 3, "b": 2, "c": 1}, (0, "L2"): {"a": 2, "b": 1, "c": 3}}
    )

    consensus = consensus_ranking(table)

    # means: a 8/3, b 4/3, c 2 -> b, c, a
    assert [table.response_ids[r] for r in consensus.response] == ["b", "c", "a"]
    assert consensus.rank.tolist() == [1, 2, 3]


def test_bradley_terry_recovers_a_hand_solved_example():
    # Observed win counts equal their expectations under p = (4, 2, 1): a-b 2:1 (4/6 of 3 games), b-c 2:1,
    # a-c 4:1 (4/5 of 5 games), so p ∝ (4, 2, 1) solves the likelihood equations W_a = sum_b N_ab p_a / (p_a + p_b).
    wins = np.array([[0, 2, 4], [1, 0, 2], [1, 1, 0]], dtype=float)

    strengths = bradley_terry(wins, prior=0.0)

    assert strengths / strengths[2] == pytest.approx([4.0, 2.0, 1.0], rel=1e-7)
    assert np.diff(elo_ratings(strengths)) == pytest.approx([-400 * np.log10(2)] * 2, rel=1e-6)


def test_bradley_terry_counts_ties_as_half_wins():
    # a beats b twice and they tie twice: 3 wins to 1, so p_a / p_b = 3 (the two-player MLE is the win ratio)
    ties_as_half = np.array([[0, 2 + 1], [0 + 1, 0]], dtype=float)

    strengths = bradley_terry(ties_as_half, prior=0.0)

    assert strengths[0] / strengths[1] == pytest.approx(3.0)


def test_bradley_terry_prior_keeps_an_undefeated_model_finite_and_first():
    wins = np.array([[0, 5, 5], [0, 0, 3], [0, 2, 0]], dtype=float)

    strengths = bradley_terry(wins, prior=1.0)

    assert np.isfinite(strengths).all()
    assert np.argmax(strengths) == 0


def test_bradley_terry_gives_nan_to_a_model_without_comparisons():
    wins = np.array([[0, 3, 0], [1, 0, 0], [0, 0, 0]], dtype=float)

    assert np.isnan(bradley_terry(wins)[2])


def test_model_leaderboard_puts_the_always_best_model_first_with_intervals_around_ratings():
    rng = np.random.default_rng(0)
    rows = []
    for prompt in range(60):
        models = rng.permutation(4)
        for labeler in range(3):
            noise = rng.normal(size=4)
            score = np.where(models == 0, 10.0, -models + noise)  # model 0 always best; 1 > 2 > 3 on average
            ranks = np.argsort(np.argsort(-score)) + 1
            rows += [(prompt, labeler, prompt * 4 + i, float(ranks[i]), i, int(models[i])) for i in range(4)]
    prompt, labeler, response, rank, position, model = map(np.array, zip(*rows, strict=True))
    table = RankTable(prompt=prompt, labeler=labeler, response=response, rank=rank, position=position, model=model)

    board = model_leaderboard(table, n_boot=100, seed=1)

    assert [row["model"] for row in board][0] == 0
    assert board[0]["win_rate"] == 1.0
    assert board[0]["n_comparisons"] == 60 * 3 * 3
    assert all(row["low"] <= row["rating"] <= row["high"] for row in board)
    assert [row["model"] for row in board] == [0, 1, 2, 3]
    assert np.mean([row["rating"] for row in board]) == pytest.approx(1000.0)


def test_model_leaderboard_is_deterministic_for_a_seed(random_table):
    table = random_table(seed=2, n_models=5)

    assert model_leaderboard(table, n_boot=20, seed=3) == model_leaderboard(table, n_boot=20, seed=3)


def test_model_leaderboard_needs_model_codes(random_table):
    with pytest.raises(ValueError, match="no model column"):
        model_leaderboard(random_table(seed=1))


def _two_islands():
    """Models a and b are only ever ranked against each other, c and d likewise: two components."""
    rankings, models = {}, {}
    for prompt, (first, second) in enumerate([("a", "b"), ("a", "b"), ("b", "a"), ("c", "d"), ("d", "c"), ("c", "d")]):
        for labeler in ("L0", "L1"):
            rankings[(prompt, labeler)] = {f"{prompt}{first}": 1, f"{prompt}{second}": 2}
        models |= {f"{prompt}{first}": first, f"{prompt}{second}": second}
    return _table(rankings, models)


def test_comparison_components_label_models_by_who_was_compared_with_whom():
    wins = np.zeros((5, 5))
    wins[0, 1], wins[1, 0], wins[3, 2] = 2, 1, 3  # 0-1 and 2-3 played; model 4 never did

    labels = comparison_components(wins)

    assert labels.tolist() == [0, 0, 1, 1, -1]


def test_leaderboard_of_a_disconnected_comparison_graph_warns_and_ranks_each_component_alone():
    table = _two_islands()

    board = leaderboard_fit(table, n_boot=20)

    assert board.n_components == 2 and board.converged
    assert len(board.warnings) == 1 and "2 disconnected groups" in board.warnings[0]
    names = [{str(table.model_ids[row["model"]]) for row in rows} for rows in board.components]
    assert names == [{"a", "b"}, {"c", "d"}]
    for number, rows in enumerate(board.components):
        assert np.mean([row["rating"] for row in rows]) == pytest.approx(1000.0)  # each on its own scale
        assert all(row["component"] == number for row in rows)
        assert rows[0]["rating"] >= rows[1]["rating"]
    # a won 4 of 6 against b, c won 4 of 6 against d
    assert [str(table.model_ids[rows[0]["model"]]) for rows in board.components] == ["a", "c"]
    assert {row["component"] for row in board.rows} == {0, 1}


def test_leaderboard_of_a_connected_comparison_graph_has_no_warning_and_no_components():
    rng = np.random.default_rng(3)
    rankings, models = {}, {}
    for prompt in range(12):
        shown = rng.permutation(4)[:3]
        for labeler in ("L0", "L1"):
            order = rng.permutation(3)
            rankings[(prompt, labeler)] = {f"{prompt}-{m}": int(r) + 1 for m, r in zip(shown, order, strict=True)}
        models |= {f"{prompt}-{m}": f"m{m}" for m in shown}
    table = _table(rankings, models)

    board = leaderboard_fit(table, n_boot=10)

    assert board.n_components == 1 and board.converged and board.warnings == [] and board.components == []
    assert board.rows == model_leaderboard(table, n_boot=10)


def test_leaderboard_warns_when_the_fit_does_not_converge():
    board = leaderboard_fit(_two_islands(), n_boot=0, max_iter=1)

    assert not board.converged
    assert any("did not converge" in warning for warning in board.warnings)


def test_bradley_terry_fit_reports_convergence():
    wins = np.array([[0, 2, 4], [1, 0, 2], [1, 1, 0]], dtype=float)

    assert bradley_terry_fit(wins, prior=0.0).converged
    assert not bradley_terry_fit(wins, prior=0.0, max_iter=1).converged
    assert bradley_terry_fit(wins, prior=0.0).strengths == pytest.approx(bradley_terry(wins, prior=0.0))
