"""The offline default chain, InstructGPT-style: pretrained policy -> SFT -> reward model -> PPO.

    python -m rlhf.training.chain --sft_file best.jsonl --pairs_file pairs.jsonl --output_dir runs/chain
    python -m rlhf.training.chain --base_model tiny ...          # the test fixture: seconds, word salad

1. base: SmolLM2-135M-Instruct by default (`models.resolve_model`, prepared offline on first use; its tokenizer and
   chat template as they are), or any causal LM id / folder. With base_model='tiny' (the test fixture) base/ holds a
   small random GPT-2 with a byte-level BPE tokenizer trained on the project's own texts.
2. sft/: TRL's SFTTrainer on the project's best-ranked responses (`run_sft`; LoRA on a pretrained base).
3. reward/: the reward model on the same tokenizer, initialised from the SFT weights with a one-output head
   (`train_reward_model`, base_model = sft/).
4. ppo/: PPO of the SFT policy against that reward model (`run_ppo`); the value model starts from the reward model.

Settings that depend on the base (learning rates, LoRA, step caps) come from `ppo_config.CHAIN_PRESETS`.
Returns {"base", "sft", "reward", "ppo"} -> model dirs; chain.json sums up the stages. Plain Python, no Django.
"""

import json
from pathlib import Path
from typing import Any

from rlhf.training.config import RewardModelConfig
from rlhf.training.data import format_completion, format_prompt, read_rows
from rlhf.training.ppo_config import TINY, ChainConfig, PPORunConfig, SFTRunConfig
from rlhf.training.progress import ProgressCallback, ProgressEvent, emit

STAGES = ("base", "sft", "reward", "ppo")


def project_texts(*paths: str | None) -> list[str]:
    """Every prompt and response text in the files (what the tokenizer is trained on)."""
    texts = []
    for path in paths:
        if not path:
            continue
        for row in read_rows(path):
            texts.append(format_prompt(row.get("prompt")))
            texts += [
                format_completion(row[k], row.get("prompt")) for k in ("completion", "chosen", "rejected") if k in row
            ]
    return [t for t in texts if t]


def stage_progress(progress: ProgressCallback | None, index: int, name: str, last: bool = False) -> ProgressCallback:
    """Pass a stage's events on, labelled; a stage's own 'done' becomes 'save' unless it ends the chain."""

    def forward(event: ProgressEvent) -> None:
        stage = event.stage if last or event.stage != "done" else "save"
        message = f"[{index}/{len(STAGES)} {name}] {event.message}" if event.message else ""
        metrics = {**event.metrics, "chain/stage": float(index)}
        emit(progress, ProgressEvent(event.step, event.total_steps, metrics, message, stage))

    return forward


