import numpy as np
import pytest
from scipy import stats

from annotation.agreement import (
    RankTable,
    consensus_agreement,
    holm,
    labeler_scores,
    outlier_labelers,
    outlier_tests,
)
from annotation.agreement.labelers import RankingAgreement


def _loo_tau_with_scipy(table, prompt, labeler):
    """Kendall tau-b (scipy) between a labeler's ranks and the mean midrank the prompt's other labelers gave."""
    rows = table.prompt == prompt
    ranks = {}
    for lab in np.unique(table.labeler[rows]):
        mine = rows & (table.labeler == lab)
        ranks[lab] = dict(zip(table.response[mine], stats.rankdata(table.rank[mine]), strict=True))
    others = [ranks[lab] for lab in ranks if lab != labeler]
    shared = [r for r in ranks[labeler] if any(r in other for other in others)]
    consensus = [np.mean([other[r] for other in others if r in other]) for r in shared]
    if len(shared) < 2:
        return np.nan
    return stats.kendalltau([ranks[labeler][r] for r in shared], consensus).statistic


def test_consensus_agreement_matches_scipy_kendall_tau_b_per_ranking(random_table):
    table = random_table(seed=21, incomplete=0.2, tie_rate=0.5)

    agreement = consensus_agreement(table)

    for prompt, labeler, tau in zip(agreement.prompt, agreement.labeler, agreement.tau, strict=True):
        expected = _loo_tau_with_scipy(table, prompt, labeler)
        if np.isnan(expected):
            assert np.isnan(tau)
        else:
            assert tau == pytest.approx(expected, abs=1e-12)


def _table(rankings, positions=None):
    rows = []
    for (p, lab), ranks in rankings.items():
        for i, (r, rank) in enumerate(ranks.items()):
            row = {"prompt": p, "labeler": lab, "response": r, "rank": rank}
            if positions is not None:
                row["position"] = positions[(p, lab)][i]
            rows.append(row)
    return RankTable.from_rows(rows)


def test_labeler_scores_gold_accuracy_gives_half_credit_for_a_tie():
    table = _table({(0, "A"): {"a": 1, "b": 2, "c": 3}, (0, "B"): {"a": 2, "b": 1, "c": 2}})
    code = {name: i for i, name in enumerate(table.response_ids)}
    gold = {0: {code["a"]: 1, code["b"]: 2, code["c"]: 3}}

    scores = {table.labeler_ids[s["labeler"]]: s for s in labeler_scores(table, gold=gold)}

    # B: (a, b) wrong, (a, c) tied -> 1/2, (b, c) right: 1.5 / 3
    assert scores["A"]["gold_accuracy"] == 1.0
    assert scores["B"]["gold_accuracy"] == 0.5
    assert scores["B"]["n_gold_pairs"] == 3


def test_labeler_scores_gold_accuracy_skips_pairs_the_reference_ties():
    table = _table({(0, "A"): {"a": 2, "b": 1, "c": 3}})
    code = {name: i for i, name in enumerate(table.response_ids)}

    (score,) = labeler_scores(table, gold={0: {code["a"]: 1, code["b"]: 1, code["c"]: 2}})

    assert score["n_gold_pairs"] == 2
    assert score["gold_accuracy"] == 1.0


