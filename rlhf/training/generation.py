"""Prompts in, sampled responses out: reading prompt files, encoding prompts for a causal LM, and sampling.

    generate_responses("runs/ppo", ["Why is the sky blue?"], k=4)  ->  [["...", "...", "...", "..."]]

Many chunks of prompts from one model: `pair = load_for_generation("runs/ppo")` once, then
`generate_responses(pair, chunk, seed=...)` per chunk.

Prompts (HH text, plain text or chat messages) are rendered as in training (`chat.render_chat`): through the
tokenizer's chat template when it has one (SmolLM2's ChatML), else as HH-style text. Responses are sampled (nucleus
sampling with a repetition penalty: greedy decoding of a small model loops), stop at the end of turn (the EOS, e.g.
`<|im_end|>`) and come back as plain text, without the template's markers. Plain Python, no Django: the caller turns
the texts into a new labeling round.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

from rlhf.training.data import DataError, format_prompt, read_rows


def prompt_key(prompt: Any) -> str:
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def unique_prompts(rows: list[dict[str, Any]]) -> list[Any]:
    """The distinct `prompt` values of the rows (text or chat messages), in first-seen order."""
    seen: dict[str, Any] = {}
    for number, row in enumerate(rows, start=1):
        if "prompt" not in row or row["prompt"] in (None, "", []):
            raise DataError(f"row {number}: no `prompt`.")
        seen.setdefault(prompt_key(row["prompt"]), row["prompt"])
    return list(seen.values())


def read_prompts(path: str | Path) -> list[Any]:
    return unique_prompts(read_rows(path))


def split_held_out(prompts: list[Any], n_held_out: int) -> tuple[list[Any], list[Any]]:
    """(train, held out): a stable choice by hash of the prompt, so reruns hold out the same prompts. At least one
    prompt always stays for training."""
    n = max(0, min(n_held_out, len(prompts) - 1))
    ranked = sorted(range(len(prompts)), key=lambda i: hashlib.sha256(prompt_key(prompts[i]).encode()).hexdigest())
    held = set(ranked[:n])
    return [p for i, p in enumerate(prompts) if i not in held], [p for i, p in enumerate(prompts) if i in held]


def encode_prompts(tokenizer: Any, prompts: list[Any], max_prompt_length: int) -> list[list[int]]:
    """Token ids of each formatted prompt; a long prompt keeps its last `max_prompt_length` tokens."""
    texts = [format_prompt(p, tokenizer) for p in prompts]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [seq[-max_prompt_length:] if len(seq) > max_prompt_length else seq for seq in ids]


TOP_P = 0.9
REPETITION_PENALTY = 1.1


def stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """The token ids that end a response: the tokenizer's EOS first, then any other end of turn the model's
    generation config names."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    extra = configured if isinstance(configured, list) else [configured]
    ids = [tokenizer.eos_token_id, *extra]
    return [i for n, i in enumerate(ids) if i is not None and i not in ids[:n]]


def sample_ids(
    model: Any,
    tokenizer: Any,
    prompt_ids: list[list[int]],
    max_new_tokens: int = 64,
    temperature: float = 0.7,
    top_p: float = TOP_P,
    batch_size: int = 16,
    repetition_penalty: float = REPETITION_PENALTY,
) -> list[list[int]]:
    """One sampled response per prompt: its token ids up to and including the first end of turn (none when cut
    off). temperature 0 = greedy."""
    import torch

    device = next(model.parameters()).device
    pad, stops = tokenizer.pad_token_id, stop_ids(model, tokenizer)
    responses: list[list[int]] = []
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(prompt_ids), batch_size):
            batch = prompt_ids[start : start + batch_size]
            width = max(len(s) for s in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, seq in enumerate(batch):  # left padding: every prompt ends where generation starts
                ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
                mask[row, width - len(seq) :] = 1
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=temperature > 0,
                temperature=max(temperature, 1e-5),
                top_p=top_p,
                top_k=0,
                repetition_penalty=repetition_penalty,
                pad_token_id=pad,
                eos_token_id=stops,
            )
            for seq in out[:, width:].tolist():
                responses.append(cut_at_eos(seq, stops, pad))
    model.train(was_training)
    return responses


def cut_at_eos(seq: list[int], eos: int | list[int], pad: int) -> list[int]:
    """The response up to and including its first stop token; without one, the tokens that are not padding."""
    stops = eos if isinstance(eos, list) else [eos]
    for i, token in enumerate(seq):
        if token in stops:
            return seq[: i + 1]
    return [t for t in seq if t != pad]


def decode_response(tokenizer: Any, ids: list[int]) -> str:
    """Plain text: special tokens (the template's turn markers, the EOS) dropped, surrounding whitespace stripped."""
    return tokenizer.decode(ids, skip_special_tokens=True).strip()


def load_for_generation(model_dir: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) of a causal LM (id, path or run dir), on the GPU when there is one: load it once and pass
    the pair to `generate_responses` for every chunk of prompts."""
    from rlhf.training.causal_defaults import load_causal_lm

    model, tokenizer = load_causal_lm(str(model_dir))
    model.to(_device())
    return model, tokenizer


def generate_responses(
    model: str | Path | tuple[Any, Any],
    prompts: list[Any],
    k: int = 4,
    max_new_tokens: int = 128,
    temperature: float = 0.7,
    top_p: float = TOP_P,
    seed: int = 0,
    max_prompt_length: int = 512,
    batch_size: int = 16,
    repetition_penalty: float = REPETITION_PENALTY,
) -> list[list[str]]:
    """`k` sampled responses for each prompt (text or chat messages) from a causal LM: 'default' (SmolLM2), an id,
    path or run dir (loaded for this call), or a (model, tokenizer) pair from `load_for_generation`. The seed is set
    after loading, so both give the same samples for the same seed."""
    from transformers import set_seed

    if k < 1:
        raise ValueError("k must be at least 1.")
    if not prompts:
        return []
    model, tokenizer = model if isinstance(model, tuple) else load_for_generation(model)
    set_seed(seed)
    limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    if limit:
        max_prompt_length = max(1, min(max_prompt_length, limit - max_new_tokens))
    encoded = encode_prompts(tokenizer, prompts, max_prompt_length)
    repeated = [ids for ids in encoded for _ in range(k)]
    sampled = sample_ids(model, tokenizer, repeated, max_new_tokens, temperature, top_p, batch_size, repetition_penalty)
    texts = [decode_response(tokenizer, ids) for ids in sampled]
    return [texts[i * k : (i + 1) * k] for i in range(len(prompts))]


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
