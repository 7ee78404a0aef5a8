"""Held-out evaluation of a reward model: pairwise accuracy overall, per category and per guideline version, split
by response length, the reward-margin distribution, and the human pairwise agreement on the same prompts as the
ceiling. Plain Python; also the command that evaluates any saved reward model on a JSONL file (`main`).

A pair counts as correct when reward(chosen) > reward(rejected) strictly (a tie is an error: the model did not
separate them). Metric names are slash-namespaced, as stored in metrics.json.

Length: a response's length is its number of characters: the text itself, or for a chat response (a list of
messages) the characters of its messages' contents, without role tags or template markup (`response_length`).
A pair is "chosen longer" when the chosen response has more characters than the rejected one, "chosen shorter"
when it has fewer; equal-length pairs belong to neither group. A model that only learned "longer is better" scores
1.0 on the first group, 0.0 on the second and 0.5 on their mean (the length-balanced accuracy).
"""

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rlhf.training.chat import is_chat
from rlhf.training.data import DataError, encode_pairs, read_pairs, row_meta, without_ties

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# The length-bias warning (`eval/length_bias_warning`): raised when either figure is below its threshold.
LENGTH_BALANCED_WARNING_BELOW = 0.55  # length-balanced accuracy: a pure "longer wins" rule gets 0.5
CHOSEN_SHORTER_WARNING_BELOW = 0.5  # accuracy on chosen-shorter pairs: worse than a coin where length misleads
DEFAULT_MAX_LENGTH = 512


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
        **length_metrics(margins, rows),
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


def response_length(response: Any) -> int:
    """Characters of a response: its text, or for chat messages the characters of their contents (no markup)."""
    if is_chat(response):
        return sum(len(str(message.get("content") or "")) for message in response)
    return len(str(response))


def length_baseline_accuracy(rows: list[dict[str, Any]]) -> float | None:
    """Accuracy of "the longer response wins" (characters): the floor a reward model must beat. An equal-length
    pair counts as an error, as a reward tie does."""
    wins = [response_length(row["chosen"]) > response_length(row["rejected"]) for row in rows]
    return float(np.mean(wins)) if wins else None


