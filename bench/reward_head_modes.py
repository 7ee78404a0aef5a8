"""Length-debias switches on the frozen-head reward model, scored on a validation slice of the training pairs.

SmolLM2 cut to `--trunk-layers` layers, features of `--fit-pairs` training pairs and of the validation slice (15% of
the training prompts by a hash of the prompt text, as `bench/reward_model.py --select`), computed once (cached
under --workdir), then the head fitted with every `length_debias` mode and L2 strength. The dev file is not used.
The last line of stdout is one JSON object: {"fit_pairs", "val_pairs", "val_length_baseline", "results":
{"<mode> l2=<x>": {"acc", "longer", "shorter", "bal"}}}.

Examples:
    .venv/bin/python bench/reward_head_modes.py                       # 600 fit pairs, 8 layers, 128 tokens
    .venv/bin/python bench/reward_head_modes.py --fit-pairs 2000 --trunk-layers 12
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DATA = ROOT.parent / "shared" / "data"
MODES = ("none", "balanced", "residual", "both", "decorrelate")


def main(argv: list[str] | None = None) -> None:
    from reward_model import validation_split

    from rlhf.training.data import read_pairs
    from rlhf.training.defaults import load_base_model
    from rlhf.training.reward_head import (
        FeatureCache,
        decorrelated_weight,
        fit_head,
        length_feature,
        pair_sequences,
        sequence_features,
        shorten_trunk,
        split_pairs,
        trunk_fingerprint,
    )

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=DATA / "hh_helpful_train.jsonl")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_reward_head_modes"))
    parser.add_argument("--fit-pairs", type=int, default=600)
    parser.add_argument("--trunk-layers", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    fit_file, val_file = validation_split(args.train, args.workdir)
    fit, val = read_pairs(fit_file)[: args.fit_pairs], read_pairs(val_file)
    model, tokenizer = load_base_model("smollm2")
    shorten_trunk(model, args.trunk_layers)
    cache = FeatureCache(args.workdir / "cache", trunk_fingerprint(model))

    def features(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        seqs, _ = pair_sequences(rows, tokenizer, args.max_length)
        return split_pairs(sequence_features(model, seqs, tokenizer.pad_token_id, 16, cache=cache).astype(np.float64))

    started = time.monotonic()
    (fc, fr), (vc, vr) = features(fit), features(val)
    print(f"features: {time.monotonic() - started:.0f}s", flush=True)
    lf, lv = length_feature(fit), length_feature(val)
    results = {}
    for l2 in (1.0, 10.0, 100.0):
        for mode in MODES:
            head = fit_head(fc, fr, lf, l2, "none" if mode == "decorrelate" else mode)
            weight = head["weight"].astype(np.float64)
            if mode == "decorrelate":
                weight = decorrelated_weight(weight, fc - fr, lf)
            ok = (vc - vr) @ weight > 0
            longer, shorter = ok[lv > 0].mean(), ok[lv < 0].mean()
            results[f"{mode} l2={l2}"] = {
                "acc": round(float(ok.mean()), 3),
                "longer": round(float(longer), 3),
                "shorter": round(float(shorter), 3),
                "bal": round(float(longer + shorter) / 2, 3),
            }
            print(mode, l2, results[f"{mode} l2={l2}"], flush=True)
    baseline = round(float((lv > 0).mean()), 3)
    summary = {"fit_pairs": len(fit), "val_pairs": len(val), "val_length_baseline": baseline}
    print(json.dumps({**summary, "results": results}))


if __name__ == "__main__":
    main()
