"""PPO on a real policy: SmolLM2-135M-Instruct against the MiniLM reward model, with what RL costs measured.

Data, all from ../shared/data/ (HH-RLHF helpful-base):
  - reward models: the default reward model of the real-models issue (MiniLM-L6 fine-tuned on all 3,843 train pairs,
    max length 128, 1 epoch, lr 5e-5, 3 frozen layers, seed 42) and a second opinion PPO never sees (the same recipe
    on the other half of the pairs, the odd-numbered ones, seed 7). Trained here unless --reward-model and
    --second-reward-model name finished ones (bench/reward_model.py --keep writes the first);
  - PPO's training prompts: the single-turn train prompts that render to at most --max-prompt-tokens tokens with
    SmolLM2's chat template (1,145 of the 1,244 single-turn prompts at 64);
  - held-out prompts: the first --eval-prompts single-turn dev prompts under the same limit (their labels are never
    read: nothing here is chosen on them).

Then `rlhf.training.ppo.run_ppo` with the settings below (LoRA on the policy's top layers, the value model's top layers
trained, the MiniLM reward model behind the re-encoding wrapper). The defaults are the platform's `smollm2-cpu` PPO
recipe (`PPO_RECIPES`: what a run started with `recipe: smollm2-cpu` gets), the settings of the best measured
run (docs/benchmarks.md, "PPO on SmolLM2", run 25: run 11's 1,792 episodes in rollout batches of 64 (4 mini
batches), 2 PPO epochs, constant lr 5e-4, 32 new tokens, sampled at temperature 1.0, kl_coef 0.1 adapted towards
4 nats over a 128-episode horizon but never below 0.05; 46 to 63 minutes of training on a 2-core CPU, about 70 to 85
with the reward models, the held-out sampling and the TRL baseline; until run 25 the defaults were run 11's:
temperature 0.7, target 3.5, no floor). With the same seed and reward models a run repeats batch for batch (run 17
is run 11 again).
run_ppo samples --best-of reference samples per held-out prompt before training and --samples after it, and
reports (in units of the reference samples' std):
  reward_gain_std      the reward model's gain on the held-out prompts (what PPO optimised; with an ensemble,
                       their combined reward's, and member_gain_std each member's, --reward-model's first)
  second_rm_gain_std   the second reward model's gain on the same samples (not optimised)
  best_of_4_gain_std   best-of-4 sampling from the reference, scored by the reward model (the cheap alternative)
  kl_final             mean KL to the reference over the last 10% of batches (nats per response)
  ppl_ratio            perplexity under the reference of the policy's samples / of the reference's own samples
  distinct2_ratio      distinct-2 after / before;  length_ratio: mean tokens after / before
  s_per_episode        PPO's training loop (monitor, adaptive KL included; no loading, no held-out sampling) / episodes
Then the baseline: a bare TRL PPOTrainer on the same models and prompts with the same PPOConfig, no callbacks, for
--baseline-episodes episodes: baseline_trl_s_per_episode = its training loop / its episodes.

Targets (issue #11): policy_params >= 100M; reward_gain_std >= 1.0 at kl_final <= 5; second_rm_gain_std >= 0.3;
ppl_ratio <= 1.5; distinct2_ratio >= 0.8; length_ratio <= 1.5; s_per_episode <= 1.1 x baseline; train_s <= 90 min.
The last line of stdout is one JSON object.

Examples:
    .venv/bin/python bench/ppo.py --workdir /tmp/ppo-bench --keep          # the benchmark (trains the reward models)
    .venv/bin/python bench/ppo.py --reward-model /tmp/ppo-bench/rm --second-reward-model /tmp/ppo-bench/rm2
    .venv/bin/python bench/ppo.py --episodes 16 --batch 16 --eval-prompts 4 --best-of 4 --baseline-episodes 16  # smoke
    # PPO's reward = the mean of an ensemble: --reward-model and two more seeds of its recipe (trained here)
    .venv/bin/python bench/ppo.py --reward-model /tmp/ppo-bench/rm --second-reward-model /tmp/ppo-bench/rm2 \\
        --ensemble-seeds 1 2 --workdir /tmp/ppo-ensemble
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
HH_TRAIN = REPO.parent / "shared" / "data" / "hh_helpful_train.jsonl"
HH_DEV = REPO.parent / "shared" / "data" / "hh_helpful_dev.jsonl"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rlhf.training.ppo_config import PPO_RECIPES  # noqa: E402 - after sys.path; plain dataclasses, no torch

# PPO's defaults are the platform's "smollm2-cpu" recipe (`recipe` of a PPO run: form, API, `run_ppo --recipe`), so the
# figures measured here are what a user who picks it gets.
RECIPE = PPO_RECIPES["smollm2-cpu"]
# The PPO flags whose defaults are the recipe's: (flag, the recipe's field, type, help).
RECIPE_FLAGS = [
    ("--episodes", "total_episodes", int, "PPO episodes."),
    ("--batch", "per_device_train_batch_size", int, "Rollout batch (episodes per PPO update)."),
    ("--mini-batches", "num_mini_batches", int, "Mini batches per rollout batch."),
    ("--ppo-epochs", "num_ppo_epochs", int, "PPO epochs per rollout batch."),
    ("--response-length", "response_length", int, "Maximum new tokens per response."),
    ("--lr", "learning_rate", float, "Learning rate (LoRA adapters and the value model's top layers)."),
    ("--lr-schedule", "lr_scheduler_type", str, "Learning-rate schedule: linear (decays to 0) or constant."),
    ("--lora-r", "lora_r", int, "LoRA rank."),
    ("--lora-top-layers", "lora_top_layers", int, "LoRA on the policy's top N of 30 decoder layers."),
    ("--value-top-layers", "value_top_layers", int, "Value model: train its top N decoder layers and head."),
    ("--kl-coef", "kl_coef", float, "KL coefficient (the start value with --kl-target)."),
    ("--kl-target", "kl_target", float, "Adaptive KL target, nats per response (0 = fixed kl_coef)."),
    ("--kl-horizon", "kl_horizon", int, "Adaptive KL horizon (episodes)."),
    ("--kl-coef-min", "kl_coef_min", float, "Adaptive KL coefficient floor (0 = none; at most --kl-coef)."),
    ("--lam", "lam", float, "GAE lambda (1 = Monte Carlo returns, the value only a baseline)."),
    ("--temperature", "temperature", float, "Sampling temperature (rollouts and held-out samples)."),
    ("--missing-eos-penalty", "missing_eos_penalty", float, "Subtracted from responses without EOS (off)."),
]
# The reward-model recipe of bench/reward_model.py's defaults (chosen there on a slice of the training pairs).
RM_SETTINGS = dict(base_model="minilm", max_length=128, freeze_layers=3, learning_rate=5e-5,
                   per_device_train_batch_size=8, num_train_epochs=1.0, logging_steps=50)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ppo.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--policy", default="default", help="The policy (default: SmolLM2-135M-Instruct, prepared on first use).")
    add("--reward-model", type=Path, default=None, help="A finished reward model (default: trained here).")
    add("--second-reward-model", type=Path, default=None, help="The second opinion (default: trained here).")
    add(
        "--reward-ensemble",
        type=Path,
        nargs="*",
        default=[],
        help="More finished reward models: PPO's reward is "
        "the ensemble of --reward-model and these (default: none, or trained here with --ensemble-seeds).",
    )
    add(
        "--ensemble-seeds",
        type=int,
        nargs="*",
        default=[],
        help="Train an ensemble member per seed here (the "
        "reward model's recipe on all train pairs), unless --reward-ensemble names them.",
    )
    add("--ensemble-mode", default="mean", help="How the ensemble's rewards combine: mean, mean-std or min.")
    add("--ensemble-std-weight", type=float, default=1.0, help="With --ensemble-mode mean-std: the spread's weight.")
    add(
        "--ensemble-normalize",
        action="store_true",
        help="Combine the members' z-scores on the reference's samples (members on different scales).",
    )
    for flag, field, kind, help_text in RECIPE_FLAGS:
        add(flag, type=kind, default=RECIPE[field], help=help_text)
    add("--max-prompt-tokens", type=int, default=64, help="Only prompts this short (rendered), train and held out.")
    add("--eval-prompts", type=int, default=32, help="Held-out prompts (the gain's standard error: ≈ 0.09 sd at 32).")
    add("--samples", type=int, default=4, help="Policy samples per held-out prompt after training.")
    add("--best-of", type=int, default=16, help="Reference samples per held-out prompt (best-of-4 and best-of-N).")
    add("--baseline-episodes", type=int, default=64, help="Episodes of the bare TRL baseline (0 = skip it).")
    add("--threads", type=int, default=2, help="torch threads.")
    add("--seed", type=int, default=42)
    add("--workdir", type=Path, default=None, help="Where files and models go (default: a tmp dir).")
    add("--keep", action="store_true", help="Keep the work directory (default: only with --workdir).")
    args = parser.parse_args(argv)
    # PPORunConfig's own rule (total_episodes >= one rollout batch; the baseline may be skipped with 0), checked here
    # too because the baseline's config is only built after the reward models and the PPO run, an hour in.
    if args.episodes < args.batch or 0 < args.baseline_episodes < args.batch:
        parser.error(f"--episodes and --baseline-episodes (unless 0) must be at least --batch ({args.batch}).")
    return args


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise SystemExit(f"{path}: the HH-RLHF file is missing (see ../shared/data/README.md).")
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def short_prompts(path: Path, tokenizer, limit: int) -> list[str]:
    """The file's distinct single-turn prompts that render to at most `limit` tokens, in file order."""
    from rlhf.training.generation import encode_prompts

    prompts = list(dict.fromkeys(r["prompt"] for r in read_rows(path) if r["prompt"].count("Human:") == 1))
    ids = encode_prompts(tokenizer, prompts, 10**6)
    return [p for p, seq in zip(prompts, ids, strict=True) if len(seq) <= limit]


