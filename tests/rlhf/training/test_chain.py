import json
from pathlib import Path

import pytest

from rlhf.training.chain import run_default_chain
from rlhf.training.generation import generate_responses, split_held_out
from rlhf.training.ppo_config import ChainConfig
from rlhf.training.progress import ProgressEvent
from tests.rlhf.training.causal_models import (
    demo_rows,
    one_thread,
    save_tiny_policy_and_reward_model,
    sft_rows,
    write_jsonl,
)


@pytest.mark.slow
def test_default_chain_runs_sft_reward_model_and_ppo_end_to_end_on_one_tokenizer(tmp_path: Path):
    from transformers import AutoTokenizer

    rows = demo_rows(16)
    cfg = ChainConfig(
        sft_file=str(write_jsonl(tmp_path / "best.jsonl", sft_rows(rows))),
        pairs_file=str(write_jsonl(tmp_path / "pairs.jsonl", rows)),
        output_dir=str(tmp_path / "chain"),
        base_model="tiny",
        vocab_size=400,
        n_layer=1,
        n_embd=32,
        n_head=2,
        max_length=128,
        sft_max_steps=4,
        rm_max_steps=4,
        ppo_total_episodes=16,
        ppo_batch_size=8,
        ppo_response_length=8,
        ppo_num_eval_prompts=2,
    )
    events: list[ProgressEvent] = []
    with one_thread():
        dirs = run_default_chain(cfg, progress=events.append)

    assert set(dirs) == {"base", "sft", "reward", "ppo"}
    for path in dirs.values():
        assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()
    vocab = AutoTokenizer.from_pretrained(str(dirs["base"])).get_vocab()
    assert all(AutoTokenizer.from_pretrained(str(dirs[s])).get_vocab() == vocab for s in ("sft", "reward", "ppo"))
    assert json.loads((dirs["reward"] / "config.json").read_text())["architectures"] == [
        "GPT2ForSequenceClassification"
    ]
    ppo = json.loads((dirs["ppo"] / "metrics.json").read_text())
    assert ppo["ppo/steps"] == 2 and "ppo/kl" in ppo
    stages = [e.metrics.get("chain/stage") for e in events if "chain/stage" in e.metrics]
    assert stages == sorted(stages) and {2.0, 3.0, 4.0} <= set(stages)  # sft, reward, ppo, in that order
    assert [e.stage for e in events].count("done") == 1 and events[-1].stage == "done"
    summary = json.loads((tmp_path / "chain" / "chain.json").read_text())
    assert summary["stages"]["sft"]["sft/steps"] == 4
    notes = [e.message for e in events if e.message.startswith("NOTE: 16 preference pairs from")]
    assert len(notes) == 1 and "too few" in notes[0]  # 16 pairs: the log says it is a smoke run


def test_small_data_note_only_below_a_thousand_pairs(tmp_path: Path):
    from rlhf.training.chain import small_data_note

    rows = demo_rows(4)
    assert small_data_note(str(write_jsonl(tmp_path / "few.jsonl", rows))).startswith("NOTE: 4 preference pairs from")
    many = [dict(row, chosen=f"{row['chosen']} {i}") for i in range(250) for row in rows]
    assert small_data_note(str(write_jsonl(tmp_path / "many.jsonl", many))) is None


@pytest.mark.slow
def test_generate_responses_returns_k_strings_for_text_and_chat_prompts(tmp_path: Path):
    policy, _ = save_tiny_policy_and_reward_model(tmp_path, demo_rows(8))
    prompts = ["Tell me about tea.", [{"role": "user", "content": "And bikes?"}], "Taxes?"]

    with one_thread():
        first = generate_responses(policy, prompts, k=3, max_new_tokens=6, seed=1)
        again = generate_responses(policy, prompts, k=3, max_new_tokens=6, seed=1)

    assert len(first) == 3 and all(len(group) == 3 for group in first)
    assert all(isinstance(text, str) for group in first for text in group)
    assert first == again  # same seed, same samples
    assert "<|pad|>" not in "".join(t for g in first for t in g)


def test_split_held_out_is_stable_and_keeps_a_training_prompt():
    prompts = [f"prompt {i}" for i in range(10)]

    train, held = split_held_out(prompts, 3)
    assert len(held) == 3 and len(train) == 7 and not set(train) & set(held)
    assert split_held_out(list(reversed(prompts)), 3)[1] == list(reversed(held))
    assert split_held_out(["only"], 5) == (["only"], [])


def test_chain_settings_left_unset_take_the_base_models_preset():
    smol, tiny = ChainConfig(), ChainConfig(base_model="tiny")

    assert smol.base_model == "default" and smol.sft_use_lora is True and smol.rm_use_lora is True
    assert (smol.sft_learning_rate, smol.ppo_learning_rate, smol.sft_max_steps) == (2e-4, 1e-5, 10)
    assert (tiny.sft_learning_rate, tiny.ppo_learning_rate, tiny.sft_use_lora, tiny.sft_max_steps) == (
        2e-3,
        3e-4,
        False,
        -1,
    )
    assert ChainConfig(sft_learning_rate=1e-4, sft_use_lora=False).sft_learning_rate == 1e-4
    assert ChainConfig.from_dict(smol.to_dict()) == smol  # a stored run config reloads as it was resolved


def test_default_chain_starts_from_the_prepared_smollm2_without_building_a_base(tmp_path, monkeypatch):
    from rlhf.training import chain, models, ppo, reward_model, sft

    seen = {}
    monkeypatch.setattr(models, "prepare_smollm2", lambda **kw: tmp_path / "smol")
    monkeypatch.setattr(chain, "build_base", lambda *a: pytest.fail("SmolLM2 needs no base/"))
    monkeypatch.setattr(sft, "run_sft", lambda cfg, progress=None: seen.setdefault("sft", cfg))
    monkeypatch.setattr(reward_model, "train_reward_model", lambda cfg, progress=None: seen.setdefault("rm", cfg))
    monkeypatch.setattr(ppo, "run_ppo", lambda cfg, progress=None: seen.setdefault("ppo", cfg))
    rows = demo_rows(4)
    cfg = ChainConfig(
        sft_file=str(write_jsonl(tmp_path / "best.jsonl", sft_rows(rows))),
        pairs_file=str(write_jsonl(tmp_path / "pairs.jsonl", rows)),
        output_dir=str(tmp_path / "chain"),
    )

    dirs = run_default_chain(cfg)

    assert dirs["base"] == tmp_path / "smol" and not (tmp_path / "chain" / "base").exists()
    assert seen["sft"].base_model == str(tmp_path / "smol") and seen["sft"].use_lora is True
    assert seen["rm"].base_model == str(dirs["sft"]) and seen["rm"].use_lora is True
    assert seen["ppo"].policy == str(dirs["sft"]) and seen["ppo"].reward_model == str(dirs["reward"])
