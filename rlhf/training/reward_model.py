"""Reward-model training: TRL's RewardTrainer on a one-output sequence classifier. Plain Python, no Django.

    python -m rlhf.training.reward_model --config configs/reward_model.example.yaml
    python -m rlhf.training.reward_model --train_file pairs.jsonl --base_model tiny --output_dir /tmp/rm

The pairs are tokenized and truncated here (see data.py: TRL would drop every pair longer than max_length), handed
to RewardTrainer pre-tokenized, and the trained model is saved as a plain `AutoModelForSequenceClassification`
(LoRA merged) with its tokenizer, `training_config.json` (the resolved config) and `metrics.json`.
"""

import json
import logging
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rlhf.training.config import RewardModelConfig
from rlhf.training.data import encode_pairs, read_pairs, training_texts, without_ties
from rlhf.training.defaults import TINY_MODEL, load_base_model, resolved_base_model
from rlhf.training.progress import ProgressCallback, ProgressEvent, emit

logger = logging.getLogger(__name__)

# Trainer log keys -> our slash names (eval keys arrive prefixed with "eval_").
LOG_KEYS = {
    "loss": "train/loss",
    "accuracy": "train/accuracy",
    "margin": "train/margin",
    "mean_reward": "train/reward_mean",
    "learning_rate": "train/learning_rate",
    "grad_norm": "train/grad_norm",
    "epoch": "train/epoch",
    "eval_loss": "eval/loss",
    "eval_accuracy": "eval/accuracy",
    "eval_margin": "eval/margin",
    "eval_mean_reward": "eval/reward_mean",
    "train_loss": "train/mean_loss",
    "train_runtime": "train/runtime_s",
    "train_samples_per_second": "train/samples_per_s",
}
PROGRESS_EVERY_S = 2.0  # between logging steps, report progress (and check for cancellation) this often


def _progress_callback_class() -> type:
    from transformers import TrainerCallback

    class ProgressBridge(TrainerCallback):
        """Turns trainer logs into ProgressEvents; a TrainingCancelled raised by `progress` stops training."""

        def __init__(self, progress: ProgressCallback | None) -> None:
            self.progress = progress
            self.started = self.last_emit = time.monotonic()

        def _timing(self, state: Any) -> dict[str, float]:
            elapsed = time.monotonic() - self.started
            done, total = state.global_step, state.max_steps or 0
            timing = {"train/elapsed_s": round(elapsed, 2)}
            if done and total:  # no ETA before the first step (JSON and databases dislike NaN)
                timing["train/eta_s"] = round(elapsed / done * (total - done), 2)
            return timing

        def _emit(self, state: Any, metrics: dict[str, float], message: str, stage: str = "train") -> None:
            self.last_emit = time.monotonic()
            event = ProgressEvent(
                state.global_step, state.max_steps, {**metrics, **self._timing(state)}, message, stage
            )
            emit(self.progress, event)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.monotonic()
            self._emit(state, {}, f"training: {state.max_steps} steps")

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if time.monotonic() - self.last_emit >= PROGRESS_EVERY_S:
                self._emit(state, {}, "")

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            metrics = {LOG_KEYS[k]: float(v) for k, v in (logs or {}).items() if k in LOG_KEYS and v is not None}
            if not metrics:
                return
            shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != "train/epoch")
            stage = "eval" if any(k.startswith("eval/") for k in metrics) else "train"
            self._emit(state, metrics, f"step {state.global_step}/{state.max_steps} {shown}", stage)

    return ProgressBridge


def resolve_bf16(setting: str) -> bool:
    """bf16 only where the hardware supports it: a CUDA GPU with bf16; never on CPU."""
    import torch

    supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if setting == "true" and not supported:
        raise ValueError("bf16=true but this machine has no GPU with bf16 support; use bf16=auto.")
    return supported if setting == "auto" else setting == "true"