def member_name(seed: int) -> str:
    """The work-dir name of the ensemble member trained with `seed`."""
    return f"rm_s{seed}"


def reward_model_recipes(seed: int, ensemble_seeds: list[int]) -> dict[str, tuple[slice, int]]:
    """name -> (which train pairs, seed): `rm` = the default reward model on all train pairs (seed `seed`), `rm2` = the
    second opinion on the odd-numbered half (seed 7), `rm_s<N>` = an ensemble member on all train pairs (seed N)."""
    return {"rm": (slice(None), seed), "rm2": (slice(1, None, 2), 7)} | {
        member_name(member): (slice(None), member) for member in ensemble_seeds
    }


def train_reward_models(work: Path, recipes: dict[str, tuple[slice, int]]) -> tuple[dict[str, Path], float]:
    """Train the reward models of `recipes` (`reward_model_recipes`) into the work dir, each skipped when already
    there."""
    from rlhf.training.cli import print_progress
    from rlhf.training.config import RewardModelConfig
    from rlhf.training.reward_model import train_reward_model

    rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in read_rows(HH_TRAIN)]
    started = time.monotonic()
    dirs = {}
    for name, (pairs, rm_seed) in recipes.items():
        out = work / name
        if not (out / "config.json").is_file():
            data = write_jsonl(work / f"{name}_pairs.jsonl", rows[pairs])
            cfg = RewardModelConfig(train_file=str(data), output_dir=str(out), seed=rm_seed, **RM_SETTINGS)
            train_reward_model(cfg, progress=print_progress)
        dirs[name] = out
    return dirs, time.monotonic() - started


