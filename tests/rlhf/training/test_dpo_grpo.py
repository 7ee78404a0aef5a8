import json
from pathlib import Path

import pytest

from rlhf.training.dpo import run_dpo
from rlhf.training.grpo import reward_function, run_grpo
from rlhf.training.ppo_config import DPORunConfig, GRPORunConfig
from rlhf.training.progress import ProgressEvent
from tests.rlhf.training.causal_models import (
    changed,
    demo_rows,
    one_thread,
    save_tiny_bert_reward_model,
    save_tiny_policy_and_reward_model,
    state,
    write_jsonl,
)


@pytest.mark.slow
def test_run_dpo_from_the_preference_export_logs_its_loss_and_changes_the_weights(tmp_path: Path):
    rows = demo_rows(16) + [{"prompt": "tie?", "chosen": "a", "rejected": "b", "tie": True}]
    policy, _ = save_tiny_policy_and_reward_model(tmp_path, rows)
    cfg = DPORunConfig(
        train_file=str(write_jsonl(tmp_path / "pairs.jsonl", rows)),
        policy=str(policy),
        output_dir=str(tmp_path / "dpo"),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        max_length=96,
    )
    events: list[ProgressEvent] = []
    with one_thread():
        out = run_dpo(cfg, progress=events.append)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dpo/pairs"] == 16  # the tie row is set aside
    assert [e.step for e in events if e.stage == "train" and "dpo/loss" in e.metrics] == [1, 2]
    assert changed(state(policy), state(out))


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["grpo", "rloo"])
def test_grpo_and_rloo_train_against_a_reward_model_on_a_different_tokenizer(tmp_path: Path, algorithm: str):
    rows = demo_rows(16)
    policy, _ = save_tiny_policy_and_reward_model(tmp_path, rows)
    bert_reward = save_tiny_bert_reward_model(tmp_path, rows)  # WordPiece, not the policy's BPE
    cfg = GRPORunConfig(
        policy=str(policy),
        reward_model=str(bert_reward),
        train_file=str(write_jsonl(tmp_path / "prompts.jsonl", rows)),
        output_dir=str(tmp_path / algorithm),
        algorithm=algorithm,
        num_generations=4,
        per_device_train_batch_size=4,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-3,
    )
    events: list[ProgressEvent] = []
    with one_thread():
        out = run_grpo(cfg, progress=events.append)

    logged = [e.metrics[f"{algorithm}/mean_reward"] for e in events if f"{algorithm}/mean_reward" in e.metrics]
    assert len(logged) >= 2 and all(isinstance(value, float) for value in logged)
    assert json.loads((out / "metrics.json").read_text())[f"{algorithm}/steps"] == 2
    assert changed(state(policy), state(out))


def test_reward_function_scores_text_with_the_reward_models_own_tokenizer(tmp_path: Path):
    from rlhf.training.scoring import score_texts

    bert_reward = save_tiny_bert_reward_model(tmp_path, demo_rows(8))
    prompts = ["Tell me about tea.", [{"role": "user", "content": "Bikes?"}]]
    completions = [" Tea is a drink.", [{"role": "assistant", "content": "Bikes have wheels."}]]
    raw = [json.dumps(p) for p in prompts]

    rewards = reward_function(bert_reward, max_length=128)(prompts=["x", "y"], completions=completions, raw_prompt=raw)

    expected = score_texts(bert_reward, prompts, [" Tea is a drink.", "Bikes have wheels."], max_length=128)
    assert rewards == pytest.approx(expected)