def build_trainer_args(cfg: RewardModelConfig, out: Path, has_eval: bool) -> Any:
    from trl import RewardConfig

    periodic_eval = has_eval and bool(cfg.eval_steps)
    return RewardConfig(
        output_dir=str(out),
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        center_rewards_coefficient=cfg.center_rewards_coefficient,
        max_length=cfg.max_length,  # every pair is already cut to this, so TRL's length filter drops nothing
        seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        eval_strategy="steps" if periodic_eval else "no",
        eval_steps=cfg.eval_steps if periodic_eval else None,
        save_strategy="no",
        report_to=[] if cfg.report_to == "none" else [cfg.report_to],
        bf16=resolve_bf16(cfg.bf16),
        gradient_checkpointing=cfg.gradient_checkpointing,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        disable_tqdm=True,
        # No GPU: the CPU, also under `accelerate launch` with several processes (gloo, one process per rank).
        use_cpu=not _cuda(),
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def lora_config(cfg: RewardModelConfig, model: Any) -> Any:
    from peft import LoraConfig, TaskType

    heads = ("classifier", "score", "pooler")
    head = [n for n in heads if getattr(model, n, None) is not None or getattr(model.base_model, n, None) is not None]
    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=_lora_targets(model, cfg.freeze_layers),
        modules_to_save=head,  # the new reward head (and BERT's pooler) are trained in full
    )


def _lora_targets(model: Any, first_layer: int) -> str | list[str]:
    """Every linear layer of the transformer ("all-linear"), or with freeze_layers only those above the frozen
    layers (full module names), so that no gradient flows through the frozen ones."""
    import torch

    layers = _layer_list(model.base_model)
    if not first_layer or layers is None:
        return "all-linear"
    inside = {id(m) for layer in layers[first_layer:] for m in layer.modules() if isinstance(m, torch.nn.Linear)}
    return [name for name, module in model.named_modules() if id(module) in inside]


def freeze_lower_layers(model: Any, n_layers: int) -> int:
    """Freeze the embeddings and the first `n_layers` encoder/decoder layers; returns the trainable parameter count."""
    from transformers import PreTrainedModel

    if n_layers > 0:
        base = model.base_model if isinstance(model, PreTrainedModel) else model
        layers = _layer_list(base)
        if layers is None:
            raise ValueError(f"freeze_layers: cannot find the transformer layers of {type(model).__name__}.")
        base.get_input_embeddings().requires_grad_(False)
        for module in (getattr(base, "embeddings", None), *layers[:n_layers]):
            if module is not None:
                module.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _layer_list(base: Any) -> Any:
    for path in ("encoder.layer", "layers", "h", "transformer.layer", "decoder.layers"):
        obj = base
        for name in path.split("."):
            obj = getattr(obj, name, None)
        if obj is not None:
            return obj
    return None


def _datasets(cfg: RewardModelConfig, tokenizer: Any, rows: list[dict], eval_rows: list[dict] | None) -> tuple:
    from datasets import Dataset

    from rlhf.training.odin import add_lengths

    items, stats = encode_pairs(rows, tokenizer, cfg.max_length, use_margin=cfg.use_margin)
    eval_ds = None
    if eval_rows:
        eval_items, _ = encode_pairs(eval_rows, tokenizer, cfg.max_length, use_margin=cfg.use_margin)
        eval_ds = Dataset.from_list(add_lengths(eval_items, eval_rows) if _odin(cfg) else eval_items)
    if _odin(cfg):
        items = add_lengths(items, rows)
    return Dataset.from_list(items), eval_ds, stats


def _odin(cfg: RewardModelConfig) -> bool:
    """Fine-tuning with ODIN's length head (length_debias 'residual' or 'both'; odin.py)."""
    return cfg.method == "finetune" and cfg.length_debias in ("residual", "both")


def _load_model(cfg: RewardModelConfig, rows: list[dict]) -> tuple:
    texts = training_texts(rows) if cfg.base_model == TINY_MODEL else ()
    model, tokenizer = load_base_model(cfg.base_model, texts, vocab_size=cfg.tiny_vocab_size, max_length=cfg.max_length)
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and cfg.max_length > limit:
        raise ValueError(f"max_length={cfg.max_length} exceeds the model's {limit} positions; lower max_length.")
    return model, tokenizer


