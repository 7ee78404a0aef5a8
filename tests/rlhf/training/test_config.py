from dataclasses import fields
from pathlib import Path

import pytest

from rlhf.training.config import RewardModelConfig

ROOT = Path(__file__).resolve().parents[3]


def test_every_reward_model_config_field_has_help_text():
    missing = [f.name for f in fields(RewardModelConfig) if len(f.metadata.get("help", "")) < 10]
    assert missing == []


def test_config_rejects_unknown_report_to_and_truncation():
    with pytest.raises(ValueError, match="report_to must be one of"):
        RewardModelConfig(train_file="x.jsonl", report_to="mlflow")
    with pytest.raises(ValueError, match="truncation must be one of"):
        RewardModelConfig(train_file="x.jsonl", truncation="drop")


def test_config_from_dict_ignores_unknown_keys_and_round_trips():
    cfg = RewardModelConfig(train_file="a.jsonl", use_lora=True, lora_r=4)
    again = RewardModelConfig.from_dict({**cfg.to_dict(), "retired_option": 1})
    assert again == cfg


def test_bf16_auto_is_off_on_cpu_and_true_is_refused_there():
    import torch

    from rlhf.training.reward_model import resolve_bf16

    if torch.cuda.is_available():
        pytest.skip("this check is about CPU-only machines")  # pragma: no cover
    assert resolve_bf16("auto") is False
    assert resolve_bf16("false") is False
    with pytest.raises(ValueError, match="no GPU with bf16"):
        resolve_bf16("true")


def test_example_yaml_config_parses_into_the_dataclass():
    from trl import TrlParser

    (cfg,) = TrlParser(RewardModelConfig).parse_args_and_config(
        ["--config", str(ROOT / "configs" / "reward_model.example.yaml")]
    )
    assert cfg.base_model == "default"
    assert cfg.train_file.endswith("train.jsonl")
    assert cfg.truncation == "left-prompt"
