"""PPO benchmark on the tiny test fixture (the first PPO issue's figures; bench/ppo.py is the SmolLM2 one): the
offline default chain (tiny GPT-2 -> SFT -> reward model -> PPO), then a bare TRL PPO script.

Data (built here, from files; no database):
  - human rankings: Anthropic HH-RLHF helpfulness comparisons from ../shared/data/hh_helpful_train.jsonl (the demo
    project's only rankings are simulated ones). The first --pairs pairs (default: all 3,843) are the preference
    export (prompt/chosen/rejected, plain HH text), their chosen responses are the best-ranked responses for SFT,
    their prompts are PPO's training prompts;
  - the reward model's held-out accuracy: the first --rm-eval-pairs pairs of ../shared/data/hh_helpful_dev.jsonl;
  - held-out prompts: the demo project's 27 prompts (annotation/demo/data.py), never trained on by any stage.
The BPE tokenizer is trained on the export's texts (byte-level: the held-out prompts encode all the same).

Then:
  1. `run_default_chain` (rlhf.training.chain): SFT, reward model, and `run_ppo` for --episodes episodes. run_ppo
     samples --samples responses per held-out prompt before and after PPO and scores them with the reward model;
     reward_gain_std = (mean after - mean before) / std of the reward over all those samples (before and after),
     where the reward is what PPO optimises (the reward model's score less the missing-EOS penalty of 1.0 for a
     sample that never ended); score_gain_std = the same for the reward model's score alone.
     kl_final = the mean KL to the reference (nats per response, TRL's objective/kl) over the last 10% of batches.
     s_per_episode = run_ppo's wall time, loading to saving (samples included), divided by the episodes.
  2. The baseline: a bare TRL script on the same SFT policy, reward model and prompt ids with identical PPOConfig
     settings (load models, PPOTrainer, train, save). baseline_trl_s_per_episode = its wall time / episodes.
Both PPO runs use torch with --threads threads (1 by default: on a busy shared 2-core machine, two OpenMP threads
spin against each other and run tiny models several times slower).

Targets: reward_gain_std >= 1 with kl_final <= 5 nats, s_per_episode <= 1.10 x baseline_trl_s_per_episode.
The last line of stdout is one JSON object: {"reward_gain_std", "kl_final", "s_per_episode",
"baseline_trl_s_per_episode", ...}

Examples:
    .venv/bin/python bench/ppo_tiny.py                       # ~20 minutes on 2 cores (chain ~12, bare TRL ~6)
    .venv/bin/python bench/ppo_tiny.py --episodes 128 --pairs 200 --rm-eval-pairs 0 --samples 2   # a quick run
    .venv/bin/python bench/ppo_tiny.py --keep --workdir /tmp/ppo-bench   # keep the models
    .venv/bin/python bench/ppo_tiny.py --kl-target 4 --kl-horizon 256 --skip-baseline   # adaptive KL, no baseline
"""

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
HH_TRAIN = REPO.parent / "shared" / "data" / "hh_helpful_train.jsonl"
HH_DEV = REPO.parent / "shared" / "data" / "hh_helpful_dev.jsonl"
DEMO_DATA = REPO / "annotation" / "demo" / "data.py"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ppo_tiny.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pairs", type=int, default=4000, help="HH preference pairs (SFT, reward model, prompts); the file has 3,843."
    )
    parser.add_argument("--episodes", type=int, default=2048, help="PPO episodes (both runs).")
    parser.add_argument("--batch", type=int, default=16, help="PPO rollout batch.")
    parser.add_argument("--mini-batches", type=int, default=2, help="PPO mini batches per rollout batch.")
    parser.add_argument("--ppo-epochs", type=int, default=4, help="PPO epochs per rollout batch.")
    parser.add_argument("--response-length", type=int, default=24, help="Maximum new tokens per response.")
    parser.add_argument("--lr", type=float, default=1e-4, help="PPO learning rate.")
    parser.add_argument("--kl-coef", type=float, default=0.05, help="PPO KL coefficient (the start with --kl-target).")
    parser.add_argument("--kl-target", type=float, default=None, help="Adaptive KL target (nats); default: fixed.")
    parser.add_argument("--kl-horizon", type=int, default=10000, help="Adaptive KL horizon (episodes).")
    parser.add_argument("--temperature", type=float, default=0.7, help="Sampling temperature.")
    parser.add_argument("--samples", type=int, default=16, help="Samples per held-out prompt, before and after.")
    parser.add_argument("--max-length", type=int, default=192, help="Tokens of prompt + response in every stage.")
    parser.add_argument("--sft-epochs", type=float, default=2.0, help="SFT epochs.")
    parser.add_argument("--rm-epochs", type=float, default=1.0, help="Reward-model epochs.")
    parser.add_argument(
        "--rm-eval-pairs", type=int, default=759, help="HH dev pairs: the reward model's held-out accuracy (0 = none)."
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (see above).")
    parser.add_argument("--seed", type=int, default=42, help="Seed of every stage.")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="Where the files and models go (default: a tmp dir)."
    )
    parser.add_argument("--keep", action="store_true", help="Keep the work directory.")
    parser.add_argument("--skip-baseline", action="store_true", help="Only the chain (for tuning).")
    return parser.parse_args(argv)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def demo_prompts() -> list[dict]:
    """annotation/demo/data.py is plain data; loaded by path so that no Django set-up is needed."""
    spec = importlib.util.spec_from_file_location("demo_data", DEMO_DATA)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PROMPTS