def train_reward_model(cfg: RewardModelConfig, progress: ProgressCallback | None = None) -> Path:
    """Train, save (model, tokenizer, training_config.json, metrics.json) and evaluate; returns the output dir.

    Calls `progress` at setup, during training (every logging step and every few seconds) and when done; a
    TrainingCancelled raised from it propagates and nothing further is saved."""
    from transformers import set_seed

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    emit(progress, ProgressEvent(0, 0, message=f"loading {cfg.train_file}", stage="setup"))
    rows, ties = without_ties(read_pairs(cfg.train_file))
    eval_rows = without_ties(read_pairs(cfg.eval_file))[0] if cfg.eval_file else None
    set_seed(cfg.seed)
    model, tokenizer = _load_model(cfg, rows)
    if cfg.method == "frozen-head":
        if int(os.environ.get("RANK", "0") or 0) != 0:  # under accelerate launch one process fits the head
            return out
        from rlhf.training.reward_head import train_head

        model, train_metrics = train_head(cfg, model, tokenizer, rows, progress)
        train_metrics["train/tie_pairs_skipped"] = ties
        args, history = None, []
    else:
        model, train_metrics, args, history = _finetune(cfg, model, tokenizer, rows, eval_rows, ties, out, progress)
        if args.process_index != 0:  # several processes (accelerate launch): the main one saves and evaluates
            return out

    if cfg.length_debias == "decorrelate":
        from rlhf.training.reward_head import decorrelate_head

        train_metrics.update(decorrelate_head(model, tokenizer, rows, cfg, progress))
    steps = int(train_metrics.get("train/steps", 1))
    emit(progress, ProgressEvent(steps, steps, message=f"saving to {out}", stage="save"))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "training_config.json").write_text(json.dumps(_resolved_config(cfg, args, model), indent=2))

    metrics = dict(train_metrics)
    if eval_rows:
        from rlhf.training.evaluate import evaluate_pairs

        emit(progress, ProgressEvent(steps, steps, message=f"evaluating {len(eval_rows)} pairs", stage="eval"))
        started = time.monotonic()
        metrics.update(
            evaluate_pairs(
                model,
                tokenizer,
                eval_rows,
                cfg.max_length,
                batch_size=cfg.per_device_eval_batch_size,
                human_agreement=cfg.human_agreement,
            )
        )
        metrics["eval/runtime_s"] = round(time.monotonic() - started, 2)
    elif cfg.human_agreement is not None:
        metrics["eval/human_agreement"] = cfg.human_agreement
    if cfg.boundary_index and os.environ.get("RLHF_BOUNDARY_INDEX", "1").strip().lower() not in ("0", "false"):
        metrics.update(boundary_index_build(out, rows, eval_rows, progress, steps))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "log_history.json").write_text(json.dumps(history, indent=2))
    emit(progress, ProgressEvent(steps, steps, _scalars(metrics), _summary(metrics, out), stage="done"))
    return out


def boundary_index_build(
    out: Path, rows: list[dict], eval_rows: list[dict] | None, progress: ProgressCallback | None, steps: int
) -> dict[str, Any]:
    """The reward model's boundary index (boundary.py) from its training and held-out prompts; its figures as
    metrics. A failure (say, the MiniLM package missing) is logged and recorded, never fails the trained model."""
    from rlhf.training.boundary import build_index
    from rlhf.training.data import row_meta

    emit(progress, ProgressEvent(steps, steps, message="indexing the training prompts (boundary)", stage="eval"))
    heldout = eval_rows or []
    try:
        info = build_index(
            out, [r["prompt"] for r in rows], [r["prompt"] for r in heldout], [row_meta(r, "category") for r in heldout]
        )
    except Exception as exc:  # noqa: BLE001 - the model is trained and saved; the index is an extra
        logger.warning("boundary index not built: %s", exc)
        return {"boundary/error": f"{type(exc).__name__}: {exc}"}
    return {
        "boundary/threshold": info["threshold"],
        "boundary/train_prompts": info["train_prompts"],
        "boundary/calibration_prompts": info["calibration_prompts"],
        "boundary/build_s": info["build_s"],
    }


