import pytest

from rlhf.training.evaluate import length_baseline_accuracy, pairwise_metrics


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
