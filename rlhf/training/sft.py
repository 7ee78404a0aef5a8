"""Supervised fine-tuning (the stage before reward modelling): TRL's SFTTrainer on the project's best-ranked responses.

    python -m rlhf.training.sft --train_file best.jsonl --base_model tiny --output_dir runs/sft
    python -m rlhf.training.sft --config configs/sft.yaml

Rows are `prompt` (text or chat) + `completion` (or `chosen`). They are formatted exactly as the reward model and PPO
see them (`data.format_prompt` / `format_completion`, the tokenizer's chat template when it has one), tokenized here
(a long prompt keeps its end, every completion ends with EOS) and handed to SFTTrainer pre-tokenized with a
completion mask, so the loss is on the response tokens only. Plain Python, no Django.
"""

import json
import time
from pathlib import Path
from typing import Any

from rlhf.training.data import DataError, completion_ids, format_completion, format_prompt, read_rows
from rlhf.training.ppo_config import TINY, SFTRunConfig
from rlhf.training.progress import ProgressCallback, ProgressEvent, emit

PROGRESS_EVERY_S = 2.0
SFT_LOG_KEYS = {
    "loss": "sft/loss",
    "eval_loss": "sft/eval_loss",
    "learning_rate": "sft/learning_rate",
    "grad_norm": "sft/grad_norm",
    "mean_token_accuracy": "sft/token_accuracy",
    "entropy": "sft/entropy",
    "epoch": "sft/epoch",
}


def trainer_progress(progress: ProgressCallback | None, keys: dict[str, str], prefix: str) -> Any:
    """A transformers TrainerCallback that turns trainer logs into ProgressEvents (known keys renamed by `keys`,
    others as `prefix/key`), reports every few seconds between logs, and lets TrainingCancelled propagate."""
    from transformers import TrainerCallback

    class ProgressBridge(TrainerCallback):
        def __init__(self) -> None:
            self.started = self.last_emit = time.monotonic()
            self.history: list[dict[str, float]] = []

        def _emit(self, state: Any, metrics: dict[str, float], message: str) -> None:
            self.last_emit = time.monotonic()
            metrics = {**metrics, f"{prefix}/elapsed_s": round(self.last_emit - self.started, 2)}
            emit(progress, ProgressEvent(state.global_step, state.max_steps or 0, metrics, message, "train"))

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.monotonic()
            self._emit(state, {}, f"training: {state.max_steps} steps")

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if time.monotonic() - self.last_emit >= PROGRESS_EVERY_S:
                self._emit(state, {}, "")

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            metrics = {
                keys.get(k, f"{prefix}/{k.replace('/', '_')}"): float(v)
                for k, v in (logs or {}).items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            if metrics:
                self.history.append({"step": state.global_step, **metrics})
                shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k in keys.values())
                self._emit(state, metrics, f"step {state.global_step}/{state.max_steps}: {shown}")

    return ProgressBridge()


def sft_rows(path: str | Path) -> list[tuple[Any, Any]]:
    """(prompt, completion) pairs: `completion`, else `chosen` (a preference export); duplicates dropped."""
    pairs, seen = [], set()
    for number, row in enumerate(read_rows(path), start=1):
        completion = row.get("completion", row.get("chosen"))
        if completion in (None, "", []) or "prompt" not in row:
            raise DataError(f"{path}, row {number}: an SFT row needs `prompt` and `completion` (or `chosen`).")
        key = json.dumps([row["prompt"], completion], sort_keys=True)
        if key not in seen:
            seen.add(key)
            pairs.append((row["prompt"], completion))
    return pairs


def encode_demonstrations(
    tokenizer: Any, pairs: list[tuple[Any, Any]], max_length: int, max_prompt_length: int
) -> list[dict[str, list[int]]]:
    """{input_ids, completion_mask} per demonstration: prompt (its end) + completion (its start) + EOS."""
    prompts = [format_prompt(p, tokenizer) for p, _ in pairs]
    completions = [format_completion(c, p, tokenizer) for p, c in pairs]
    p_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    c_ids = completion_ids(tokenizer, completions)  # the EOS (a template's end of turn) is appended below, once
    items = []
    for p, c in zip(p_ids, c_ids, strict=True):
        p = p[-max_prompt_length:] if len(p) > max_prompt_length else p
        c = c[: max_length - len(p) - 1] + [tokenizer.eos_token_id]
        items.append({"input_ids": p + c, "completion_mask": [0] * len(p) + [1] * len(c)})
    return items