def read_pairs(path: Path, n_pairs: int) -> list[dict]:
    if not path.is_file():
        raise SystemExit(f"{path}: the HH-RLHF file is missing (see ../shared/data/README.md).")
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(n_pairs), fh, strict=False)]
    return [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]


def build_files(work: Path, n_pairs: int, n_dev_pairs: int = 0) -> dict[str, Path]:
    pairs = read_pairs(HH_TRAIN, n_pairs)
    demo = demo_prompts()
    held_out = [{"prompt": f"\n\nHuman: {p['prompt']}\n\nAssistant:"} for p in demo]  # HH-style, like the train side
    files = {
        "pairs": write_jsonl(work / "pairs.jsonl", pairs),
        "sft": write_jsonl(work / "best.jsonl", [{"prompt": p["prompt"], "completion": p["chosen"]} for p in pairs]),
        "prompts": write_jsonl(work / "prompts.jsonl", [{"prompt": p["prompt"]} for p in pairs]),
        "held_out": write_jsonl(work / "held_out.jsonl", held_out),
    }
    if n_dev_pairs:  # HH helpful-base test pairs: the reward model's held-out accuracy (never trained on)
        files["dev_pairs"] = write_jsonl(work / "dev_pairs.jsonl", read_pairs(HH_DEV, n_dev_pairs))
    return files


def chain_config(args: argparse.Namespace, files: dict[str, Path], out: Path):
    from rlhf.training.ppo_config import ChainConfig

    return ChainConfig(
        sft_file=str(files["sft"]),
        pairs_file=str(files["pairs"]),
        prompts_file=str(files["prompts"]),
        eval_prompts_file=str(files["held_out"]),
        output_dir=str(out),
        base_model="tiny",  # the figures in docs/benchmarks.md were measured on the tiny fixture
        max_length=args.max_length,
        sft_epochs=args.sft_epochs,
        rm_epochs=args.rm_epochs,
        ppo_total_episodes=args.episodes,
        ppo_batch_size=args.batch,
        ppo_num_mini_batches=args.mini_batches,
        ppo_num_ppo_epochs=args.ppo_epochs,
        ppo_response_length=args.response_length,
        ppo_learning_rate=args.lr,
        ppo_kl_coef=args.kl_coef,
        ppo_kl_target=args.kl_target,
        ppo_kl_horizon=args.kl_horizon,
        eval_pairs_file=str(files["dev_pairs"]) if "dev_pairs" in files else None,
        ppo_temperature=args.temperature,
        ppo_num_eval_prompts=1000,  # all the demo prompts
        ppo_eval_samples_per_prompt=args.samples,
        seed=args.seed,
    )


