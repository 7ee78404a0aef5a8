"""The new policy's win rate against its reference: pairs counted by hand, ties as halves, and an interval that
resamples prompts (their judgments together), not judgments."""

import pytest

from annotation.agreement.winrate import Judgment, pair_wins, win_rate


def test_pair_wins_counts_every_policy_reference_pair_with_ties_as_halves():
    assert pair_wins([1], [2]) == (1.0, 1)
    assert pair_wins([2], [1]) == (0.0, 1)
    # (1 vs 2) win, (1 vs 3) win, (3 vs 2) loss, (3 vs 3) tie
    assert pair_wins([1, 3], [2, 3]) == (2.5, 4)
    assert pair_wins([], [1, 2]) == (0.0, 0)


def test_win_rate_pools_pairs_over_judgments_and_counts_prompts():
    judgments = [
        Judgment("a", [1, 3], [2, 3]),  # 2.5 / 4
        Judgment("a", [1, 2], [3, 4]),  # 4 / 4
        Judgment("b", [2], [1]),  # 0 / 1
        Judgment("c", [], [1]),  # nothing of the policy shown: no pair, not counted
    ]
    result = win_rate(judgments, n_boot=200)
    assert result.win_rate == pytest.approx(6.5 / 9)
    assert (result.wins, result.pairs, result.judgments, result.prompts) == (6.5, 9, 3, 2)
    assert result.low <= result.win_rate <= result.high


def test_a_single_prompt_or_nothing_judged_has_no_interval():
    one = win_rate([Judgment(1, [1], [2]), Judgment(1, [2], [1])])
    assert (one.win_rate, one.low, one.high, one.prompts) == (0.5, None, None, 1)
    empty = win_rate([])
    assert (empty.win_rate, empty.pairs, empty.low) == (None, 0, None)


def test_the_interval_resamples_prompts_so_agreeing_judgments_of_one_prompt_do_not_narrow_it():
    # Two prompts, ten judgments each: the policy always wins on one and always loses on the other. Resampling
    # judgments would give a narrow interval around 0.5; resampling prompts must allow 0 and 1 (both drawn twice).
    judgments = [Judgment("won", [1], [2])] * 10 + [Judgment("lost", [2], [1])] * 10
    result = win_rate(judgments, n_boot=400, seed=1)
    assert result.win_rate == 0.5 and result.judgments == 20
    assert result.low == 0.0 and result.high == 1.0


def test_the_interval_narrows_with_more_prompts_and_is_reproducible_by_seed():
    few = [Judgment(i, [1], [2]) if i % 4 else Judgment(i, [2], [1]) for i in range(8)]
    many = [Judgment(i, [1], [2]) if i % 4 else Judgment(i, [2], [1]) for i in range(400)]
    small, large = win_rate(few, seed=3), win_rate(many, seed=3)
    assert small.win_rate == large.win_rate == 0.75
    assert (large.high - large.low) < (small.high - small.low) / 3
    assert large.low < 0.75 < large.high
    assert win_rate(many, seed=3) == large


def test_reward_model_scores_are_judgments_with_negated_scores():
    # policy scores 2.0 and 0.5 vs reference 1.0: one pair won, one lost
    assert win_rate([Judgment(1, [-2.0, -0.5], [-1.0])]).win_rate == 0.5