def test_labeler_scores_reports_rankings_median_time_flag_rate_and_agreement():
    rankings = {
        (0, "A"): {"a": 1, "b": 2},
        (0, "B"): {"a": 1, "b": 2},
        (1, "A"): {"c": 1, "d": 2},
        (1, "B"): {"c": 2, "d": 1},
        (2, "A"): {"e": 1, "f": 2},
    }
    table = _table(rankings)
    seconds = {(0, "A"): 10.0, (0, "B"): 30.0, (1, "A"): 20.0, (1, "B"): 50.0, (2, "A"): 60.0}
    flagged = {(0, "A"): False, (0, "B"): True, (1, "A"): False, (1, "B"): False, (2, "A"): True}
    key = [(int(table.prompt_ids[p]), str(table.labeler_ids[lab])) for p, lab in zip(table.prompt, table.labeler)]

    scores = labeler_scores(table, times=np.array([seconds[k] for k in key]), flags=np.array([flagged[k] for k in key]))
    by_name = {table.labeler_ids[s["labeler"]]: s for s in scores}

    assert by_name["A"]["n_rankings"] == 3 and by_name["B"]["n_rankings"] == 2
    assert by_name["A"]["median_seconds"] == 20.0 and by_name["B"]["median_seconds"] == 40.0
    assert by_name["A"]["flag_rate"] == pytest.approx(1 / 3) and by_name["B"]["flag_rate"] == 0.5
    assert by_name["A"]["agreement"] == 0.0  # tau +1 on prompt 0, -1 on prompt 1, none on prompt 2
    assert np.isnan(by_name["A"]["position_bias"]) and np.isnan(by_name["A"]["gold_accuracy"])


def test_labeler_scores_position_bias_matches_scipy_spearman(random_table):
    table = random_table(seed=8)

    scores = labeler_scores(table)

    for score in scores:
        rows = table.labeler == score["labeler"]
        expected = stats.spearmanr(table.rank[rows], table.position[rows]).statistic
        assert score["position_bias"] == pytest.approx(expected, abs=1e-12)


def test_labeler_scores_position_bias_is_one_for_a_labeler_who_ranks_in_shown_order():
    rankings = {(p, "lazy"): {f"{p}-{i}": i + 1 for i in range(3)} for p in range(4)}
    positions = {(p, "lazy"): [0, 1, 2] for p in range(4)}

    (score,) = labeler_scores(_table(rankings, positions))

    assert score["position_bias"] == pytest.approx(1.0)


def test_labeler_scores_rejects_times_not_aligned_with_rows(random_table):
    with pytest.raises(ValueError, match="must align"):
        labeler_scores(random_table(seed=1), times=np.ones(3))


def test_holm_adjusts_p_values_step_down():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert holm(np.array([0.01, 0.04, 0.03, 0.005])).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])


def _agreement_with_one_bad_labeler(seed=0):
    rng = np.random.default_rng(seed)
    labeler = np.repeat(np.arange(6), 80)
    tau = np.clip(rng.normal(0.6, 0.25, len(labeler)), -1, 1).round(1)  # rounded: many ties, as with 4 responses
    tau[labeler == 3] = np.clip(rng.normal(0.1, 0.3, 80), -1, 1).round(1)
    return RankingAgreement(prompt=np.arange(len(labeler)), labeler=labeler, tau=tau)


def test_outlier_labelers_flags_the_labeler_who_disagrees_with_the_consensus():
    flagged = outlier_labelers(_agreement_with_one_bad_labeler())

    assert [o.labeler for o in flagged] == [3]
    assert flagged[0].p_value < 1e-6


def test_outlier_labelers_p_values_match_scipy_mann_whitney_with_holm():
    agreement = _agreement_with_one_bad_labeler()
    raw = [
        stats.mannwhitneyu(
            agreement.tau[agreement.labeler == lab],
            agreement.tau[agreement.labeler != lab],
            alternative="less",
            method="asymptotic",
        ).pvalue
        for lab in range(6)
    ]

    labelers, p_values, adjusted = outlier_tests(agreement)

    assert labelers.tolist() == list(range(6))
    assert p_values == pytest.approx(raw, rel=1e-9)
    assert adjusted == pytest.approx(holm(np.array(raw)), rel=1e-9)


def test_outlier_labelers_skips_labelers_with_too_few_rankings():
    agreement = _agreement_with_one_bad_labeler()
    few = agreement.labeler != 3
    few[np.flatnonzero(agreement.labeler == 3)[:3]] = True

    trimmed = RankingAgreement(agreement.prompt[few], agreement.labeler[few], agreement.tau[few])

    assert outlier_labelers(trimmed, min_rankings=5) == []
