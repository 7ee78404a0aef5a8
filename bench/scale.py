"""Launcher benchmark: reward-model training in the worker's process vs two processes under `accelerate launch`.

Three runs of the same stage (`rlhf.training.reward_model`) on the same pairs, with the same seed, epochs and global
batch (8 pairs per optimizer step: 8 on one process, 4 per process on two), each evaluated on the same held-out pairs:

1. `single`: `train_reward_model(cfg)` called here, in-process (the `inprocess` launcher);
2. `multi`: `accelerate launch --config_file configs/accelerate/cpu_2proc.yaml -m rlhf.training.reward_model` through
   `rlhf.training.launch.launch_stage`, exactly as the worker does for `launcher: accelerate:cpu_2proc`: two
   processes, DDP over gloo on the CPU, world size 2 (checked in metrics.json's train/world_size);
3. `launched_single`: the same launch with configs/accelerate/cpu_single.yaml (one process): its wall time against
   run 1 is the launcher's own overhead (`overhead_pct`: a new interpreter, imports, accelerate's start-up).

Times are wall-clock seconds of the whole stage (loading, training, saving, evaluating), on whatever machine this runs;
on a 2-core CPU two processes cannot be faster than one process using both cores: the figure that matters here is the
accuracy, which must not move (|multi - single| <= 0.03). Data: ../shared/data/hh_helpful_train.jsonl (the first
--pairs pairs) and hh_helpful_dev.jsonl (the first --eval-pairs), or with --quick the tiny fixture on synthetic pairs.

    .venv/bin/python bench/scale.py                  # MiniLM (the default reward model), 600 HH pairs x 2 epochs at
                                                     # 64 tokens, 759 dev pairs (docs/benchmarks.md, "Launchers")
    .venv/bin/python bench/scale.py --quick          # the tiny fixture, seconds: a smoke run
    .venv/bin/python bench/scale.py --pairs 3843     # every training pair (about 20 min per run on 2 CPU cores)

The last line of stdout is one JSON object: {"launcher", "processes", "world_size", "single_process_accuracy",
"multi_process_accuracy", "accuracy_diff", "single_s", "multi_s", "launched_single_s", "overhead_pct", ...}.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

from rlhf.training.config import RewardModelConfig  # noqa: E402
from rlhf.training.launch import accelerate_config_path, launch_stage  # noqa: E402


def _write_rows(path: Path, source: Path, limit: int) -> Path:
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()][:limit]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _quick_rows(path: Path, n: int, seed: int) -> Path:
    sys.path.insert(0, str(ROOT / "tests" / "rlhf" / "training"))
    from conftest import pair_rows, write_jsonl

    return write_jsonl(path, pair_rows(n, seed=seed))


def _metrics(out: Path) -> dict:
    return json.loads((Path(out) / "metrics.json").read_text())


def _launched(cfg: RewardModelConfig, work: Path, name: str, accelerate: str) -> tuple[dict, float]:
    config_file = work / f"{name}.yaml"
    config_file.write_text(yaml.safe_dump(cfg.to_dict()))
    started = time.monotonic()
    out = launch_stage(
        module="rlhf.training.reward_model", accelerate_config=accelerate_config_path(accelerate),
        config_file=config_file, output_dir=cfg.output_dir, progress=None,
        log=lambda line: print(f"  [{name}] {line}", file=sys.stderr) if "Error" in line else None,
    )  # fmt: skip
    return _metrics(out), round(time.monotonic() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="The tiny fixture on synthetic pairs (seconds).")
    parser.add_argument("--pairs", type=int, default=600, help="Training pairs (the first N of the HH train file).")
    parser.add_argument("--eval-pairs", type=int, default=759, help="Held-out pairs (the first N of the dev file).")
    parser.add_argument("--base-model", default="default", help="Reward model base (default: MiniLM-L6).")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-5, help="Learning rate (the MiniLM runs).")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-overhead", action="store_true", help="Skip the one-process launch (run 3).")
    parser.add_argument("--workdir", default=None, help="Keep the runs here (default: a temporary directory).")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.quick:
        train, test = _quick_rows(work / "train.jsonl", 96, 1), _quick_rows(work / "test.jsonl", 40, 2)
        model = dict(base_model="tiny", tiny_vocab_size=500, max_length=64, learning_rate=1e-3, num_train_epochs=2.0)
    else:
        train = _write_rows(work / "train.jsonl", DATA / "hh_helpful_train.jsonl", args.pairs)
        test = _write_rows(work / "test.jsonl", DATA / "hh_helpful_dev.jsonl", args.eval_pairs)
        model = dict(
            base_model=args.base_model,
            max_length=args.max_length,
            learning_rate=args.lr,
            freeze_layers=3,
            num_train_epochs=args.epochs,
        )  # fmt: skip  (bench/reward_model.py's chosen defaults)
    common = dict(train_file=str(train), eval_file=str(test), seed=args.seed, logging_steps=10,
                  per_device_eval_batch_size=32, **model)  # fmt: skip

    # A running worker has torch, transformers and TRL imported already: so here, before the clock starts.
    from trl import RewardTrainer  # noqa: F401

    from rlhf.training.reward_model import train_reward_model

    single_cfg = RewardModelConfig(**common, per_device_train_batch_size=8, output_dir=str(work / "single"))
    print(f"1/3 in-process, 1 process: {single_cfg.base_model}, {args.pairs if not args.quick else 96} pairs",
          file=sys.stderr)  # fmt: skip
    started = time.monotonic()
    single = _metrics(train_reward_model(single_cfg))
    single_s = round(time.monotonic() - started, 2)

    print("2/3 accelerate launch, cpu_2proc: 2 processes x 4 pairs per step", file=sys.stderr)
    multi_cfg = RewardModelConfig(**common, per_device_train_batch_size=4, output_dir=str(work / "multi"))
    multi, multi_s = _launched(multi_cfg, work, "multi", "cpu_2proc")

    launched_single_s = None
    if not args.skip_overhead:
        print("3/3 accelerate launch, cpu_single: 1 process (the launcher's overhead)", file=sys.stderr)
        one_cfg = RewardModelConfig(**common, per_device_train_batch_size=8, output_dir=str(work / "launched_single"))
        _, launched_single_s = _launched(one_cfg, work, "launched_single", "cpu_single")

    result = {
        "launcher": "accelerate:cpu_2proc",
        "processes": 2,
        "world_size": multi.get("train/world_size"),
        "single_process_accuracy": single.get("eval/accuracy"),
        "multi_process_accuracy": multi.get("eval/accuracy"),
        "accuracy_diff": round(abs(multi["eval/accuracy"] - single["eval/accuracy"]), 4),
        "within_0_03": abs(multi["eval/accuracy"] - single["eval/accuracy"]) <= 0.03,
        "single_s": single_s,
        "multi_s": multi_s,
        "launched_single_s": launched_single_s,
        "overhead_pct": round(100 * (launched_single_s - single_s) / single_s, 1) if launched_single_s else None,
        "steps_single": single.get("train/steps"),
        "steps_multi": multi.get("train/steps"),
        "train_pairs": single.get("train/pairs"),
        "eval_pairs": single.get("eval/pairs"),
        "base_model": single_cfg.base_model,
        "learning_rate": single_cfg.learning_rate,
        "epochs": single_cfg.num_train_epochs,
        "max_length": single_cfg.max_length,
        "single_final_loss": single.get("train/final_loss"),
        "multi_final_loss": multi.get("train/final_loss"),
        "cpu_count": os.cpu_count(),
    }
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
