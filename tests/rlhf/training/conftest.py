import json
import random
from pathlib import Path

import pytest

TOPICS = ["tea", "bikes", "taxes", "gardens", "python", "music", "rivers", "bread", "chess", "trains"]


def pair_rows(n: int, seed: int = 0, long_every: int = 0) -> list[dict]:
    """Synthetic preference pairs: the chosen answer is helpful and specific, the rejected one is curt."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        topic = rng.choice(TOPICS)
        prompt = f"\n\nHuman: Can you tell me something useful about {topic}?\n\nAssistant:"
        chosen = f" Sure! Here is a clear and helpful explanation about {topic}, with a concrete example number {i}."
        rejected = f" No. I do not want to talk about {topic}."
        if long_every and i % long_every == 0:
            prompt = " ".join(f"context sentence {k} about {topic}." for k in range(60)) + prompt
            chosen += " More detail follows." * 30
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "category": ["qa", "chat"][i % 2]})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", pair_rows(24, seed=1))


@pytest.fixture
def eval_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "test.jsonl", pair_rows(10, seed=2))


@pytest.fixture
def tiny_tokenizer():
    from rlhf.training.data import training_texts
    from rlhf.training.defaults import build_tiny_tokenizer

    return build_tiny_tokenizer(training_texts(pair_rows(40, long_every=5)), vocab_size=600)


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """SmolLM2-135M-Instruct prepared once per test session into MODELS_DIR (default: models/ in the checkout): a
    minute or two the first time, then the manifest check returns at once. Tests that use it are marked slow."""
    from rlhf.training.models import prepare_smollm2

    return prepare_smollm2(progress=False)


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm2))