def length_metrics(margins: np.ndarray, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy on chosen-longer and chosen-shorter pairs, their mean, the correlation of the reward margin with the
    length difference (both chosen - rejected), and the length-bias warning. A figure that cannot be computed (no
    pairs in a group, fewer than 2 pairs, a constant margin or length difference) is None, never NaN."""
    margins = np.asarray(margins, dtype=float)
    diff = np.array([response_length(r["chosen"]) - response_length(r["rejected"]) for r in rows], dtype=float)
    correct = margins > 0
    longer, shorter = diff > 0, diff < 0
    acc_longer = float(correct[longer].mean()) if longer.any() else None
    acc_shorter = float(correct[shorter].mean()) if shorter.any() else None
    balanced = (acc_longer + acc_shorter) / 2 if acc_longer is not None and acc_shorter is not None else None
    return {
        "eval/accuracy_chosen_longer": acc_longer,
        "eval/accuracy_chosen_shorter": acc_shorter,
        "eval/pairs_chosen_longer": int(longer.sum()),
        "eval/pairs_chosen_shorter": int(shorter.sum()),
        "eval/pairs_equal_length": int((diff == 0).sum()),
        "eval/length_balanced_accuracy": balanced,
        "eval/margin_length_correlation": pearson(margins, diff),
        "eval/length_bias_warning": bool(length_bias_reasons(balanced, acc_shorter)),
    }


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson's r (scipy.stats.pearsonr), or None when it is undefined (under 2 points, a constant input)."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    from scipy.stats import pearsonr

    r = float(pearsonr(x, y).statistic)
    return r if math.isfinite(r) else None


def length_bias_reasons(balanced: float | None, chosen_shorter: float | None) -> list[str]:
    """Why the reward model may have learned response length: each figure under its threshold, in words ([] when
    none is, or when the figures are unknown)."""
    reasons = []
    if balanced is not None and balanced < LENGTH_BALANCED_WARNING_BELOW:
        reasons.append(f"length-balanced accuracy {balanced:.3f} < {LENGTH_BALANCED_WARNING_BELOW}")
    if chosen_shorter is not None and chosen_shorter < CHOSEN_SHORTER_WARNING_BELOW:
        reasons.append(f"accuracy where the chosen response is shorter {chosen_shorter:.3f} < "
                       f"{CHOSEN_SHORTER_WARNING_BELOW}")  # fmt: skip
    return reasons


def evaluate_pairs(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    max_length: int,
    batch_size: int = 16,
    human_agreement: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Score every pair of `rows` with `model` (formatted and truncated as in training) and compute the metrics.
    `progress(n)` is called after each batch with the number of sequences just scored (two per pair)."""
    from rlhf.training.scoring import score_sequences

    items, stats = encode_pairs(rows, tokenizer, max_length)
    sequences = [item["chosen_ids"] for item in items] + [item["rejected_ids"] for item in items]
    scores = score_sequences(model, sequences, tokenizer.pad_token_id, batch_size=batch_size, progress=progress)
    metrics = pairwise_metrics(scores[: len(items)], scores[len(items) :], rows, human_agreement=human_agreement)
    metrics["eval/truncated_pairs"] = stats.truncated_pairs
    return metrics


# --- the command: python -m rlhf.training.evaluate --model DIR --data pairs.jsonl ---------------------------------

EPILOG = """examples:
  python -m rlhf.training.evaluate --model runs/7/model --data runs/7/data/test.jsonl
  python -m rlhf.training.evaluate --model runs/7/model --data hh_helpful_dev.jsonl --batch-size 32 --max-length 256
  python -m rlhf.training.evaluate --model runs/7/model --data pairs.jsonl | tail -n 1 | jq .length_balanced_accuracy

The data is TRL's preference format, one JSON object a line: prompt/chosen/rejected as text (HH style) or as chat
messages [{"role", "content"}]. Rows marked "tie": true are set aside (counted). Pairs are rendered and truncated
exactly as in training. Progress goes to stderr; the last line of stdout is one JSON object: accuracy,
accuracy_chosen_longer, accuracy_chosen_shorter, length_balanced_accuracy, length_baseline, n, and more
(docs/training.md). Exit status 2: a missing model directory or a bad data file (the message names the line)."""

# JSON output name -> metrics.json key
OUTPUT_KEYS = {
    "accuracy": "eval/accuracy",
    "accuracy_chosen_longer": "eval/accuracy_chosen_longer",
    "accuracy_chosen_shorter": "eval/accuracy_chosen_shorter",
    "length_balanced_accuracy": "eval/length_balanced_accuracy",
    "length_baseline": "eval/length_baseline_accuracy",
    "margin_length_correlation": "eval/margin_length_correlation",
    "length_bias_warning": "eval/length_bias_warning",
    "n": "eval/pairs",
    "pairs_chosen_longer": "eval/pairs_chosen_longer",
    "pairs_chosen_shorter": "eval/pairs_chosen_shorter",
    "pairs_equal_length": "eval/pairs_equal_length",
    "margin_mean": "eval/margin_mean",
    "truncated_pairs": "eval/truncated_pairs",
    "accuracy_by_category": "eval/accuracy_by_category",
}


class UsageError(Exception):
    """A bad argument or input file: reported in one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rlhf.training.evaluate",
        description="Pairwise accuracy of a saved reward model on preference pairs, overall and split by response "
        "length (chosen longer / chosen shorter), with the 'longer wins' baseline on the same pairs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="The reward model's directory (a run's output_dir).")
    parser.add_argument("--data", required=True, help="JSONL of prompt/chosen/rejected rows (text or chat).")
    parser.add_argument("--batch-size", type=int, default=16, help="Sequences scored per forward pass (16).")
    parser.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="Tokens per sequence, cut as in training. Default: the max_length in the model's training_config.json, "
        f"else {DEFAULT_MAX_LENGTH} (within the model's positions).",
    )
    return parser


def trained_max_length(model_dir: Path) -> int | None:
    """The max_length the model was trained with (training_config.json), when recorded."""
    try:
        value = json.loads((model_dir / "training_config.json").read_text()).get("max_length")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and value > 0 else None


def evaluate_model(
    model_dir: str | Path, data: str | Path, batch_size: int = 16, max_length: int | None = None, show_progress=True
) -> dict[str, Any]:
    """The command's JSON object for `model_dir` on the pairs of `data`; raises UsageError on bad input."""
    from tqdm import tqdm

    from rlhf.training.scoring import load_reward_model

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UsageError(f"--model {model_dir}: no such directory.")
    if batch_size < 1 or (max_length is not None and max_length < 8):
        raise UsageError("--batch-size must be at least 1 and --max-length at least 8.")
    try:
        rows, ties = without_ties(read_pairs(data))
    except DataError as exc:
        raise UsageError(str(exc)) from None
    try:
        model, tokenizer = load_reward_model(model_dir)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--model {model_dir}: cannot load a reward model ({exc}).") from None
    limit = getattr(model.config, "max_position_embeddings", None)
    max_length = max_length or trained_max_length(model_dir) or min(DEFAULT_MAX_LENGTH, limit or DEFAULT_MAX_LENGTH)
    if limit and max_length > limit:
        raise UsageError(f"--max-length {max_length} exceeds the model's {limit} positions.")

    start = time.perf_counter()
    with tqdm(total=2 * len(rows), desc="scoring", unit="seq", file=sys.stderr, disable=not show_progress) as bar:
        metrics = evaluate_pairs(model, tokenizer, rows, max_length, batch_size=batch_size, progress=bar.update)
    result = {name: metrics[key] for name, key in OUTPUT_KEYS.items() if key in metrics}
    result |= {
        "ties_skipped": ties,
        "max_length": max_length,
        "eval_s": round(time.perf_counter() - start, 3),
        "model": str(model_dir),
        "data": str(data),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = evaluate_model(args.model, args.data, args.batch_size, args.max_length)
    except UsageError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(json.dumps(result, allow_nan=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
