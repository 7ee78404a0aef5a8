"""Probe: does a frozen SmolLM2 trunk carry a preference signal a linear head can read? (docs/benchmarks.md)

Features of the first N HH train pairs (prompt cut to its last 64 tokens, response to its first 96, SmolLM2's chat
template), taken after several layers (the last token's state and the mean over the response's tokens), then a
Bradley-Terry logistic regression on feature differences, 5-fold cross-validated, with the length-aware figures.
The last line of stdout is one JSON object: {"pairs", "length_baseline", "results": {feature: {C: [accuracy,
chosen_longer, chosen_shorter, length_balanced]}}}.

Examples:
    .venv/bin/python bench/reward_probe.py               # 300 pairs, layers 4..16 (about 15 min on 2 busy cores)
    .venv/bin/python bench/reward_probe.py --pairs 100 --layers 4 8
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def features(rows: list[dict], layers: list[int], prompt_max: int = 64, response_max: int = 96) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlhf.training.chat import render_chat
    from rlhf.training.models import prepare_smollm2

    path = prepare_smollm2(progress=False)
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path).eval()
    model.model.layers = model.model.layers[: max(layers)]
    seqs = []
    for row in rows:
        prompt = tokenizer(render_chat(tokenizer, row["prompt"])[0], add_special_tokens=False)["input_ids"]
        for key in ("chosen", "rejected"):
            completion = render_chat(tokenizer, row["prompt"], row[key])[1]
            ids = tokenizer(completion, add_special_tokens=False)["input_ids"][:response_max]
            seqs.append((prompt[-prompt_max:] + ids, len(prompt[-prompt_max:])))
    out: dict[str, list] = {f"{kind}{layer}": [None] * len(seqs) for kind in ("last", "mean") for layer in layers}
    order = np.argsort([len(s) for s, _ in seqs])
    started = time.monotonic()
    for start in range(0, len(order), 8):
        batch = order[start : start + 8]
        width = max(len(seqs[i][0]) for i in batch)
        ids = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        for row, i in enumerate(batch):
            ids[row, : len(seqs[i][0])], mask[row, : len(seqs[i][0])] = torch.tensor(seqs[i][0]), 1
        with torch.inference_mode():
            hidden = model.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        for row, i in enumerate(batch):
            n, p = len(seqs[i][0]), seqs[i][1]
            for layer in layers:
                out[f"last{layer}"][i] = hidden[layer][row, n - 1].numpy()
                out[f"mean{layer}"][i] = hidden[layer][row, p:n].mean(0).numpy()
        print(f"{start + len(batch)}/{len(seqs)} texts, {time.monotonic() - started:.0f}s", flush=True)
    return {k: np.stack(v) for k, v in out.items()}


def length_metrics(margin: np.ndarray, longer: np.ndarray, shorter: np.ndarray) -> list[float]:
    correct = margin > 0
    a, b = correct[longer].mean(), correct[shorter].mean()
    return [round(float(v), 3) for v in (correct.mean(), a, b, (a + b) / 2)]


def probe(feats: np.ndarray, longer: np.ndarray, shorter: np.ndarray, c: float) -> list[float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold

    x = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    diff = x[0::2] - x[1::2]
    margin = np.zeros(len(diff))
    for train, test in KFold(5, shuffle=True, random_state=0).split(diff):
        both = np.concatenate([diff[train], -diff[train]])
        labels = np.r_[np.ones(len(train)), np.zeros(len(train))]
        clf = LogisticRegression(C=c, fit_intercept=False, max_iter=2000).fit(both, labels)
        margin[test] = diff[test] @ clf.coef_[0]
    return length_metrics(margin, longer, shorter)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=DATA / "hh_helpful_train.jsonl")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--layers", type=int, nargs="+", default=[4, 6, 8, 10, 12, 14, 16])
    args = parser.parse_args(argv)
    with args.train.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(args.pairs), fh, strict=False)]
    longer = np.array([len(r["chosen"]) > len(r["rejected"]) for r in rows])
    shorter = np.array([len(r["chosen"]) < len(r["rejected"]) for r in rows])
    feats = features(rows, args.layers)
    results = {k: {str(c): probe(v, longer, shorter, c) for c in (0.001, 0.01, 0.1)} for k, v in feats.items()}
    for name, by_c in results.items():
        print(name, by_c, flush=True)
    print(json.dumps({"pairs": len(rows), "length_baseline": float(longer.mean()), "results": results}))


if __name__ == "__main__":
    main()
