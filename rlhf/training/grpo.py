"""GRPO or RLOO with a trained reward model as the reward function: TRL's GRPOTrainer / RLOOTrainer. Plain Python.

    python -m rlhf.training.grpo --policy runs/sft --reward_model runs/reward --train_file prompts.jsonl
    python -m rlhf.training.grpo --algorithm rloo ...

Unlike PPO, these need no value model and read the reward from *text*: each sampled response is decoded and scored by
the reward model with its own tokenizer, formatted exactly as in reward-model training (`data.encode_sequences`:
chat prompts rendered the same way, long prompts keep their end, EOS appended). So any reward-model run works here,
including the MiniLM default on a different tokenizer than the policy's.
"""

import json
from pathlib import Path
from typing import Any

from rlhf.training.data import format_prompt
from rlhf.training.generation import read_prompts
from rlhf.training.ppo_config import GRPORunConfig
from rlhf.training.progress import ProgressCallback, ProgressEvent, emit

LOG_KEYS = {
    "loss": "{a}/loss",
    "reward": "{a}/mean_reward",
    "reward_std": "{a}/reward_std",
    "kl": "{a}/kl",
    "entropy": "{a}/entropy",
    "clip_ratio/region_mean": "{a}/clipfrac",
    "completions/mean_length": "{a}/mean_length",
    "completions/clipped_ratio": "{a}/no_eos_fraction",
    "learning_rate": "{a}/learning_rate",
    "grad_norm": "{a}/grad_norm",
    "epoch": "{a}/epoch",
}


def reward_function(reward_dir: str | Path, max_length: int, batch_size: int = 16) -> Any:
    """A TRL reward function (prompts, completions, **columns) -> rewards, scoring with a reward-model run."""
    from rlhf.training.data import encode_sequences
    from rlhf.training.scoring import load_reward_model, score_sequences

    model, tokenizer = load_reward_model(reward_dir)
    limit = getattr(model.config, "max_position_embeddings", None) or max_length

    def reward_model_score(prompts: list, completions: list, raw_prompt: list | None = None, **_: Any) -> list[float]:
        originals = [json.loads(p) for p in raw_prompt] if raw_prompt else prompts
        texts = [c if isinstance(c, str) else (c[0].get("content") or "") for c in completions]
        sequences, _ = encode_sequences(tokenizer, originals, texts, min(max_length, limit))
        return score_sequences(model, sequences, tokenizer.pad_token_id, batch_size=batch_size)

    return reward_model_score


def prompt_rows(prompts: list, tokenizer: Any, max_prompt_tokens: int) -> list[dict[str, str]]:
    """The policy sees the rendered prompt (its last tokens); the reward model gets the original (raw_prompt)."""
    rows = []
    for prompt in prompts:
        text = format_prompt(prompt, tokenizer)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) > max_prompt_tokens:
            text = tokenizer.decode(ids[-max_prompt_tokens:])
        rows.append({"prompt": text, "raw_prompt": json.dumps(prompt, ensure_ascii=False)})
    return rows


def _args(cfg: GRPORunConfig, out: Path) -> Any:
    from trl import GRPOConfig, RLOOConfig

    from rlhf.training.causal_defaults import stage_training_args

    return stage_training_args(
        GRPOConfig if cfg.algorithm == "grpo" else RLOOConfig,
        cfg,
        out,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        beta=cfg.beta,
        gradient_checkpointing=False,
    )


def run_grpo(cfg: GRPORunConfig, progress: ProgressCallback | None = None) -> Path:
    """Optimise the policy against the reward model with GRPO (or RLOO); save policy, tokenizer, metrics.json."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import set_seed
    from trl import GRPOTrainer, RLOOTrainer

    from rlhf.training.causal_defaults import load_causal_lm, train_and_save, write_stage_files
    from rlhf.training.sft import trainer_progress

    name = cfg.algorithm
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    emit(progress, ProgressEvent(0, 0, message=f"loading {cfg.policy} and {cfg.reward_model}", stage="setup"))
    prompts = read_prompts(cfg.train_file)
    set_seed(cfg.seed)
    policy, tokenizer = load_causal_lm(cfg.policy)
    dataset = Dataset.from_list(prompt_rows(prompts, tokenizer, cfg.max_prompt_length))
    reward = reward_function(cfg.reward_model, cfg.reward_max_length)
    keys = {k: v.format(a=name) for k, v in LOG_KEYS.items()} | {
        "rewards/reward_model_score/mean": f"{name}/mean_reward"
    }
    bridge = trainer_progress(progress, keys, name)
    trainer_class = GRPOTrainer if name == "grpo" else RLOOTrainer
    peft_config = LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha) if cfg.use_lora else None
    trainer = trainer_class(
        model=policy,
        reward_funcs=reward,
        args=_args(cfg, out),
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[bridge],
        peft_config=peft_config,
    )
    _, steps, runtime_s = train_and_save(trainer, tokenizer, out, progress)
    logged = [h for h in bridge.history if f"{name}/mean_reward" in h]
    metrics = {
        f"{name}/prompts": len(prompts),
        f"{name}/steps": steps,
        f"{name}/runtime_s": runtime_s,
        f"{name}/first_mean_reward": logged[0][f"{name}/mean_reward"] if logged else None,
        f"{name}/last_mean_reward": logged[-1][f"{name}/mean_reward"] if logged else None,
    }
    write_stage_files(out, cfg, name, metrics, bridge.history)
    shown = {k: float(v) for k, v in metrics.items() if v is not None}
    emit(progress, ProgressEvent(steps, steps, shown, f"done: {steps} steps; saved to {out}", "done"))
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m rlhf.training.grpo --config run.yaml` (rlhf/training/cli.py; --help lists every field)."""
    from rlhf.training.cli import stage_main

    stage_main("grpo", argv)


if __name__ == "__main__":
    main()
