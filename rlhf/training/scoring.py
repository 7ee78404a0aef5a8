"""Score (prompt, response) texts with a trained reward model, batched. Plain Python, no Django.

Texts are formatted and truncated exactly as in training (`data.encode_sequences`): chat prompts go through the same
rendering, long prompts keep their end, long responses their start, and every sequence ends with the EOS token.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlhf.training.data import encode_sequences


def load_reward_model(model_dir: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) saved by train_reward_model, in eval mode on the best available device."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rlhf.training.defaults import ensure_eos_token

    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a trained reward model (no config.json).")
    tokenizer = ensure_eos_token(AutoTokenizer.from_pretrained(str(path)))
    model = AutoModelForSequenceClassification.from_pretrained(str(path))
    model.to(_device()).eval()
    return model, tokenizer


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def score_sequences(
    model: Any,
    sequences: list[list[int]],
    pad_token_id: int,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> list[float]:
    """One reward per token-id sequence. Batches group similar lengths (less padding); results keep input order.
    `progress(n)`, when given, is called after each batch with the number of sequences it scored."""
    import torch

    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    scores = [0.0] * len(sequences)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [sequences[i] for i in order[start : start + batch_size]]
            ids, mask = right_padded(batch, pad_token_id)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            for i, value in zip(order[start : start + batch_size], logits[:, 0].float().tolist(), strict=True):
                scores[i] = value
            if progress is not None:
                progress(len(batch))
    model.train(was_training)
    return scores


def right_padded(batch: list[list[int]], pad_token_id: int) -> tuple[Any, Any]:
    """(input_ids, attention_mask) tensors for token-id sequences, padded on the right with `pad_token_id`."""
    import torch

    width = max(len(seq) for seq in batch)
    ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, seq in enumerate(batch):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def score_texts(
    model_dir: str | Path,
    prompts: list[str | list[dict]],
    responses: list[str],
    batch_size: int = 16,
    max_length: int = 512,
) -> list[float]:
    """The reward model's score for each (prompt, response); higher = better."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses: give one prompt per response.")
    if not prompts:
        return []
    model, tokenizer = load_reward_model(model_dir)
    limit = getattr(model.config, "max_position_embeddings", None) or max_length
    sequences, _ = encode_sequences(tokenizer, list(prompts), list(responses), min(max_length, limit))
    return score_sequences(model, sequences, tokenizer.pad_token_id, batch_size=batch_size)
