import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from rlhf.training.ppo import (
    Watch,
    adaptive_kl_coef,
    best_of_n_metrics,
    check_reward_model,
    kl_controller,
    run_ppo,
    sample_metrics,
    tokenizer_difference,
)
from rlhf.training.ppo_config import (
    PPO_RECIPE_LABELS,
    PPO_RECIPES,
    ChainConfig,
    DPORunConfig,
    GRPORunConfig,
    PPORunConfig,
    SFTRunConfig,
    ppo_recipe_config,
)
from rlhf.training.progress import ProgressEvent, TrainingCancelled
from tests.rlhf.training.causal_models import (
    changed,
    demo_rows,
    one_thread,
    save_tiny_bert_reward_model,
    save_tiny_policy_and_reward_model,
    state,
    write_jsonl,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def models(tmp_path: Path) -> tuple[Path, Path]:
    return save_tiny_policy_and_reward_model(tmp_path, demo_rows(16))


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", demo_rows(16))


def ppo_config(tmp_path: Path, policy: Path, reward: Path, prompts: Path, **overrides) -> PPORunConfig:
    settings = dict(
        policy=str(policy),
        reward_model=str(reward),
        train_file=str(prompts),
        output_dir=str(tmp_path / "ppo"),
        total_episodes=16,
        per_device_train_batch_size=8,
        num_mini_batches=2,
        num_ppo_epochs=2,
        response_length=8,
        learning_rate=1e-3,
        num_eval_prompts=3,
        eval_samples_per_prompt=2,
    )
    return PPORunConfig(**(settings | overrides))


@pytest.mark.slow
def test_run_ppo_records_metrics_over_time_and_changes_the_policy_weights(tmp_path, models, prompts_file):
    policy, reward = models
    events: list[ProgressEvent] = []
    # An adaptive KL target far above any KL reachable here: the controller lowers kl_coef by the largest step,
    # 20% x 8 episodes / 16 episodes of horizon = 10% per batch.
    cfg = ppo_config(
        tmp_path, policy, reward, prompts_file, kl_coef=0.05, kl_target=1000.0, kl_horizon=16,
        best_of_n=4, second_reward_model=str(reward), monitor_every=1, monitor_prompts=2,
    )  # fmt: skip
    with one_thread():
        out = run_ppo(cfg, progress=events.append)

    train = [e for e in events if e.stage == "train" and "ppo/kl" in e.metrics]
    assert [e.step for e in train] == [1, 2]  # 16 episodes / 8 per batch, logged every batch
    for name in ("ppo/mean_reward", "ppo/kl", "ppo/entropy", "ppo/policy_loss", "ppo/value_loss", "ppo/clipfrac"):
        assert all(isinstance(e.metrics[name], float) for e in train), name
    assert changed(state(policy), state(out))  # the saved policy moved away from the initial one
    assert [e.metrics["ppo/kl_coef"] for e in train] == pytest.approx([0.05, 0.045])
    for e in train:  # TRL trained each batch with the coefficient in force: its KL penalty is -kl_coef x KL (k1)
        assert e.metrics["ppo/non_score_reward"] == pytest.approx(-e.metrics["ppo/kl_coef"] * e.metrics["ppo/kl"])
    assert events[-1].stage == "done"

    samples = json.loads((out / "samples.json").read_text())
    assert len(samples) == 3 * 2  # held-out prompts x samples per prompt
    assert set(samples[0]) == {"prompt", "before", "before_reward", "after", "after_reward", "before_second",
                               "after_second"}  # fmt: skip
    assert events[-1].metrics["ppo/samples"] == samples
    report = json.loads((out / "metrics.json").read_text())
    # What RL costs, before (4 reference samples per prompt) vs after (2 policy samples per prompt).
    for key in ("distinct1", "distinct2", "self_similarity", "length", "perplexity"):
        assert report[f"ppo/{key}_before"] >= 0 and report[f"ppo/{key}_after"] >= 0, key
    assert report["ppo/distinct2_ratio"] == pytest.approx(
        report["ppo/distinct2_after"] / report["ppo/distinct2_before"]
    )
    assert report["ppo/perplexity_before"] > 1.0
    # The second opinion is the same reward model here: its gain is the reward model's own (no EOS penalty).
    assert report["ppo/eval_second_gain_std"] == pytest.approx(report["ppo/eval_score_gain_std"], abs=1e-3)
    assert report["ppo/best_of_4_reward_gain_std"] >= 0.0  # the best of 4 is never below the mean
    assert "ppo/best_of_4_second_gain_std" in report
    monitored = [h for h in report["history"] if "ppo/monitor_gap" in h]
    assert [h["step"] for h in monitored] == [1, 2]
    assert all(h["ppo/monitor_gap"] == pytest.approx(0.0, abs=1e-3) for h in monitored)
    # the tiny reward model has no boundary index (tests turn indexing off): reported, not fatal
    assert report["boundary"]["available"] is False and report["boundary"]["reason"]
    live = json.loads((out / "samples_live.json").read_text())
    assert len(live) == 2 * 2 and {"before", "after", "after_second", "step"} <= set(live[0])
    assert report["warnings"] == [] or all(isinstance(w, str) for w in report["warnings"])
    assert [h["ppo/kl"] for h in report["history"] if "ppo/kl" in h] == [e.metrics["ppo/kl"] for e in train]
    assert "ppo/eval_reward_gain_std" in report and report["ppo/steps"] == 2
    # The reward is the reward model's score less the missing-EOS penalty (1.0) for samples that never ended.
    for when in ("before", "after"):
        gap = report[f"ppo/eval_score_{when}"] - report[f"ppo/eval_reward_{when}"]
        assert 0.0 <= gap <= 1.0 + 1e-6
    assert json.loads((out / "training_config.json").read_text())["batch_size"] == 8


def test_run_ppo_refuses_a_reward_model_that_is_not_a_one_output_sequence_classifier(tmp_path, models, prompts_file):
    policy, _ = models  # a causal LM (GPT2LMHeadModel): nothing to read a reward from

    with pytest.raises(ValueError, match="not a one-output sequence classifier"):
        run_ppo(ppo_config(tmp_path, policy, policy, prompts_file))

    assert not (tmp_path / "ppo" / "model.safetensors").exists()


def test_check_reward_model_reports_another_tokenizer_instead_of_refusing(tmp_path, models):
    from transformers import AutoTokenizer

    policy, reward = models
    tokenizer = AutoTokenizer.from_pretrained(str(policy))
    bert_reward = save_tiny_bert_reward_model(tmp_path, demo_rows(16))

    assert check_reward_model(reward, tokenizer) is None
    assert "only in the reward model's" in check_reward_model(bert_reward, tokenizer)


@pytest.mark.slow
def test_training_cancelled_from_the_progress_callback_stops_ppo_before_saving(tmp_path, models, prompts_file):
    policy, reward = models

    def cancel_after_first_batch(event: ProgressEvent) -> None:
        if event.stage == "train" and event.step >= 1:
            raise TrainingCancelled("stop")

    with one_thread(), pytest.raises(TrainingCancelled):
        run_ppo(ppo_config(tmp_path, policy, reward, prompts_file, total_episodes=64), cancel_after_first_batch)

    assert not (tmp_path / "ppo" / "model.safetensors").exists()
    assert not (tmp_path / "ppo" / "metrics.json").exists()


def test_watch_warns_once_when_kl_passes_the_threshold_and_when_entropy_collapses():
    seen: list[ProgressEvent] = []
    watch = Watch(seen.append, kl_threshold=5.0, collapse_ratio=0.25)

    watch(ProgressEvent(1, 4, {"ppo/kl": 0.5, "ppo/token_entropy": 4.0}))
    watch(ProgressEvent(2, 4, {"ppo/kl": 6.0, "ppo/token_entropy": 2.0}))
    watch(ProgressEvent(3, 4, {"ppo/kl": 7.0, "ppo/token_entropy": 0.9}))
    watch(ProgressEvent(4, 4, {"ppo/kl": 8.0, "ppo/token_entropy": 0.5}))

    assert len(watch.warnings) == 2
    assert "6.00 nats" in watch.warnings[0] and "step 2" in watch.warnings[0]
    assert "Entropy collapsed to 0.900" in watch.warnings[1] and "diversity" in watch.warnings[1]
    assert "WARNING" in seen[1].message and seen[1].metrics["ppo/warnings"] == 1.0
    assert "WARNING" not in seen[3].message


def test_sample_metrics_give_the_reward_gain_in_standard_deviations_of_the_reference():
    metrics = sample_metrics([0.0, 2.0], [3.0, 3.0])  # the reference: mean 1, std 1

    assert metrics["ppo/eval_reward_before"] == 1.0 and metrics["ppo/eval_reward_after"] == 3.0
    assert metrics["ppo/eval_reward_std"] == 1.0
    assert metrics["ppo/eval_reward_gain_std"] == 2.0


def test_the_monitors_reference_means_are_over_its_own_prompts_and_its_unit_the_std_of_all():
    from rlhf.training.ppo import Reference

    all_scores = [0.0, 0.0, 4.0, 4.0]  # monitor prompt: the first two samples; another prompt scores higher
    reference = Reference({"score": all_scores}, n_first=2)
    assert reference.mean["score"] == 0.0 and reference.std["score"] == 2.0
    assert reference.gain("score", [1.0, 1.0]) == 0.5  # vs the same prompt's reference, not the mean of all (2.0)
    assert Reference({"score": all_scores}).gain("score", [1.0, 1.0]) == -0.5


def test_first_per_prompt_keeps_the_first_k_samples_of_each_prompt():
    from rlhf.training.ppo import first_per_prompt

    texts = ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"]
    assert first_per_prompt((texts, list(range(8))), 4, 2) == (["a1", "a2", "b1", "b2"], [0, 1, 4, 5])


def test_best_of_n_keeps_the_highest_reward_sample_of_each_group_and_scores_the_picks_with_every_scorer():
    # one prompt, 8 samples: groups of 4 -> picks 3 (reward 4) and 4 (reward 8); best of 8 -> 4
    rewards = [1.0, 2.0, 3.0, 4.0, 8.0, 0.0, 0.0, 0.0]
    second = [0.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0]
    metrics = best_of_n_metrics(rewards, 8, {"second": second})

    std = float(np.std(rewards))
    assert metrics["ppo/best_of_4_reward_gain_std"] == pytest.approx((6.0 - np.mean(rewards)) / std)
    assert metrics["ppo/best_of_8_reward_gain_std"] == pytest.approx((8.0 - np.mean(rewards)) / std)
    assert metrics["ppo/best_of_4_second_gain_std"] == pytest.approx((0.0 - np.mean(second)) / np.std(second))
    assert metrics["ppo/best_of_8_second_gain_std"] < 0  # what the first reward model likes best, the second does not
    assert best_of_n_metrics(rewards, 1, {}) == {}


def test_tokenizer_difference_ignores_a_pad_token_added_for_ppo(tmp_path, models):
    from transformers import AutoTokenizer

    policy, reward = models
    a, b = AutoTokenizer.from_pretrained(str(policy)), AutoTokenizer.from_pretrained(str(reward))
    assert tokenizer_difference(a, b) is None

    b.pad_token = b.eos_token  # e.g. a GPT-2 reward model that pads with EOS
    a.add_special_tokens({"pad_token": "<|newpad|>"})
    assert tokenizer_difference(a, b) is None
    a.add_tokens(["zzz-extra-token"])
    assert "1 only in the policy's" in tokenizer_difference(a, b)


def test_ppo_cli_reads_a_yaml_config_and_the_example_config_parses(tmp_path):
    from trl import TrlParser

    path = tmp_path / "run.yaml"
    path.write_text("policy: runs/sft\nreward_model: runs/reward\ntrain_file: t.jsonl\nkl_coef: 0.2\n")
    (cfg,) = TrlParser(PPORunConfig).parse_args_and_config(["--config", str(path), "--total_episodes", "64"])
    assert (cfg.kl_coef, cfg.total_episodes, cfg.stop_token) == (0.2, 64, "eos")

    (example,) = TrlParser(PPORunConfig).parse_args_and_config(["--config", str(REPO / "configs/ppo.example.yaml")])
    assert example.policy and example.reward_model and example.train_file


@pytest.mark.parametrize("config_class", [PPORunConfig, SFTRunConfig, DPORunConfig, GRPORunConfig, ChainConfig])
def test_every_config_field_has_help_text(config_class):
    missing = [f.name for f in fields(config_class) if not f.metadata.get("help")]
    assert missing == []


def test_adaptive_kl_coef_moves_towards_the_target_by_at_most_20_percent_of_the_horizon_share():
    assert adaptive_kl_coef(0.1, kl=6.0, target=5.0, episodes=100, horizon=1000) == pytest.approx(0.1 * 1.02)
    assert adaptive_kl_coef(0.1, kl=50.0, target=5.0, episodes=100, horizon=1000) == pytest.approx(0.1 * 1.02)
    assert adaptive_kl_coef(0.1, kl=4.5, target=5.0, episodes=100, horizon=1000) == pytest.approx(0.1 * 0.99)
    assert adaptive_kl_coef(0.1, kl=-3.0, target=5.0, episodes=100, horizon=1000) == pytest.approx(0.1 * 0.98)
    assert adaptive_kl_coef(0.1, kl=5.0, target=5.0, episodes=100, horizon=1000) == 0.1
    with pytest.raises(ValueError, match="kl_target"):
        PPORunConfig(kl_target=0)
    with pytest.raises(ValueError, match="kl_horizon"):
        PPORunConfig(kl_horizon=0)
    with pytest.raises(ValueError, match="lr_scheduler_type"):
        PPORunConfig(lr_scheduler_type="sometimes")


def test_the_kl_floor_stops_the_coefficient_sinking_but_not_rising():
    # Under target: 20% down per batch (batch = horizon), held at the floor.
    assert adaptive_kl_coef(0.05, kl=0.5, target=4.0, episodes=64, horizon=64, floor=0.035) == pytest.approx(0.04)
    assert adaptive_kl_coef(0.04, kl=0.5, target=4.0, episodes=64, horizon=64, floor=0.035) == 0.035
    assert adaptive_kl_coef(0.035, kl=0.5, target=4.0, episodes=64, horizon=64, floor=0.035) == 0.035
    # Over target it rises from the floor as before.
    assert adaptive_kl_coef(0.035, kl=6.0, target=4.0, episodes=64, horizon=64, floor=0.035) == pytest.approx(0.042)
    with pytest.raises(ValueError, match="kl_coef_min"):
        PPORunConfig(kl_coef=0.05, kl_coef_min=0.06)
    with pytest.raises(ValueError, match="kl_coef_min"):
        PPORunConfig(kl_coef_min=-0.01)


def test_a_ppo_recipe_is_a_valid_config_under_the_callers_fields():
    assert set(PPO_RECIPE_LABELS) == set(PPO_RECIPES)
    for name, recipe in PPO_RECIPES.items():
        assert set(recipe) <= {f.name for f in fields(PPORunConfig)}, name
        cfg = PPORunConfig(**ppo_recipe_config(name, {}))
        assert {key: getattr(cfg, key) for key in recipe} == recipe
    cpu = ppo_recipe_config("smollm2-cpu", {"total_episodes": 512, "temperature": 0.7})
    assert (cpu["total_episodes"], cpu["temperature"], cpu["kl_target"], cpu["use_lora"]) == (512, 0.7, 4.0, True)
    # A lower starting coefficient lowers the recipe's floor with it (the config would refuse floor > start); a floor
    # the caller sets is theirs to get right.
    assert ppo_recipe_config("smollm2-cpu", {"kl_coef": 0.03})["kl_coef_min"] == 0.03
    assert ppo_recipe_config("smollm2-cpu", {"kl_coef": 0.3})["kl_coef_min"] == 0.05
    PPORunConfig(**ppo_recipe_config("smollm2-cpu", {"kl_coef": 0.03}))
    with pytest.raises(ValueError, match="kl_coef_min"):
        PPORunConfig(**ppo_recipe_config("smollm2-cpu", {"kl_coef": 0.03, "kl_coef_min": 0.04}))
    assert ppo_recipe_config("", {"seed": 3}) == {"seed": 3}
    with pytest.raises(ValueError, match="Unknown PPO recipe 'gpu'; use one of: smollm2-cpu"):
        ppo_recipe_config("gpu", {})


def test_the_kl_controller_callback_applies_the_floor_and_logs_the_coefficient_in_force():
    from types import SimpleNamespace

    args = SimpleNamespace(kl_coef=0.05, batch_size=64)
    callback = kl_controller(target=4.0, horizon=64, floor=0.035)
    seen = []
    for kl in (0.5, 0.5, 0.5, 6.0):
        logs = {"objective/kl": kl}
        callback.on_log(args, state=None, control=None, logs=logs)
        seen.append(logs["kl_coef"])
    assert seen == pytest.approx([0.05, 0.04, 0.035, 0.035])
    assert args.kl_coef == pytest.approx(0.042)


def test_ensemble_settings_without_ensemble_members_are_refused_before_training(tmp_path):
    from rlhf.training.ppo import run_ppo

    assert PPORunConfig().ensemble_settings_error() is None
    assert PPORunConfig(reward_ensemble=["rm2"], reward_ensemble_normalize=True).ensemble_settings_error() is None
    lone = PPORunConfig(reward_ensemble_mode="min", reward_ensemble_normalize=True, output_dir=str(tmp_path / "out"))
    assert "reward_ensemble_mode and reward_ensemble_normalize only apply" in lone.ensemble_settings_error()
    with pytest.raises(ValueError, match="only apply to a reward-model ensemble"):
        run_ppo(lone)
    assert not (tmp_path / "out").exists()  # refused before anything was loaded or written


def test_ppo_config_rejects_a_rollout_batch_that_mini_batches_do_not_divide():
    with pytest.raises(ValueError, match="multiple of num_mini_batches"):
        PPORunConfig(per_device_train_batch_size=6, num_mini_batches=4)
    with pytest.raises(ValueError, match="stop_token"):
        PPORunConfig(stop_token="<eos>")


def test_lora_on_the_top_layers_only_and_a_value_model_with_its_lower_layers_frozen(tmp_path):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, LlamaConfig

    from rlhf.training.ppo import _peft_config, freeze_value_model

    config = LlamaConfig(num_hidden_layers=4, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                         num_key_value_heads=1, vocab_size=50, num_labels=1, pad_token_id=0)  # fmt: skip
    policy = AutoModelForCausalLM.from_config(config)
    lora = _peft_config(PPORunConfig(use_lora=True, lora_top_layers=1), policy)
    assert len(lora.target_modules) == 7  # q, k, v, o, gate, up, down of the top layer
    assert all(name.startswith("model.layers.3.") for name in lora.target_modules)
    assert _peft_config(PPORunConfig(use_lora=True), policy).target_modules == "all-linear"
    assert _peft_config(PPORunConfig(use_lora=False), policy) is None

    value = AutoModelForSequenceClassification.from_config(config)
    freeze_value_model(value, 1)
    trainable = {name.split(".")[2] for name, p in value.named_parameters() if p.requires_grad and ".layers." in name}
    assert trainable == {"3"}
    assert value.score.weight.requires_grad and not value.model.embed_tokens.weight.requires_grad


def test_watch_flags_a_gap_between_the_reward_model_and_the_second_opinion_once():
    seen: list[ProgressEvent] = []
    watch = Watch(seen.append, kl_threshold=10.0, collapse_ratio=0.25, gap=1.0)
    for step, gap in enumerate([0.2, 0.9, 1.4, 2.0], start=1):
        watch(ProgressEvent(step, 4, {"ppo/monitor_gap": gap}, f"step {step}", "train"))

    flagged = [e.step for e in seen if "WARNING" in e.message]
    assert flagged == [3] and "reward hacking" in seen[2].message and len(watch.warnings) == 1
