"""The registry of run kinds: one entry per TrainingRun kind, each consistent with its config class and module; the
stored configs of older runs still load; every stage's command line lists every field with its help."""

import importlib
import json
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from rlhf.training.cli import parse_config
from rlhf.training.registry import POLICY, REWARD_MODEL, STAGES, kinds_with, stage_get

BEFORE = json.loads((Path(__file__).parent / "data" / "configs_before_blocks.json").read_text())
# Fields added (or defaults changed) after the blocks, with their defaults now: PPO's costs of RL, second opinion,
# best-of-n, monitor and reward-model ensemble (issue #11; eval_samples_per_prompt went from 1 to 4 so that
# self-similarity has pairs).
ADDED_SINCE = {
    "reward_model": {"boundary_index": True, "odin_length_weight": 1.0, "odin_ortho_weight": 1.0},
    "ppo": {"best_of_n": 16, "second_reward_model": None, "monitor_every": 0, "monitor_prompts": 4,
            "diversity_warning_drop": 0.2, "length_warning_sd": 1.0, "hacking_warning_gap": 1.0,
            "lora_top_layers": 0, "value_top_layers": 0, "eval_samples_per_prompt": 4, "lr_scheduler_type": "linear",
            "kl_coef_min": 0.0, "reward_ensemble": [], "reward_ensemble_mode": "mean",
            "reward_ensemble_std_weight": 1.0, "reward_ensemble_normalize": False},
    "chain": {"ppo_best_of_n": 4, "ppo_kl_coef_min": 0.0},
}  # fmt: skip


def test_the_registry_has_exactly_the_run_kinds_of_the_model():
    from rlhf.models import TrainingRun

    assert list(STAGES) == list(TrainingRun.Kind.values)
    assert {kind: stage.label for kind, stage in STAGES.items()} == dict(TrainingRun.Kind.choices)
    assert kinds_with(REWARD_MODEL) == ("reward_model", "chain")
    assert kinds_with(POLICY) == ("ppo", "sft", "dpo", "grpo", "chain")
    with pytest.raises(KeyError, match="known: reward_model, ppo, sft"):
        stage_get("rlhf")


@pytest.mark.parametrize("kind", list(STAGES))
def test_each_entry_matches_its_config_and_module(kind):
    stage = STAGES[kind]
    names = {f.name for f in fields(stage.config)}
    assert stage.managed <= names and "output_dir" in stage.managed
    assert set(stage.input_fields) <= stage.managed
    assert {stage.policy_field, stage.reward_field} - {""} <= names
    assert set(stage.form_fields.values()) <= names - stage.managed | {stage.policy_field} - {""}
    assert "launcher" in stage.caller_fields()
    module = importlib.import_module(stage.module)
    assert callable(getattr(module, stage.entry)) and callable(module.main)
    assert all(len(f.metadata.get("help", "")) >= 10 for f in fields(stage.config)), "every field has help text"


@pytest.mark.parametrize("kind", list(STAGES))
def test_configs_stored_before_the_launcher_field_and_the_blocks_still_load(kind):
    """Runs store their config as JSON; an older run's (here: saved by the code before `launcher` and the shared
    blocks existed) loads into the current class with every value kept and the new field at its default."""
    stored = BEFORE["stored_runs"][kind]
    assert "launcher" not in stored
    cfg = STAGES[kind].config_from(stored)
    assert cfg.launcher == "inprocess"
    now = cfg.to_dict()
    assert {k: now[k] for k in stored if k in now} == {k: v for k, v in stored.items() if k in now}
    assert set(stored) <= set(now)
    assert STAGES[kind].config_from(json.loads(json.dumps(now))) == cfg  # and the new JSON round-trips


@pytest.mark.parametrize("kind", list(STAGES))
def test_composing_the_configs_from_blocks_kept_every_field_and_default(kind):
    """The configs were flat dataclasses; built from the shared blocks (blocks.py) they have the same fields with the
    same defaults (recorded from the code before), plus `launcher`, and a block's field is declared once."""
    from rlhf.training.blocks import EpochsBlock, LoraBlock, TrainingBlock

    now = {
        f.name: f.default if f.default_factory is MISSING else f.default_factory() for f in fields(STAGES[kind].config)
    }
    assert now == BEFORE["defaults"][kind] | {"launcher": "inprocess"} | ADDED_SINCE.get(kind, {})
    if kind != "chain":
        assert issubclass(STAGES[kind].config, TrainingBlock) and issubclass(STAGES[kind].config, LoraBlock)
    assert issubclass(STAGES[kind].config, EpochsBlock) == (kind in ("reward_model", "sft", "dpo", "grpo"))


@pytest.mark.parametrize("kind", list(STAGES))
def test_each_stage_help_lists_every_field_with_its_help(kind, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_config(kind, ["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    stage = STAGES[kind]
    assert f"python -m {stage.module}" in text and "--config" in text
    for f in fields(stage.config):
        assert f"--{f.name}" in text, f.name
        assert " ".join(f.metadata["help"].split())[:40].replace("%%", "%") in text.replace("%%", "%"), f.name


def test_a_stage_reads_a_yaml_config_and_flags_override_it(tmp_path):
    path = tmp_path / "dpo.yaml"
    path.write_text("train_file: pairs.jsonl\npolicy: tiny\nbeta: 0.3\nlauncher: accelerate:cpu_2proc\n")
    cfg = parse_config("dpo", ["--config", str(path), "--beta", "0.5"])
    assert (cfg.train_file, cfg.policy, cfg.beta, cfg.launcher) == ("pairs.jsonl", "tiny", 0.5, "accelerate:cpu_2proc")
    path.write_text("train_file: pairs.jsonl\nlauncher: slurm\n")
    with pytest.raises(ValueError, match="launcher must be 'inprocess' or 'accelerate"):
        parse_config("dpo", ["--config", str(path)])