def build_base(cfg: ChainConfig, out: Path) -> Path:
    """The tiny fixture's base/: a random GPT-2 and a tokenizer trained on the project's texts."""
    from rlhf.training.causal_defaults import build_tiny_causal_lm, count_parameters

    texts = project_texts(cfg.sft_file, cfg.pairs_file, cfg.prompts_file)
    positions = max(512, cfg.max_length)
    model, tokenizer = build_tiny_causal_lm(
        texts, cfg.vocab_size, cfg.n_layer, cfg.n_embd, cfg.n_head, positions, cfg.seed
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {"texts": len(texts), "vocab_size": len(tokenizer), "parameters": count_parameters(model)}
    (out / "metrics.json").write_text(json.dumps(info, indent=2))
    return out


def stage_configs(cfg: ChainConfig, dirs: dict[str, Path]) -> tuple[SFTRunConfig, RewardModelConfig, PPORunConfig]:
    sft = SFTRunConfig(
        train_file=cfg.sft_file,
        base_model=str(dirs["base"]),
        output_dir=str(dirs["sft"]),
        max_length=cfg.max_length,
        max_prompt_length=cfg.max_length // 2,
        num_train_epochs=cfg.sft_epochs,
        max_steps=cfg.sft_max_steps,
        learning_rate=cfg.sft_learning_rate,
        use_lora=cfg.sft_use_lora,
        seed=cfg.seed,
    )
    reward = RewardModelConfig(
        train_file=cfg.pairs_file,
        eval_file=cfg.eval_pairs_file,
        base_model=str(dirs["sft"]),
        output_dir=str(dirs["reward"]),
        max_length=cfg.max_length,
        num_train_epochs=cfg.rm_epochs,
        max_steps=cfg.rm_max_steps,
        learning_rate=cfg.rm_learning_rate,
        use_lora=cfg.rm_use_lora,
        method=cfg.rm_method,
        length_debias=cfg.rm_length_debias,
        trunk_layers=cfg.rm_trunk_layers,
        logging_steps=5,
        seed=cfg.seed,
    )
    ppo = PPORunConfig(
        policy=str(dirs["sft"]),
        reward_model=str(dirs["reward"]),
        train_file=cfg.prompts_file or cfg.pairs_file,
        eval_file=cfg.eval_prompts_file,
        output_dir=str(dirs["ppo"]),
        total_episodes=cfg.ppo_total_episodes,
        per_device_train_batch_size=cfg.ppo_batch_size,
        num_mini_batches=cfg.ppo_num_mini_batches,
        num_ppo_epochs=cfg.ppo_num_ppo_epochs,
        response_length=cfg.ppo_response_length,
        max_prompt_length=cfg.max_length - cfg.ppo_response_length,
        learning_rate=cfg.ppo_learning_rate,
        kl_coef=cfg.ppo_kl_coef,
        kl_target=cfg.ppo_kl_target,
        kl_horizon=cfg.ppo_kl_horizon,
        kl_coef_min=cfg.ppo_kl_coef_min,
        temperature=cfg.ppo_temperature,
        num_eval_prompts=cfg.ppo_num_eval_prompts,
        eval_samples_per_prompt=cfg.ppo_eval_samples_per_prompt,
        best_of_n=cfg.ppo_best_of_n,
        seed=cfg.seed,
    )
    return sft, reward, ppo


SMALL_DATA_PAIRS = 1000
SMALL_DATA = (
    "NOTE: {pairs} preference pairs from {prompts} prompts: enough to check that the chain runs, too few for a "
    "reward model to learn much, so expect a held-out accuracy near chance and PPO gains that mean little. The PPO "
    "benchmark used 3,843 pairs (docs/benchmarks.md)."
)


def small_data_note(pairs_file: str) -> str | None:
    """A warning for the run's log when the preference data is too small for the from-scratch chain to learn from."""
    from rlhf.training.data import read_rows

    rows = read_rows(pairs_file)
    if len(rows) >= SMALL_DATA_PAIRS:
        return None
    prompts = {json.dumps(row.get("prompt"), sort_keys=True) for row in rows}
    return SMALL_DATA.format(pairs=len(rows), prompts=len(prompts))


def run_default_chain(cfg: ChainConfig, progress: ProgressCallback | None = None) -> dict[str, Path]:
    """Build, fine-tune, reward-model and PPO; returns the output dir of each stage."""
    from rlhf.training.models import resolve_model
    from rlhf.training.ppo import run_ppo
    from rlhf.training.reward_model import train_reward_model
    from rlhf.training.sft import run_sft

    out = Path(cfg.output_dir)
    dirs = {name: out / name for name in STAGES}
    if cfg.base_model == TINY:
        dirs["base"].mkdir(parents=True, exist_ok=True)
        message = f"[1/4 base] test fixture: tokenizer and tiny GPT-2 from {cfg.sft_file}"
        emit(progress, ProgressEvent(0, 0, message=message, stage="setup"))
        build_base(cfg, dirs["base"])
    else:
        emit(progress, ProgressEvent(0, 0, message=f"[1/4 base] {cfg.base_model} (preparing if needed)", stage="setup"))
        dirs["base"] = Path(resolve_model(cfg.base_model))
    for name in ("sft", "reward", "ppo"):
        dirs[name].mkdir(parents=True, exist_ok=True)
    note = small_data_note(cfg.pairs_file)
    if note:
        emit(progress, ProgressEvent(0, 0, message=note, stage="setup"))
    sft_cfg, rm_cfg, ppo_cfg = stage_configs(cfg, dirs)
    run_sft(sft_cfg, stage_progress(progress, 2, "sft"))
    train_reward_model(rm_cfg, stage_progress(progress, 3, "reward"))
    run_ppo(ppo_cfg, stage_progress(progress, 4, "ppo", last=True))
    summary = {name: _metrics(path) for name, path in dirs.items()}
    (out / "chain.json").write_text(json.dumps({"config": cfg.to_dict(), "stages": summary}, indent=2))
    return dirs


def train_chain(cfg: ChainConfig, progress: ProgressCallback | None = None) -> Path:
    """The chain as one stage (the registry's entry): run it, and write the output dir's metrics.json: the stages'
    final metrics (the PPO stage's figures and warnings last, on top) and `chain/dirs`. Returns the output dir."""
    dirs = run_default_chain(cfg, progress=progress)
    metrics: dict[str, Any] = {}
    for name in ("sft", "reward", "ppo"):
        file = dirs[name] / "metrics.json"
        data = json.loads(file.read_text()) if file.is_file() else {}
        metrics |= {k: v for k, v in data.items() if k != "history"}
    metrics["chain/dirs"] = {name: str(path) for name, path in dirs.items()}
    out = Path(cfg.output_dir)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return out


def _metrics(path: Path) -> dict[str, Any]:
    file = path / "metrics.json"
    data = json.loads(file.read_text()) if file.is_file() else {}
    return {"dir": str(path), **{k: v for k, v in data.items() if isinstance(v, int | float | str) or k == "warnings"}}


def main(argv: list[str] | None = None) -> None:
    """`python -m rlhf.training.chain --config run.yaml` (rlhf/training/cli.py; --help lists every field)."""
    from rlhf.training.cli import stage_main

    stage_main("chain", argv)


if __name__ == "__main__":
    main()