def _finetune(
    cfg: RewardModelConfig,
    model: Any,
    tokenizer: Any,
    rows: list[dict],
    eval_rows: list[dict] | None,
    ties: int,
    out: Path,
    progress: ProgressCallback | None,
) -> tuple[Any, dict[str, Any], Any, list[dict]]:
    """TRL's RewardTrainer on the pre-tokenized pairs; returns (merged model, metrics, trainer args, log history)."""
    from transformers import PrinterCallback
    from trl import RewardTrainer

    from rlhf.training import odin

    distinct = len(rows)
    if cfg.length_debias in ("balanced", "both"):
        rows = length_balanced_rows(rows, cfg.seed)
    train_ds, eval_ds, stats = _datasets(cfg, tokenizer, rows, eval_rows)
    message = f"{stats.pairs} pairs, {stats.truncated_pairs} truncated to {cfg.max_length} tokens (none dropped)"
    message += f", {ties} tie rows set aside" if ties else ""
    setup_metrics = {**stats.as_metrics(), "train/tie_pairs_skipped": ties, "train/distinct_pairs": distinct}
    emit(progress, ProgressEvent(0, 0, setup_metrics, message, stage="setup"))

    if not cfg.use_lora:  # with LoRA, freeze_layers limits the adapters to the upper layers (lora_config)
        freeze_lower_layers(model, cfg.freeze_layers)
    args = build_trainer_args(cfg, out, has_eval=eval_ds is not None)
    extra: dict[str, Any] = {}
    trainer_class = RewardTrainer
    if _odin(cfg):  # ODIN: a second, length output during training (dropped before saving)
        odin.add_length_head(model, cfg.seed)
        trainer_class = odin.trainer_class()
        pad_multiple = args.pad_to_multiple_of
        extra = {
            "length_weight": cfg.odin_length_weight,
            "ortho_weight": cfg.odin_ortho_weight,
            "data_collator": odin.collator_class()(
                pad_token_id=tokenizer.pad_token_id, pad_to_multiple_of=pad_multiple
            ),
        }
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=lora_config(cfg, model) if cfg.use_lora else None,
        callbacks=[_progress_callback_class()(progress)],
        **extra,
    )
    trainer.remove_callback(PrinterCallback)  # our progress events are the log lines
    if len(trainer.train_dataset) != stats.pairs:  # guard: TRL must not have filtered anything
        raise RuntimeError(f"TRL kept {len(trainer.train_dataset)} of {stats.pairs} pairs after tokenization.")
    result = trainer.train()
    metrics = {
        **setup_metrics,
        "train/runtime_s": round(result.metrics["train_runtime"], 3),
        "train/samples_per_s": round(result.metrics["train_samples_per_second"], 3),
        "train/steps": trainer.state.global_step,
        "train/final_loss": _last_logged(trainer.state.log_history, "loss"),
        "train/mean_loss": result.metrics.get("train_loss"),
        "train/world_size": args.world_size,  # processes that trained (accelerate launch: each on 1/N of a batch)
    }
    model = _merged(trainer.model)
    if _odin(cfg):
        odin.drop_length_head(model)
        metrics["train/odin_length_term"] = _last_logged(trainer.state.log_history, "odin_length_term")
    return model, metrics, args, trainer.state.log_history


def length_balanced_rows(rows: list[dict], seed: int) -> list[dict]:
    """Oversample the smaller of the chosen-longer / chosen-shorter groups (seeded) so both are equally large:
    the finetune path's 'balanced' length debiasing (the trainer has no per-pair weights)."""
    import random

    from rlhf.training.evaluate import response_length

    longer = [r for r in rows if response_length(r["chosen"]) > response_length(r["rejected"])]
    shorter = [r for r in rows if response_length(r["chosen"]) < response_length(r["rejected"])]
    small, large = sorted((longer, shorter), key=len)
    if not small:
        return rows
    rng = random.Random(seed)
    extra = [rng.choice(small) for _ in range(len(large) - len(small))]
    return rows + extra


def _merged(model: Any) -> Any:
    """A plain transformers model: LoRA adapters merged into the base weights."""
    from accelerate.utils import is_peft_model

    return model.merge_and_unload() if is_peft_model(model) else model


def _last_logged(history: list[dict], key: str) -> float | None:
    values = [entry[key] for entry in history if key in entry]
    return values[-1] if values else None


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _summary(metrics: dict[str, Any], out: Path) -> str:
    acc = metrics.get("eval/accuracy")
    shown = f"eval/accuracy={acc:.4f} " if acc is not None else ""
    return f"done: {shown}train/runtime_s={metrics['train/runtime_s']:.1f}; saved to {out}"


def _resolved_config(cfg: RewardModelConfig, args: Any, model: Any) -> dict[str, Any]:
    import peft
    import torch
    import transformers
    import trl

    resolved = asdict(cfg)
    resolved["base_model_path"] = resolved_base_model(cfg.base_model)
    resolved.update(
        bf16_resolved=bool(args.bf16) if args is not None else False,
        device=str(next(model.parameters()).device),
        versions={
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl.__version__,
            "peft": peft.__version__,
            "python": platform.python_version(),
        },
    )
    return resolved


def main(argv: list[str] | None = None) -> None:
    """`python -m rlhf.training.reward_model --config run.yaml` (rlhf/training/cli.py; --help lists every field)."""
    from rlhf.training.cli import stage_main

    stage_main("reward_model", argv)


if __name__ == "__main__":
    main()
