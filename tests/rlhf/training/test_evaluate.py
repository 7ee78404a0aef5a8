import json

import pytest

from rlhf.training.evaluate import (
    CHOSEN_SHORTER_WARNING_BELOW,
    LENGTH_BALANCED_WARNING_BELOW,
    length_baseline_accuracy,
    length_bias_reasons,
    pairwise_metrics,
    response_length,
)


def _rows(categories, versions=None):
    versions = versions or [None] * len(categories)
    return [
        {"chosen": "long answer", "rejected": "short", "category": c, "guideline_version": v}
        for c, v in zip(categories, versions, strict=True)
    ]


def test_pairwise_accuracy_counts_ties_as_errors_and_groups_by_category_and_version():
    rows = _rows(["qa", "qa", "chat", "chat"], [1, 1, 2, None])
    metrics = pairwise_metrics([1.0, 2.0, 0.5, 5.0], [0.0, 3.0, 0.5, 1.0], rows, human_agreement=0.7)

    assert metrics["eval/accuracy"] == 0.5  # right, wrong, tie (wrong), right
    assert metrics["eval/accuracy_by_category"] == {
        "chat": {"accuracy": 0.5, "pairs": 2},
        "qa": {"accuracy": 0.5, "pairs": 2},
    }
    assert metrics["eval/accuracy_by_guideline_version"] == {
        "1": {"accuracy": 0.5, "pairs": 2},
        "2": {"accuracy": 0.0, "pairs": 1},
    }
    assert metrics["eval/human_agreement"] == 0.7
    assert metrics["eval/accuracy_vs_human"] == pytest.approx(-0.2)
    assert metrics["eval/margin_mean"] == pytest.approx((1 - 1 + 0 + 4) / 4)


def test_margin_histogram_counts_every_pair_and_quantiles_are_ordered():
    metrics = pairwise_metrics([1, 2, 3, 4, 5], [0, 0, 0, 0, 10], _rows(["a"] * 5), bins=4)
    hist = metrics["eval/margin_histogram"]
    assert sum(hist["counts"]) == 5
    assert len(hist["edges"]) == 5
    assert hist["edges"][0] == -5 and hist["edges"][-1] == 4
    q = metrics["eval/margin_quantiles"]
    assert q["p05"] <= q["p25"] <= q["p50"] <= q["p75"] <= q["p95"]
    assert q["p50"] == 2


def test_metrics_without_metadata_or_human_agreement_leave_those_keys_out():
    rows = [{"chosen": "a", "rejected": "b"}]
    metrics = pairwise_metrics([1.0], [0.0], rows)
    assert metrics["eval/accuracy"] == 1.0
    assert "eval/accuracy_by_category" not in metrics
    assert "eval/human_agreement" not in metrics
    assert sum(metrics["eval/margin_histogram"]["counts"]) == 1


def test_length_baseline_picks_the_longer_response():
    rows = [{"chosen": "xxxx", "rejected": "x"}, {"chosen": "x", "rejected": "xxxx"}, {"chosen": "xx", "rejected": "x"}]
    assert length_baseline_accuracy(rows) == pytest.approx(2 / 3)


def test_pairwise_metrics_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="same length"):
        pairwise_metrics([1.0, 2.0], [0.0], _rows(["a", "b"]))


# --- length-aware metrics (hand-computed) --------------------------------------------------------------------------

# (chosen, rejected, margin): three chosen-longer pairs (2 right), two chosen-shorter (1 right), one of equal length
LENGTH_TABLE = [
    ("xxxx", "x", 1.0),  # +3 chars, right
    ("xxxxx", "xx", -1.0),  # +3, wrong
    ("xxxxxx", "x", 2.0),  # +5, right
    ("x", "xxx", -2.0),  # -2, wrong
    ("xx", "xxxxxx", 0.5),  # -4, right
    ("ab", "cd", 1.0),  # equal length: in neither group
]


def _length_metrics(table):
    rows = [{"chosen": c, "rejected": r} for c, r, _ in table]
    return pairwise_metrics([m for *_, m in table], [0.0] * len(table), rows)


