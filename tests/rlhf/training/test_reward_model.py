"""Training smoke tests: tiny models on CPU, offline, a few steps each."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlhf.training.config import RewardModelConfig
from rlhf.training.progress import ProgressEvent, TrainingCancelled
from rlhf.training.reward_model import train_reward_model

from .conftest import pair_rows, write_jsonl

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]


def _cfg(tmp_path: Path, train_file: Path, **overrides) -> RewardModelConfig:
    values = dict(
        train_file=str(train_file),
        base_model="tiny",
        output_dir=str(tmp_path / "out"),
        max_length=64,
        per_device_train_batch_size=4,
        max_steps=3,
        logging_steps=1,
        learning_rate=1e-3,
        tiny_vocab_size=500,
    )
    return RewardModelConfig(**{**values, **overrides})


def _initial_tiny_state(cfg: RewardModelConfig) -> dict[str, torch.Tensor]:
    """The tiny model as training starts (same seed, same tokenizer corpus)."""
    from transformers import set_seed

    from rlhf.training.data import read_pairs, training_texts
    from rlhf.training.defaults import load_base_model

    set_seed(cfg.seed)
    model, _ = load_base_model("tiny", training_texts(read_pairs(cfg.train_file)), cfg.tiny_vocab_size, cfg.max_length)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _saved_state(out: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(out).state_dict()


def test_tiny_model_trains_logs_a_loss_changes_weights_and_saves_everything(tmp_path, pairs_file, eval_file):
    events: list[ProgressEvent] = []
    cfg = _cfg(tmp_path, pairs_file, eval_file=str(eval_file), human_agreement=0.72)
    out = train_reward_model(cfg, progress=events.append)

    losses = [e.metrics["train/loss"] for e in events if "train/loss" in e.metrics]
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    assert [e.stage for e in events][0] == "setup" and events[-1].stage == "done"
    assert events[-1].step == events[-1].total_steps == 3

    before, after = _initial_tiny_state(cfg), _saved_state(out)
    assert before.keys() == after.keys()
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    assert not torch.equal(
        before["bert.encoder.layer.0.attention.self.query.weight"],
        after["bert.encoder.layer.0.attention.self.query.weight"],
    )

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train/pairs"] == 24 and metrics["train/steps"] == 3
    assert metrics["eval/pairs"] == 10 and 0 <= metrics["eval/accuracy"] <= 1
    assert set(metrics["eval/accuracy_by_category"]) == {"qa", "chat"}
    assert metrics["eval/human_agreement"] == 0.72
    resolved = json.loads((out / "training_config.json").read_text())
    assert resolved["base_model"] == "tiny" and resolved["bf16_resolved"] is False
    assert len(json.loads((out / "config.json").read_text())["id2label"]) == 1  # HF's config.json is left alone


def test_saved_model_reloads_and_score_texts_reproduces_the_eval_accuracy(tmp_path, pairs_file, eval_file):
    from rlhf.training.scoring import score_texts

    out = train_reward_model(_cfg(tmp_path, pairs_file, eval_file=str(eval_file), max_steps=6))
    rows = pair_rows(10, seed=2)
    prompts = [r["prompt"] for r in rows]
    chosen = score_texts(out, prompts, [r["chosen"] for r in rows], batch_size=3, max_length=64)
    rejected = score_texts(out, prompts, [r["rejected"] for r in rows], batch_size=3, max_length=64)

    assert len(chosen) == 10 and all(isinstance(s, float) for s in chosen)
    accuracy = sum(c > r for c, r in zip(chosen, rejected, strict=True)) / 10
    assert accuracy == json.loads((out / "metrics.json").read_text())["eval/accuracy"]
    assert score_texts(out, [], []) == []
    with pytest.raises(ValueError, match="one prompt per response"):
        score_texts(out, ["a"], [])


def test_pairs_longer_than_max_length_are_truncated_and_all_trained_on(tmp_path):
    rows = pair_rows(12, long_every=3)  # 4 pairs far longer than 32 tokens
    train_file = write_jsonl(tmp_path / "long.jsonl", rows)
    events: list[ProgressEvent] = []
    cfg = _cfg(tmp_path, train_file, max_length=32, max_steps=-1, num_train_epochs=1)
    out = train_reward_model(cfg, progress=events.append)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train/pairs"] == 12
    assert metrics["train/truncated_pairs"] >= 4
    assert metrics["train/longest_tokens"] > 32
    assert events[-1].total_steps == 3  # 12 pairs / batch 4: nothing was filtered out by TRL


def test_lora_training_is_merged_into_a_plain_model(tmp_path, pairs_file):
    cfg = _cfg(tmp_path, pairs_file, use_lora=True, lora_r=4, lora_alpha=8, learning_rate=1e-2, freeze_layers=1)
    out = train_reward_model(cfg)

    assert not (out / "adapter_config.json").exists()
    before, after = _initial_tiny_state(cfg), _saved_state(out)
    assert before.keys() == after.keys()  # no lora_A / lora_B / base_layer names left
    key = "bert.encoder.layer.1.attention.self.value.weight"
    assert not torch.equal(before[key], after[key])  # the adapter was merged into the weights
    frozen = "bert.encoder.layer.0.attention.self.value.weight"
    assert torch.equal(before[frozen], after[frozen])  # freeze_layers=1: no adapter on layer 0
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])  # the head was trained in full


def test_full_fine_tuning_with_frozen_layers_leaves_them_unchanged(tmp_path, pairs_file):
    cfg = _cfg(tmp_path, pairs_file, freeze_layers=1)
    out = train_reward_model(cfg)
    before, after = _initial_tiny_state(cfg), _saved_state(out)
    assert torch.equal(
        before["bert.embeddings.word_embeddings.weight"], after["bert.embeddings.word_embeddings.weight"]
    )
    assert torch.equal(
        before["bert.encoder.layer.0.output.dense.weight"], after["bert.encoder.layer.0.output.dense.weight"]
    )
    assert not torch.equal(
        before["bert.encoder.layer.1.output.dense.weight"], after["bert.encoder.layer.1.output.dense.weight"]
    )


def test_margin_column_enters_the_loss_only_with_use_margin(tmp_path):
    rows = [{**row, "margin": 6.0} for row in pair_rows(8)]
    train_file = write_jsonl(tmp_path / "margin.jsonl", rows)

    def first_loss(use_margin: bool) -> float:
        events: list[ProgressEvent] = []
        cfg = _cfg(tmp_path, train_file, use_margin=use_margin, max_steps=1, output_dir=str(tmp_path / str(use_margin)))
        train_reward_model(cfg, progress=events.append)
        return next(e.metrics["train/loss"] for e in events if "train/loss" in e.metrics)

    assert first_loss(False) == pytest.approx(0.693, abs=0.05)  # -log sigmoid(~0)
    assert first_loss(True) == pytest.approx(6.0, abs=0.1)  # -log sigmoid(~0 - 6)


def test_cancelling_from_the_progress_callback_stops_training_promptly(tmp_path, pairs_file):
    seen: list[int] = []

    def progress(event: ProgressEvent) -> None:
        seen.append(event.step)
        if event.step >= 2:
            raise TrainingCancelled()

    cfg = _cfg(tmp_path, pairs_file, max_steps=200)
    with pytest.raises(TrainingCancelled):
        train_reward_model(cfg, progress=progress)
    assert max(seen) == 2
    assert not (Path(cfg.output_dir) / "metrics.json").exists()
    assert not (Path(cfg.output_dir) / "model.safetensors").exists()


def test_bad_base_model_path_raises_a_clear_error(tmp_path, pairs_file):
    cfg = _cfg(tmp_path, pairs_file, base_model=str(tmp_path / "no-such-model"))
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        train_reward_model(cfg)


def test_bad_train_file_raises_a_clear_error(tmp_path):
    from rlhf.training.data import DataError

    with pytest.raises(DataError, match="no such file"):
        train_reward_model(_cfg(tmp_path, tmp_path / "missing.jsonl"))


def test_minilm_default_loads_offline_uses_sep_as_eos_and_trains_one_step(tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from rlhf.training.defaults import minilm_path

    train_file = write_jsonl(tmp_path / "pairs.jsonl", pair_rows(4))
    cfg = _cfg(
        tmp_path,
        train_file,
        base_model="default",
        max_steps=1,
        per_device_train_batch_size=2,
        learning_rate=1e-4,
        warmup_ratio=0,
    )
    out = train_reward_model(cfg)

    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.eos_token == "[SEP]" and tokenizer.pad_token == "[PAD]"
    shipped = load_file(minilm_path() / "model.safetensors")
    trained = _saved_state(out)
    assert trained["classifier.weight"].shape == (1, 384)
    key = "encoder.layer.5.output.dense.weight"
    assert not torch.equal(shipped[key], trained[f"bert.{key}"])

    from rlhf.training.data import encode_pairs

    items, _ = encode_pairs(pair_rows(1), tokenizer, 64)
    ids = items[0]["chosen_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id and ids[-2] != tokenizer.sep_token_id


def test_cli_trains_from_a_yaml_config_in_a_subprocess(tmp_path, pairs_file):
    config = tmp_path / "rm.yaml"
    out = tmp_path / "cli-out"
    config.write_text(
        f"train_file: {pairs_file}\nbase_model: tiny\noutput_dir: {out}\nmax_length: 48\n"
        "max_steps: 2\nlogging_steps: 1\ntiny_vocab_size: 400\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "rlhf.training.reward_model", "--config", str(config), "--learning_rate", "5e-4"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[done]" in result.stdout
    assert json.loads((out / "training_config.json").read_text())["learning_rate"] == 5e-4
    assert json.loads((out / "metrics.json").read_text())["train/steps"] == 2