def completion_loss(model: Any, items: list[dict[str, list[int]]], pad_token_id: int, batch_size: int = 16) -> float:
    """Mean cross-entropy per completion token (the SFT objective), without gradients."""
    import torch

    device = next(model.parameters()).device
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            width = max(len(it["input_ids"]) for it in batch)
            ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, it in enumerate(batch):
                n = len(it["input_ids"])
                ids[row, :n] = torch.tensor(it["input_ids"])
                mask[row, :n] = 1
                labels[row, :n] = torch.tensor(
                    [t if m else -100 for t, m in zip(it["input_ids"], it["completion_mask"], strict=True)]
                )
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1].float()
            target = labels[:, 1:].to(device)
            loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="sum")
            total += loss.item()
            count += int((target != -100).sum())
    model.train(was_training)
    return total / max(count, 1)


def _load_model(cfg: SFTRunConfig, pairs: list[tuple[Any, Any]]) -> tuple[Any, Any]:
    from rlhf.training.causal_defaults import build_tiny_causal_lm, load_causal_lm

    if cfg.base_model != TINY:
        return load_causal_lm(cfg.base_model)
    texts = [format_prompt(p) for p, _ in pairs] + [format_completion(c, p) for p, c in pairs]
    if cfg.tokenizer_texts_file:
        for row in read_rows(cfg.tokenizer_texts_file):
            texts += [format_prompt(row.get("prompt"))] + [
                format_completion(row[k], row.get("prompt")) for k in ("completion", "chosen", "rejected") if k in row
            ]
    return build_tiny_causal_lm(
        texts, cfg.tiny_vocab_size, cfg.tiny_layers, cfg.tiny_width, cfg.tiny_heads, max(cfg.max_length, 512), cfg.seed
    )


def _trainer_args(cfg: SFTRunConfig, out: Path, has_eval: bool) -> Any:
    from trl import SFTConfig

    from rlhf.training.causal_defaults import stage_training_args

    return stage_training_args(
        SFTConfig,
        cfg,
        out,
        lr_scheduler_type="linear",
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio of the total steps
        max_length=cfg.max_length,
        completion_only_loss=cfg.completion_only_loss,
        eval_strategy="epoch" if has_eval else "no",
    )


def run_sft(cfg: SFTRunConfig, progress: ProgressCallback | None = None) -> Path:
    """Fine-tune, save (model, tokenizer, training_config.json, metrics.json); returns the output dir."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import set_seed
    from trl import SFTTrainer

    from rlhf.training.causal_defaults import count_parameters, train_and_save, write_stage_files

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    emit(progress, ProgressEvent(0, 0, message=f"loading {cfg.train_file}", stage="setup"))
    pairs = sft_rows(cfg.train_file)
    set_seed(cfg.seed)
    model, tokenizer = _load_model(cfg, pairs)
    items = encode_demonstrations(tokenizer, pairs, cfg.max_length, cfg.max_prompt_length)
    eval_items = (
        encode_demonstrations(tokenizer, sft_rows(cfg.eval_file), cfg.max_length, cfg.max_prompt_length)
        if cfg.eval_file
        else None
    )
    measured = (eval_items or items)[:256]
    loss_before = completion_loss(model, measured, tokenizer.pad_token_id)
    emit(progress, ProgressEvent(0, 0, {"sft/loss_before": loss_before}, f"{len(items)} demonstrations", "setup"))

    bridge = trainer_progress(progress, SFT_LOG_KEYS, "sft")
    peft_config = None
    if cfg.use_lora:
        peft_config = LoraConfig(
            task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules="all-linear"
        )
    trainer = SFTTrainer(
        model=model,
        args=_trainer_args(cfg, out, eval_items is not None),
        train_dataset=Dataset.from_list(items),
        eval_dataset=Dataset.from_list(eval_items) if eval_items else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[bridge],
    )
    model, steps, runtime_s = train_and_save(trainer, tokenizer, out, progress)
    loss_after = completion_loss(model, measured, tokenizer.pad_token_id)
    metrics = {
        "sft/demonstrations": len(items),
        "sft/loss_before": loss_before,
        "sft/loss_after": loss_after,
        "sft/steps": steps,
        "sft/runtime_s": runtime_s,
        "sft/parameters": count_parameters(model),
    }
    write_stage_files(out, cfg, "sft", metrics, bridge.history)
    message = f"done: loss {loss_before:.3f} -> {loss_after:.3f} on {'eval' if eval_items else 'train'}; saved to {out}"
    emit(progress, ProgressEvent(steps, steps, {k: float(v) for k, v in metrics.items()}, message, "done"))
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m rlhf.training.sft --config run.yaml` (rlhf/training/cli.py; --help lists every field)."""
    from rlhf.training.cli import stage_main

    stage_main("sft", argv)


if __name__ == "__main__":
    main()