def ppo_config(args, files: dict[str, Path], rm: Path, rm2: Path, ensemble: list[Path], out: Path, episodes: int):
    from rlhf.training.ppo_config import PPORunConfig

    return PPORunConfig(
        policy=args.policy,
        reward_model=str(rm),
        second_reward_model=str(rm2),
        reward_ensemble=[str(path) for path in ensemble],
        reward_ensemble_mode=args.ensemble_mode,
        reward_ensemble_std_weight=args.ensemble_std_weight,
        reward_ensemble_normalize=args.ensemble_normalize,
        train_file=str(files["train"]),
        eval_file=str(files["held_out"]),
        output_dir=str(out),
        total_episodes=episodes,
        # TRL: rollout batch = per-device batch x accumulation; each of num_mini_batches mini batches is one
        # optimizer step when accumulation is 1 (its loss statistics also assume that)
        per_device_train_batch_size=args.batch,
        gradient_accumulation_steps=1,
        num_mini_batches=args.mini_batches,
        local_rollout_forward_batch_size=args.batch,
        num_ppo_epochs=args.ppo_epochs,
        response_length=args.response_length,
        max_prompt_length=args.max_prompt_tokens,
        learning_rate=args.lr,
        lr_scheduler_type=args.lr_schedule,
        use_lora=True,
        lora_r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        lora_top_layers=args.lora_top_layers,
        value_top_layers=args.value_top_layers,
        kl_coef=args.kl_coef,
        kl_target=args.kl_target or None,
        kl_horizon=args.kl_horizon,
        kl_coef_min=min(args.kl_coef_min, args.kl_coef),  # a lower start value lowers the floor with it
        lam=args.lam,
        temperature=args.temperature,
        missing_eos_penalty=args.missing_eos_penalty,
        num_eval_prompts=args.eval_prompts,
        eval_samples_per_prompt=args.samples,
        best_of_n=args.best_of,
        seed=args.seed,
    )


