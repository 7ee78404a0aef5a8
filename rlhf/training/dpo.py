"""DPO straight from the preference export: TRL's DPOTrainer, no reward model, no sampling. Plain Python.

    python -m rlhf.training.dpo --train_file pairs.jsonl --policy runs/sft --output_dir runs/dpo

Rows are the export's prompt/chosen/rejected (text or chat). They are rendered as the other stages render them
(`data.format_prompt` / `format_completion`), long prompts keep their last tokens, ties (`tie: true`) are set aside.
The reference is a frozen copy of the initial policy (with LoRA: the adapter-free model).
"""

from pathlib import Path
from typing import Any

from rlhf.training.data import format_completion, format_prompt, read_pairs, without_ties
from rlhf.training.ppo_config import DPORunConfig
from rlhf.training.progress import ProgressCallback, ProgressEvent, emit

DPO_LOG_KEYS = {
    "loss": "dpo/loss",
    "eval_loss": "dpo/eval_loss",
    "rewards/chosen": "dpo/reward_chosen",
    "rewards/rejected": "dpo/reward_rejected",
    "rewards/accuracies": "dpo/accuracy",
    "rewards/margins": "dpo/margin",
    "eval_rewards/accuracies": "dpo/eval_accuracy",
    "eval_rewards/margins": "dpo/eval_margin",
    "learning_rate": "dpo/learning_rate",
    "grad_norm": "dpo/grad_norm",
    "epoch": "dpo/epoch",
}


def dpo_rows(rows: list[dict[str, Any]], tokenizer: Any, max_prompt_tokens: int) -> list[dict[str, str]]:
    """Text rows for DPOTrainer: the prompt rendered and cut to its last `max_prompt_tokens` tokens."""
    out = []
    for row in rows:
        prompt = format_prompt(row.get("prompt"), tokenizer)
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if len(ids) > max_prompt_tokens:
            prompt = tokenizer.decode(ids[-max_prompt_tokens:])
        out.append(
            {
                "prompt": prompt,
                "chosen": format_completion(row["chosen"], row.get("prompt"), tokenizer),
                "rejected": format_completion(row["rejected"], row.get("prompt"), tokenizer),
            }
        )
    return out


def _args(cfg: DPORunConfig, out: Path, has_eval: bool) -> Any:
    from trl import DPOConfig

    from rlhf.training.causal_defaults import stage_training_args

    return stage_training_args(
        DPOConfig,
        cfg,
        out,
        beta=cfg.beta,
        loss_type=[cfg.loss_type],
        max_length=cfg.max_length,
        eval_strategy="epoch" if has_eval else "no",
        gradient_checkpointing=False,
    )


def run_dpo(cfg: DPORunConfig, progress: ProgressCallback | None = None) -> Path:
    """Train the policy on the preference pairs with DPO; save policy, tokenizer, metrics.json; return the dir."""
    import copy

    from datasets import Dataset
    from peft import LoraConfig
    from transformers import set_seed
    from trl import DPOTrainer

    from rlhf.training.causal_defaults import load_causal_lm, train_and_save, write_stage_files
    from rlhf.training.sft import trainer_progress

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    emit(progress, ProgressEvent(0, 0, message=f"loading {cfg.train_file}", stage="setup"))
    rows, ties = without_ties(read_pairs(cfg.train_file))
    eval_rows = without_ties(read_pairs(cfg.eval_file))[0] if cfg.eval_file else None
    set_seed(cfg.seed)
    policy, tokenizer = load_causal_lm(cfg.policy)
    max_prompt = cfg.max_length // 2
    train = Dataset.from_list(dpo_rows(rows, tokenizer, max_prompt))
    evals = Dataset.from_list(dpo_rows(eval_rows, tokenizer, max_prompt)) if eval_rows else None
    emit(
        progress, ProgressEvent(0, 0, {"dpo/pairs": len(rows), "dpo/ties_skipped": ties}, f"{len(rows)} pairs", "setup")
    )

    bridge = trainer_progress(progress, DPO_LOG_KEYS, "dpo")
    peft_config = LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha) if cfg.use_lora else None
    trainer = DPOTrainer(
        model=policy,
        ref_model=None if cfg.use_lora else copy.deepcopy(policy),
        args=_args(cfg, out, evals is not None),
        train_dataset=train,
        eval_dataset=evals,
        processing_class=tokenizer,
        callbacks=[bridge],
        peft_config=peft_config,
    )
    _, steps, runtime_s = train_and_save(trainer, tokenizer, out, progress)
    last = next((h for h in reversed(bridge.history) if "dpo/loss" in h), {})
    metrics = {
        **{k: v for k, v in last.items() if k.startswith("dpo/") and k != "dpo/elapsed_s"},
        "dpo/pairs": len(rows),
        "dpo/steps": steps,
        "dpo/runtime_s": runtime_s,
    }
    write_stage_files(out, cfg, "dpo", metrics, bridge.history)
    emit(progress, ProgressEvent(steps, steps, metrics, f"done: {steps} steps; saved to {out}", "done"))
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m rlhf.training.dpo --config run.yaml` (rlhf/training/cli.py; --help lists every field)."""
    from rlhf.training.cli import stage_main

    stage_main("dpo", argv)


if __name__ == "__main__":
    main()