def test_accuracy_split_by_length_with_counts_balanced_mean_and_baseline():
    metrics = _length_metrics(LENGTH_TABLE)

    assert metrics["eval/accuracy_chosen_longer"] == pytest.approx(2 / 3)
    assert metrics["eval/accuracy_chosen_shorter"] == 0.5
    assert metrics["eval/length_balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert (metrics["eval/pairs_chosen_longer"], metrics["eval/pairs_chosen_shorter"]) == (3, 2)
    assert metrics["eval/pairs_equal_length"] == 1
    assert metrics["eval/length_baseline_accuracy"] == 0.5  # longer wins on 3 of 6 (equal length: an error)
    assert metrics["eval/accuracy"] == pytest.approx(4 / 6)
    # 0.583 >= 0.55 and 0.5 is not under 0.5: the thresholds are strict
    assert metrics["eval/length_bias_warning"] is False


def test_margin_length_correlation_is_pearson_of_margin_and_length_difference():
    metrics = _length_metrics(LENGTH_TABLE)
    # margins [1, -1, 2, -2, 0.5, 1], length differences [3, 3, 5, -2, -4, 0]:
    # sum of products of deviations 10.75; sums of squares 10.875 and 58.8333 -> r = 10.75 / sqrt(639.81) = 0.4250
    assert metrics["eval/margin_length_correlation"] == pytest.approx(0.4250, abs=1e-4)


def test_a_model_that_only_learned_length_raises_the_warning():
    table = [("x" * n, "x" * m, float(n - m)) for n, m in ((5, 1), (6, 2), (1, 4), (2, 7))]
    metrics = _length_metrics(table)

    assert metrics["eval/accuracy_chosen_longer"] == 1.0 and metrics["eval/accuracy_chosen_shorter"] == 0.0
    assert metrics["eval/length_balanced_accuracy"] == 0.5
    assert metrics["eval/margin_length_correlation"] == pytest.approx(1.0)
    assert metrics["eval/length_bias_warning"] is True


def test_warning_thresholds_each_trigger_on_their_own():
    assert length_bias_reasons(0.54, 0.6) == [f"length-balanced accuracy 0.540 < {LENGTH_BALANCED_WARNING_BELOW}"]
    assert len(length_bias_reasons(0.7, 0.45)) == 1 and "shorter 0.450" in length_bias_reasons(0.7, 0.45)[0]
    assert length_bias_reasons(0.55, 0.5) == [] and length_bias_reasons(None, None) == []
    assert (LENGTH_BALANCED_WARNING_BELOW, CHOSEN_SHORTER_WARNING_BELOW) == (0.55, 0.5)


def test_no_chosen_shorter_pairs_gives_none_not_nan_and_serialises_as_json():
    metrics = _length_metrics([("xxxx", "x", 1.0), ("xxx", "x", 1.0)])  # constant margin: no correlation either

    assert metrics["eval/accuracy_chosen_longer"] == 1.0
    assert metrics["eval/accuracy_chosen_shorter"] is None and metrics["eval/pairs_chosen_shorter"] == 0
    assert metrics["eval/length_balanced_accuracy"] is None
    assert metrics["eval/margin_length_correlation"] is None
    assert metrics["eval/length_bias_warning"] is False
    assert json.loads(json.dumps(metrics, allow_nan=False))["eval/accuracy_chosen_shorter"] is None
    single = _length_metrics([("x", "xx", 1.0)])
    assert single["eval/margin_length_correlation"] is None and single["eval/accuracy_chosen_longer"] is None
    json.dumps(single, allow_nan=False)


def test_chat_responses_are_measured_by_their_message_contents():
    chosen = [{"role": "assistant", "content": "hello"}]
    assert response_length(chosen) == 5 and response_length("hello") == 5
    rows = [{"prompt": [{"role": "user", "content": "hi"}], "chosen": chosen,
             "rejected": [{"role": "assistant", "content": "a much longer reply"}]}]  # fmt: skip
    metrics = pairwise_metrics([1.0], [0.0], rows)
    assert metrics["eval/pairs_chosen_shorter"] == 1 and metrics["eval/accuracy_chosen_shorter"] == 1.0