def bare_trl_ppo(ppo_cfg, out: Path) -> float:
    """The baseline: TRL's PPO example reduced to its core, on our models and prompts, with the same settings."""
    import copy

    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    from rlhf.training.generation import encode_prompts, read_prompts

    started = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(ppo_cfg.policy, padding_side="left")
    policy = AutoModelForCausalLM.from_pretrained(ppo_cfg.policy)
    ref_policy = copy.deepcopy(policy)
    reward_model = AutoModelForSequenceClassification.from_pretrained(ppo_cfg.reward_model, num_labels=1)
    value_model = AutoModelForSequenceClassification.from_pretrained(ppo_cfg.reward_model, num_labels=1)
    prompts = read_prompts(ppo_cfg.train_file)
    ids = encode_prompts(tokenizer, prompts, ppo_cfg.max_prompt_length)
    args = PPOConfig(
        output_dir=str(out),
        total_episodes=ppo_cfg.total_episodes,
        per_device_train_batch_size=ppo_cfg.per_device_train_batch_size,
        num_mini_batches=ppo_cfg.num_mini_batches,
        num_ppo_epochs=ppo_cfg.num_ppo_epochs,
        response_length=ppo_cfg.response_length,
        kl_coef=ppo_cfg.kl_coef,
        temperature=ppo_cfg.temperature,
        stop_token="eos",
        missing_eos_penalty=ppo_cfg.missing_eos_penalty,
        learning_rate=ppo_cfg.learning_rate,
        seed=ppo_cfg.seed,
        logging_steps=1,
        num_sample_generations=0,
        save_strategy="no",
        report_to=[],
        bf16=False,
        gradient_checkpointing=False,
    )
    trainer = PPOTrainer(
        args=args,
        processing_class=tokenizer,
        model=policy,
        ref_model=ref_policy,
        reward_model=reward_model,
        value_model=value_model,
        train_dataset=Dataset.from_dict({"input_ids": ids}),
        eval_dataset=Dataset.from_dict({"input_ids": ids[:1]}),
    )
    trainer.train()
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    return time.monotonic() - started


def words_before_after(samples_path: Path) -> list[float]:
    """Mean words per held-out sample before and after PPO: a policy that buys reward by ending early shows here."""
    samples = json.loads(samples_path.read_text())
    return [round(statistics.fmean(len(s[k].split()) for s in samples), 1) for k in ("before", "after")]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch

    from rlhf.training.chain import run_default_chain, stage_configs
    from rlhf.training.cli import print_progress

    torch.set_num_threads(args.threads)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ppo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    files = build_files(work, args.pairs, args.rm_eval_pairs)
    cfg = chain_config(args, files, work / "chain")
    print(f"work dir {work}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)

    started = time.monotonic()
    dirs = run_default_chain(cfg, progress=print_progress)
    chain_s = time.monotonic() - started
    report = json.loads((dirs["ppo"] / "metrics.json").read_text())
    kls = [h["ppo/kl"] for h in report["history"] if "ppo/kl" in h]
    tail = kls[-max(1, len(kls) // 10) :]
    ours_s = report["ppo/runtime_s"]

    baseline_s = None
    if not args.skip_baseline:
        _, _, ppo_cfg = stage_configs(cfg, dirs)
        print("bare TRL PPO on the same models and prompts ...", flush=True)
        baseline_s = bare_trl_ppo(ppo_cfg, work / "bare_trl")

    sft = json.loads((dirs["sft"] / "metrics.json").read_text())
    rm = json.loads((dirs["reward"] / "metrics.json").read_text())
    result = {
        "reward_gain_std": round(report["ppo/eval_reward_gain_std"], 3),
        "kl_final": round(statistics.fmean(tail), 3),
        "s_per_episode": round(ours_s / args.episodes, 4),
        "baseline_trl_s_per_episode": round(baseline_s / args.episodes, 4) if baseline_s else None,
        "score_gain_std": round(report["ppo/eval_score_gain_std"], 3),  # the reward model alone, no EOS penalty
        "reward_before": round(report["ppo/eval_reward_before"], 3),
        "reward_after": round(report["ppo/eval_reward_after"], 3),
        "reward_std": round(report["ppo/eval_reward_std"], 3),
        "ppo_train_loop_s": report["ppo/train_runtime_s"],
        "episodes": args.episodes,
        "held_out_samples": len(json.loads((dirs["ppo"] / "samples.json").read_text())),
        "warnings": len(report["warnings"]),
        "sft_loss": [round(sft["sft/loss_before"], 3), round(sft["sft/loss_after"], 3)],
        "rm_eval_accuracy": round(rm["eval/accuracy"], 4) if "eval/accuracy" in rm else None,
        "words_before_after": words_before_after(dirs["ppo"] / "samples.json"),
        "kl_coef_final": report.get("ppo/kl_coef"),
        "chain_s": round(chain_s, 1),
        "threads": args.threads,
        "load_avg_end": round(os.getloadavg()[0], 1),
    }
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
