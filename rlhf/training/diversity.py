"""What RL costs, measured on a policy's samples: diversity, length, fluency. Plain Python, no Django.

RL fine-tuning is known to narrow a model's outputs (Kirk et al. 2024, "Understanding the Effects of RLHF on LLM
Generalisation and Diversity") and to win reward by rambling when the reward model likes length (Singhal et al. 2023,
"A Long Way to Go"). These figures compare the same held-out prompts' samples before (the reference) and after:

- distinct-1 / distinct-2 (Li et al. 2016): distinct word uni-/bigrams over all samples / all uni-/bigrams, on
  lower-cased whitespace words;
- self-similarity: for each prompt, the mean cosine similarity of its samples' sentence embeddings (the bundled
  MiniLM-L6 through `boundary.embed`, the reward-model boundary's encoder), averaged over prompts (1 = the same answer
  every time);
- mean length in tokens of the policy's tokenizer;
- perplexity of the samples under the reference model: exp of the mean negative log-likelihood per response token,
  so the reference's own samples set the scale (a ratio near 1 = the policy still writes text the reference finds
  likely).
"""

from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

Embed = Callable[[Sequence[str]], Any]  # texts -> L2-normalised vectors: rlhf.training.boundary.embed (MiniLM-L6)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all texts / all n-grams (0.0 when there are none)."""
    grams: list[tuple[str, ...]] = []
    for text in texts:
        words = text.lower().split()
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_similarity(groups: Sequence[Sequence[str]], embed: Embed) -> float | None:
    """Mean over prompts (with at least 2 samples) of the mean pairwise cosine similarity of their samples."""
    import numpy as np

    groups = [list(g) for g in groups if len(g) >= 2]
    if not groups:
        return None
    vectors = embed([text for group in groups for text in group])
    means, at = [], 0
    for group in groups:
        block = vectors[at : at + len(group)]
        at += len(group)
        means.append(float(np.mean([block[i] @ block[j] for i, j in combinations(range(len(group)), 2)])))
    return float(np.mean(means))


def perplexity(model: Any, pad: int, prompt_ids: Sequence[list[int]], response_ids: Sequence[list[int]]) -> float:
    """exp(mean negative log-likelihood per response token) of the responses given their prompts under `model`
    (responses with no tokens are skipped)."""
    import math

    import torch

    total_nll, total_tokens = 0.0, 0
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    pairs = [(q, r) for q, r in zip(prompt_ids, response_ids, strict=True) if r]
    with torch.inference_mode():
        for start in range(0, len(pairs), 8):
            batch = pairs[start : start + 8]
            width = max(len(q) + len(r) for q, r in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            target = torch.full_like(ids, -100)
            for row, (q, r) in enumerate(batch):  # right padding; the loss only on the response's tokens
                seq = q + r
                ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
                target[row, len(q) : len(seq)] = torch.tensor(r)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1].float()
            labels = target[:, 1:].to(device)
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="sum")
            total_nll += float(nll)
            total_tokens += int((labels != -100).sum())
    model.train(was_training)
    return math.exp(total_nll / total_tokens) if total_tokens else float("nan")


def sample_set_metrics(
    texts: Sequence[str],
    lengths: Sequence[int],
    per_prompt: int,
    embed: Embed | None,
) -> dict[str, float | None]:
    """distinct-1/2, self-similarity (samples grouped `per_prompt` in order) and mean length of one set of samples."""
    import numpy as np

    groups = [texts[i : i + per_prompt] for i in range(0, len(texts), per_prompt)]
    return {
        "distinct1": distinct_n(texts, 1),
        "distinct2": distinct_n(texts, 2),
        "self_similarity": self_similarity(groups, embed) if embed is not None else None,
        "length": float(np.mean(lengths)) if len(lengths) else 0.0,
        "length_std": float(np.std(lengths)) if len(lengths) else 0.0,
    }


def cost_warnings(
    before: dict[str, float | None], after: dict[str, float | None], *, drop: float, length_sd: float
) -> list[str]:
    """The run page's warnings when RL narrowed the outputs or made them longer (thresholds from the config)."""
    warnings = []
    d0, d1 = before.get("distinct2"), after.get("distinct2")
    if d0 and d1 is not None and d1 < (1.0 - drop) * d0:
        warnings.append(
            f"Diversity fell: distinct-2 of the held-out samples went from {d0:.3f} to {d1:.3f} (more than "
            f"{drop:.0%} lower); RL is known to narrow a policy's outputs: read the samples."
        )
    s0, s1 = before.get("self_similarity"), after.get("self_similarity")
    if s0 is not None and s1 is not None and s1 > s0 + drop:
        warnings.append(
            f"Samples for the same prompt became more alike: self-similarity {s0:.3f} -> {s1:.3f} (more than "
            f"+{drop:g})."
        )
    l0, l1, sd = before.get("length"), after.get("length"), before.get("length_std")
    if l0 is not None and l1 is not None and l1 - l0 > length_sd * max(sd or 0.0, 1.0):
        warnings.append(
            f"Responses got longer: {l0:.1f} -> {l1:.1f} tokens on average (more than {length_sd:g} standard "
            "deviation of the reference's lengths); a reward model that likes length is easy to please by rambling."
        )
    return warnings
