"""`python -m rlhf.training.evaluate`: any saved reward model on a JSONL of pairs (text or chat), one JSON object on
the last line of stdout, exit status 2 with a one-line message for a bad model directory or data file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlhf.training.config import RewardModelConfig
from rlhf.training.reward_model import train_reward_model

from .conftest import pair_rows, write_jsonl

ROOT = Path(__file__).resolve().parents[3]
KEYS = {"accuracy", "accuracy_chosen_longer", "accuracy_chosen_shorter", "length_balanced_accuracy",
        "length_baseline", "n", "margin_length_correlation", "pairs_chosen_longer", "pairs_chosen_shorter"}  # fmt: skip


def _evaluate(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "rlhf.training.evaluate", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("tiny-rm")
    train = write_jsonl(tmp / "train.jsonl", pair_rows(24, seed=1))
    held_out = write_jsonl(tmp / "test.jsonl", pair_rows(6, seed=2, long_every=2))
    cfg = RewardModelConfig(
        train_file=str(train), eval_file=str(held_out), base_model="tiny", output_dir=str(tmp / "model"), max_length=48,
        per_device_train_batch_size=4, max_steps=2, logging_steps=1, learning_rate=1e-3, tiny_vocab_size=400,
    )  # fmt: skip
    return train_reward_model(cfg)


def _chat(rows: list[dict]) -> list[dict]:
    """The same pairs in TRL's conversational format."""
    out = []
    for row in rows:
        question = row["prompt"].split("Human:", 1)[1].split("\n\nAssistant:", 1)[0].strip()
        out.append({
            "prompt": [{"role": "user", "content": question}],
            "chosen": [{"role": "assistant", "content": row["chosen"].strip()}],
            "rejected": [{"role": "assistant", "content": row["rejected"].strip()}],
        })  # fmt: skip
    return out


@pytest.mark.slow
def test_every_reward_model_run_writes_the_length_metrics_into_metrics_json(tiny_model):
    metrics = json.loads((tiny_model / "metrics.json").read_text(), parse_constant=pytest.fail)  # no NaN
    assert metrics["eval/pairs"] == 6 and metrics["eval/pairs_chosen_longer"] == 6
    assert metrics["eval/accuracy_chosen_shorter"] is None and metrics["eval/length_balanced_accuracy"] is None
    assert 0 <= metrics["eval/accuracy_chosen_longer"] <= 1 and metrics["eval/length_bias_warning"] is False
    assert "eval/margin_length_correlation" in metrics


@pytest.mark.slow
def test_command_scores_text_and_chat_pairs_and_prints_one_json_object_last(tiny_model, tmp_path):
    rows = pair_rows(9, seed=5, long_every=3)
    rows.append({**rows[0], "tie": True})  # set aside and counted
    rows[1] = {**rows[1], "chosen": rows[1]["rejected"], "rejected": rows[1]["chosen"]}  # one chosen-shorter pair
    text = write_jsonl(tmp_path / "pairs.jsonl", rows)
    chat = write_jsonl(tmp_path / "chat.jsonl", _chat(rows[:9]))

    result = _evaluate("--model", str(tiny_model), "--data", str(text), "--batch-size", "4")
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(out) >= KEYS
    assert out["n"] == 9 and out["ties_skipped"] == 1
    assert (out["pairs_chosen_longer"], out["pairs_chosen_shorter"]) == (8, 1)
    assert out["length_baseline"] == pytest.approx(8 / 9)
    assert out["max_length"] == 48  # from the model's training_config.json
    assert 0 <= out["accuracy"] <= 1 and out["accuracy_chosen_shorter"] in (0.0, 1.0)
    assert "scoring" in result.stderr  # the progress bar

    result = _evaluate("--model", str(tiny_model), "--data", str(chat), "--max-length", "40")
    assert result.returncode == 0, result.stderr[-2000:]
    chat_out = json.loads(result.stdout.strip().splitlines()[-1])
    assert chat_out["n"] == 9 and chat_out["max_length"] == 40 and set(chat_out) >= KEYS
    assert (chat_out["pairs_chosen_longer"], chat_out["pairs_chosen_shorter"]) == (8, 1)


def test_missing_model_dir_and_bad_jsonl_line_exit_2_with_a_message(tmp_path):
    good = json.dumps(pair_rows(1)[0])
    bad = write_jsonl(tmp_path / "bad.jsonl", [])
    bad.write_text(f"{good}\n{good}\n{{not json\n")

    missing = _evaluate("--model", str(tmp_path / "nowhere"), "--data", str(bad))
    assert missing.returncode == 2 and "nowhere: no such directory" in missing.stderr
    assert "Traceback" not in missing.stderr

    (tmp_path / "model").mkdir()
    broken = _evaluate("--model", str(tmp_path / "model"), "--data", str(bad))
    assert broken.returncode == 2 and "line 3" in broken.stderr and "Traceback" not in broken.stderr

    no_pair = write_jsonl(tmp_path / "no_pair.jsonl", [{"prompt": "p", "chosen": "a"}])
    result = _evaluate("--model", str(tmp_path / "model"), "--data", str(no_pair))
    assert result.returncode == 2 and "line 1" in result.stderr and "Traceback" not in result.stderr

    empty_model = _evaluate("--model", str(tmp_path / "model"), "--data", str(write_jsonl(tmp_path / "ok.jsonl",
                                                                                        pair_rows(2))))  # fmt: skip
    assert empty_model.returncode == 2 and "cannot load a reward model" in empty_model.stderr


def test_help_has_examples():
    result = _evaluate("--help")
    assert result.returncode == 0
    assert "--model" in result.stdout and "examples:" in result.stdout and "--max-length" in result.stdout
