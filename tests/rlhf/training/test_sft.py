import json
from pathlib import Path

import pytest

from rlhf.training.causal_defaults import CHAT_TEMPLATE, build_bpe_tokenizer, build_tiny_causal_lm
from rlhf.training.data import DataError, format_prompt
from rlhf.training.ppo_config import SFTRunConfig
from rlhf.training.progress import ProgressEvent
from rlhf.training.sft import encode_demonstrations, run_sft, sft_rows
from tests.rlhf.training.causal_models import all_texts, changed, demo_rows, one_thread, state, write_jsonl
from tests.rlhf.training.causal_models import sft_rows as to_sft


def test_bpe_tokenizer_has_separate_eos_and_pad_and_an_hh_style_chat_template():
    tokenizer = build_bpe_tokenizer(all_texts(demo_rows(8)), vocab_size=400)

    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer.pad_token == "<|pad|>"
    assert tokenizer.eos_token_id != tokenizer.pad_token_id
    assert tokenizer.chat_template == CHAT_TEMPLATE
    rendered = tokenizer.apply_chat_template(
        [
            {"role": "user", "content": "Hi?"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Bye?"},
        ],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert rendered == "\n\nHuman: Hi?\n\nAssistant: Hello.\n\nHuman: Bye?\n\nAssistant:"
    text = "Unseen wörds → still encodable 🙂"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text  # byte-level: no unknown tokens


def test_tiny_causal_lm_matches_its_tokenizer_and_stops_at_eos():
    model, tokenizer = build_tiny_causal_lm(all_texts(demo_rows(8)), vocab_size=400, n_layer=1, n_embd=32, n_head=2)

    assert model.config.vocab_size == len(tokenizer)
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id


def test_encode_demonstrations_masks_the_prompt_and_ends_every_completion_with_eos():
    tokenizer = build_bpe_tokenizer(all_texts(demo_rows(8)), vocab_size=400)
    long_prompt = "word " * 200

    items = encode_demonstrations(tokenizer, [("Hi?", " Hello."), (long_prompt, " Short.")], 64, 16)

    first = items[0]
    rendered = format_prompt("Hi?", tokenizer)  # the fixture's HH chat template: "\n\nHuman: Hi?\n\nAssistant:"
    assert rendered == "\n\nHuman: Hi?\n\nAssistant:"
    n_prompt = len(tokenizer(rendered)["input_ids"])
    assert first["completion_mask"] == [0] * n_prompt + [1] * (len(first["input_ids"]) - n_prompt)
    assert first["input_ids"][-1] == tokenizer.eos_token_id
    assert items[1]["completion_mask"].count(0) == 16  # the long prompt keeps its last 16 tokens
    assert len(items[1]["input_ids"]) <= 64


def test_sft_rows_take_chosen_when_there_is_no_completion_and_drop_duplicates(tmp_path):
    path = write_jsonl(
        tmp_path / "pairs.jsonl",
        [{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "p", "chosen": "a", "rejected": "c"}],
    )
    assert sft_rows(path) == [("p", "a")]

    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "p"}])
    with pytest.raises(DataError, match="row 1: an SFT row needs `prompt` and `completion`"):
        sft_rows(bad)


@pytest.mark.slow
def test_run_sft_lowers_the_completion_loss_and_changes_the_weights(tmp_path: Path):
    rows = demo_rows(16)
    base, tokenizer = build_tiny_causal_lm(all_texts(rows), vocab_size=400, n_layer=1, n_embd=32, n_head=2)
    base.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    cfg = SFTRunConfig(
        train_file=str(write_jsonl(tmp_path / "best.jsonl", to_sft(rows))),
        base_model=str(tmp_path / "base"),
        output_dir=str(tmp_path / "sft"),
        num_train_epochs=4,
        per_device_train_batch_size=4,
        learning_rate=3e-3,
        logging_steps=2,
        max_length=128,
        max_prompt_length=64,
    )
    events: list[ProgressEvent] = []
    with one_thread():
        out = run_sft(cfg, progress=events.append)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sft/loss_after"] < metrics["sft/loss_before"] - 0.5
    assert metrics["sft/steps"] == 16
    assert any("sft/loss" in e.metrics for e in events if e.stage == "train")
    assert changed(state(tmp_path / "base"), state(out))
    assert events[-1].stage == "done" and (out / "tokenizer.json").is_file()


@pytest.mark.slow
def test_run_sft_builds_the_tiny_fixture_when_base_model_is_tiny(tmp_path: Path):
    rows = demo_rows(8)
    cfg = SFTRunConfig(
        train_file=str(write_jsonl(tmp_path / "best.jsonl", to_sft(rows))),
        base_model="tiny",
        output_dir=str(tmp_path / "sft"),
        max_steps=2,
        tiny_vocab_size=400,
        tiny_layers=1,
        tiny_width=32,
        tiny_heads=2,
        max_length=128,
        max_prompt_length=64,
    )
    with one_thread():
        out = run_sft(cfg)

    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(str(out)).pad_token == "<|pad|>"
    assert json.loads((out / "metrics.json").read_text())["sft/steps"] == 2
