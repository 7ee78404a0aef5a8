"""Tiny causal models and data for the SFT / PPO / DPO / GRPO / chain tests (CPU, offline, seconds)."""

import json
import random
from contextlib import contextmanager
from pathlib import Path

TOPICS = ["tea", "bikes", "taxes", "gardens", "python", "music", "rivers", "bread"]


def demo_rows(n: int = 16, seed: int = 0) -> list[dict]:
    """Prompts with a helpful (chosen) and a curt (rejected) answer; every other prompt is a chat."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        topic = rng.choice(TOPICS)
        text = f"Can you tell me something useful about {topic}? ({i})"
        prompt = [{"role": "user", "content": text}] if i % 2 else text
        chosen = f"Sure! Here is a clear explanation about {topic}, with an example."
        rejected = f"No. I do not want to talk about {topic}."
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def sft_rows(rows: list[dict]) -> list[dict]:
    return [{"prompt": row["prompt"], "completion": row["chosen"]} for row in rows]


def all_texts(rows: list[dict]) -> list[str]:
    from rlhf.training.data import format_completion, format_prompt

    return [format_prompt(r["prompt"]) for r in rows] + [
        format_completion(r[k], r["prompt"]) for r in rows for k in ("chosen", "rejected")
    ]


def save_tiny_policy_and_reward_model(root: Path, rows: list[dict], seed: int = 0) -> tuple[Path, Path]:
    """A random tiny GPT-2 policy and a random GPT-2 reward model sharing one BPE tokenizer, saved under root."""
    import torch
    from transformers import GPT2ForSequenceClassification

    from rlhf.training.causal_defaults import build_tiny_causal_lm, tiny_gpt2_config

    policy, tokenizer = build_tiny_causal_lm(all_texts(rows), vocab_size=400, n_layer=1, n_embd=32, n_head=2, seed=seed)
    torch.manual_seed(seed + 1)
    reward = GPT2ForSequenceClassification(tiny_gpt2_config(tokenizer, n_layer=1, n_embd=32, n_head=2))
    policy_dir, reward_dir = root / "policy", root / "reward"
    for model, path in ((policy, policy_dir), (reward, reward_dir)):
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return policy_dir, reward_dir


def save_tiny_bert_reward_model(root: Path, rows: list[dict]) -> Path:
    """A random tiny BERT reward model on its own WordPiece tokenizer (H1's 'tiny' default)."""
    from rlhf.training.defaults import build_tiny_model, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(all_texts(rows), vocab_size=300)
    model = build_tiny_model(len(tokenizer), tokenizer.pad_token_id)
    path = root / "bert_reward"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def state(path_or_model) -> dict:
    """A detached copy of the weights of a model (or of the causal LM saved at a path)."""
    from transformers import AutoModelForCausalLM

    model = (
        AutoModelForCausalLM.from_pretrained(str(path_or_model)) if isinstance(path_or_model, Path) else path_or_model
    )
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed(before: dict, after: dict) -> list[str]:
    import torch

    return [k for k in before if k in after and not torch.equal(before[k], after[k])]


@contextmanager
def one_thread():
    """On a busy shared CPU, two OpenMP threads spin against each other: tiny models train ~10x faster on one."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
