"""Held-out evaluation of a reward model: pairwise accuracy overall, per category and per guideline version, the
reward-margin distribution, and the human pairwise agreement on the same prompts as the ceiling. Plain Python.

A pair counts as correct when reward(chosen) > reward(rejected) strictly (a tie is an error: the model did not
separate them). Metric names are slash-namespaced, as stored in metrics.json.
"""

from collections import defaultdict
from typing import Any

import numpy as np

from rlhf.training.data import encode_pairs, row_meta

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def pairwise_metrics(
    chosen: list[float],
    rejected: list[float],
    rows: list[dict[str, Any]],
    human_agreement: float | None = None,
    bins: int = 20,
) -> dict[str, Any]:
    """Metrics from the rewards of each pair's chosen and rejected response (rows carry optional metadata)."""
    c, r = np.asarray(chosen, dtype=float), np.asarray(rejected, dtype=float)
    if c.shape != r.shape or len(c) != len(rows):
        raise ValueError("chosen, rejected and rows must have the same length.")
    if len(c) == 0:
        return {"eval/pairs": 0}
    margins = c - r
    correct = margins > 0
    metrics: dict[str, Any] = {
        "eval/pairs": int(len(c)),
        "eval/accuracy": float(correct.mean()),
        "eval/margin_mean": float(margins.mean()),
        "eval/margin_std": float(margins.std()),
        "eval/margin_quantiles": {f"p{round(q * 100):02d}": float(np.quantile(margins, q)) for q in QUANTILES},
        "eval/margin_histogram": margin_histogram(margins, bins=bins),
        "eval/reward_mean": float(np.concatenate([c, r]).mean()),
        "eval/reward_std": float(np.concatenate([c, r]).std()),
        "eval/length_baseline_accuracy": length_baseline_accuracy(rows),
    }
    for key in ("category", "guideline_version"):
        groups = accuracy_by(correct, [row_meta(row, key) for row in rows])
        if groups:
            metrics[f"eval/accuracy_by_{key}"] = groups
    if human_agreement is not None:
        metrics["eval/human_agreement"] = float(human_agreement)
        metrics["eval/accuracy_vs_human"] = float(correct.mean() - human_agreement)
    return metrics


def margin_histogram(margins: np.ndarray, bins: int = 20) -> dict[str, list]:
    """Counts of reward(chosen) - reward(rejected) in equal-width bins; `edges` has one more item than `counts`."""
    lo, hi = float(margins.min()), float(margins.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(margins, bins=bins, range=(lo, hi))
    return {"edges": [float(f"{e:.6g}") for e in edges], "counts": [int(n) for n in counts]}


def accuracy_by(correct: np.ndarray, keys: list[Any]) -> dict[str, dict[str, float]]:
    """{group: {"accuracy", "pairs"}} over the rows that carry a group; {} when none does."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for ok, key in zip(correct.tolist(), keys, strict=True):
        if key is not None and key != "":
            groups[str(key)].append(ok)
    return {k: {"accuracy": float(np.mean(v)), "pairs": len(v)} for k, v in sorted(groups.items())}


def length_baseline_accuracy(rows: list[dict[str, Any]]) -> float | None:
    """Accuracy of "the longer response wins" (characters): the floor a reward model must beat."""
    wins = [len(str(row["chosen"])) > len(str(row["rejected"])) for row in rows]
    return float(np.mean(wins)) if wins else None


def evaluate_pairs(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    max_length: int,
    batch_size: int = 16,
    human_agreement: float | None = None,
) -> dict[str, Any]:
    """Score every pair of `rows` with `model` (formatted and truncated as in training) and compute the metrics."""
    from rlhf.training.scoring import score_sequences

    items, stats = encode_pairs(rows, tokenizer, max_length)
    sequences = [item["chosen_ids"] for item in items] + [item["rejected_ids"] for item in items]
    scores = score_sequences(model, sequences, tokenizer.pad_token_id, batch_size=batch_size)
    metrics = pairwise_metrics(scores[: len(items)], scores[len(items) :], rows, human_agreement=human_agreement)
    metrics["eval/truncated_pairs"] = stats.truncated_pairs
    return metrics