def bare_trl_ppo(cfg, out: Path) -> float:
    """The baseline: TRL's PPOTrainer built from the same models, prompts and PPOConfig, no callbacks; returns the
    seconds of `trainer.train()`. The models come from the same loaders as run_ppo's (the policy, the re-encoding
    reward model, the value model with its lower layers frozen): what differs is only the platform's loop around
    TRL (progress bridge, adaptive KL, the monitor)."""
    import copy

    from datasets import Dataset
    from transformers import set_seed
    from trl.experimental.ppo import PPOTrainer

    from rlhf.training.causal_defaults import load_causal_lm
    from rlhf.training.generation import encode_prompts, read_prompts
    from rlhf.training.ppo import _peft_config, freeze_value_model, reward_and_value_models, trl_ppo_config

    set_seed(cfg.seed)
    policy, tokenizer = load_causal_lm(cfg.policy)
    prompts = read_prompts(cfg.train_file)
    ids = encode_prompts(tokenizer, prompts, cfg.max_prompt_length)
    reward_model, value_model = reward_and_value_models(cfg, policy, tokenizer, list(zip(ids, prompts, strict=True)))
    freeze_value_model(value_model, cfg.value_top_layers)
    tokenizer.padding_side = "left"
    trainer = PPOTrainer(
        args=trl_ppo_config(cfg, out),
        processing_class=tokenizer,
        model=policy,
        ref_model=None if cfg.use_lora else copy.deepcopy(policy),
        reward_model=reward_model,
        value_model=value_model,
        train_dataset=Dataset.from_dict({"input_ids": ids}),
        eval_dataset=Dataset.from_dict({"input_ids": ids[:1]}),
        peft_config=_peft_config(cfg, policy),
    )
    started = time.monotonic()
    trainer.train()
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch
    from transformers import AutoTokenizer

    from rlhf.training.cli import print_progress
    from rlhf.training.models import resolve_model
    from rlhf.training.ppo import run_ppo

    torch.set_num_threads(args.threads)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ppo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work dir {work}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(args.policy))
    train = short_prompts(HH_TRAIN, tokenizer, args.max_prompt_tokens)
    held_out = short_prompts(HH_DEV, tokenizer, args.max_prompt_tokens)[: args.eval_prompts]
    files = {
        "train": write_jsonl(work / "prompts.jsonl", [{"prompt": p} for p in train]),
        "held_out": write_jsonl(work / "held_out.jsonl", [{"prompt": p} for p in held_out]),
    }
    rm, rm2, ensemble, rm_s = args.reward_model, args.second_reward_model, args.reward_ensemble, 0.0
    member_seeds = [] if ensemble else args.ensemble_seeds
    recipes = reward_model_recipes(args.seed, member_seeds)
    members = [member_name(member) for member in member_seeds]
    needed = {name: recipe for name, recipe in recipes.items() if {"rm": rm, "rm2": rm2}.get(name) is None}
    if needed:
        trained, rm_s = train_reward_models(work, needed)
        rm, rm2, ensemble = rm or trained["rm"], rm2 or trained["rm2"], ensemble or [trained[m] for m in members]
    print(f"{len(train)} train prompts, {len(held_out)} held out; reward models {rm}, {rm2}", flush=True)
    if ensemble:
        print(f"reward = {args.ensemble_mode} of {rm} and {', '.join(map(str, ensemble))}", flush=True)

    cfg = ppo_config(args, files, rm, rm2, ensemble, work / "ppo", args.episodes)
    started = time.monotonic()
    out = run_ppo(cfg, progress=print_progress)
    run_s = time.monotonic() - started
    report = json.loads((out / "metrics.json").read_text())

    baseline_s = None
    if args.baseline_episodes:
        print(f"bare TRL PPO for {args.baseline_episodes} episodes on the same models ...", flush=True)
        base_cfg = ppo_config(args, files, rm, rm2, ensemble, work / "bare_trl", args.baseline_episodes)
        baseline_s = bare_trl_ppo(base_cfg, work / "bare_trl")

    from transformers import AutoConfig, AutoModelForCausalLM

    params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(out).parameters())
    m = report.get
    result = {
        "policy": AutoConfig.from_pretrained(out).architectures[0] + f" ({args.policy})",
        "policy_params": params,
        "reward_gain_std": round(m("ppo/eval_score_gain_std"), 3),
        "kl_final": round(m("ppo/kl_final"), 3),
        "ppl_ratio": round(m("ppo/perplexity_ratio"), 3),
        "distinct2_ratio": round(m("ppo/distinct2_ratio"), 3),
        "length_ratio": round(m("ppo/length_ratio"), 3),
        "second_rm_gain_std": round(m("ppo/eval_second_gain_std"), 3),
        # with an ensemble, reward_gain_std is the combined reward's (what PPO optimised) and these each member's,
        # the first being --reward-model alone (comparable with single-model runs)
        "member_gain_std": [round(m(f"ppo/eval_member{i}_gain_std"), 3) for i in range(len(ensemble) + 1)]
        if ensemble
        else None,
        "ensemble_mode": args.ensemble_mode if ensemble else None,
        "best_of_4_gain_std": round(m("ppo/best_of_4_reward_gain_std"), 3),
        f"best_of_{args.best_of}_gain_std": round(m(f"ppo/best_of_{args.best_of}_reward_gain_std") or 0.0, 3),
        "best_of_4_second_gain_std": round(m("ppo/best_of_4_second_gain_std"), 3),
        "s_per_episode": round(m("ppo/train_runtime_s") / args.episodes, 3),
        "baseline_trl_s_per_episode": round(baseline_s / args.baseline_episodes, 3) if baseline_s else None,
        "train_s": round(m("ppo/train_runtime_s"), 1),
        "eval_s": round(m("ppo/eval_runtime_s"), 1),
        "run_s": round(run_s, 1),
        "rm_train_s": round(rm_s, 1),
        "episodes": args.episodes,
        "self_similarity": [round(m("ppo/self_similarity_before"), 3), round(m("ppo/self_similarity_after"), 3)],
        "length_tokens": [round(m("ppo/length_before"), 1), round(m("ppo/length_after"), 1)],
        "perplexity": [round(m("ppo/perplexity_before"), 2), round(m("ppo/perplexity_after"), 2)],
        "distinct1_ratio": round(m("ppo/distinct1_ratio"), 3),
        "kl_coef_final": m("ppo/kl_coef"),
        "warnings": report["warnings"],
        "threads": args.threads,
        "load_avg_end": round(os.getloadavg()[0], 1),
        "workdir": str(work),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
