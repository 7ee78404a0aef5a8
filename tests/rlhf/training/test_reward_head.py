"""The frozen-trunk reward model: the Bradley-Terry head, length debiasing, the feature cache, and a saved model that
scores exactly what the head was fitted on."""

import json

import numpy as np
import pytest

from rlhf.training.config import RewardModelConfig
from rlhf.training.reward_head import FeatureCache, balanced_weights, fit_head, length_feature
from rlhf.training.reward_model import train_reward_model

from .conftest import pair_rows, write_jsonl


def _pairs(n: int, dim: int, content: float, length: float, seed: int = 0) -> tuple:
    """Synthetic pairs: the label is sign(content * w.(x_c - x_r) + length * length_diff + noise)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))
    w = rng.normal(size=dim)
    length_diff = rng.normal(size=n)
    a_wins = content * (a - b) @ w + length * length_diff + 0.3 * rng.normal(size=n) > 0
    chosen = np.where(a_wins[:, None], a, b)
    rejected = np.where(a_wins[:, None], b, a)
    return chosen, rejected, np.where(a_wins, length_diff, -length_diff), w


def test_fit_head_recovers_the_preferred_direction():
    chosen, rejected, length_diff, w = _pairs(600, 8, content=1.0, length=0.0)
    fitted = fit_head(chosen, rejected, length_diff, l2=0.01, debias="none")

    assert fitted["train_accuracy"] > 0.9
    cosine = fitted["weight"] @ w / np.linalg.norm(fitted["weight"]) / np.linalg.norm(w)
    assert cosine > 0.95
    assert fitted["length_weight"] == 0.0


def test_residual_length_term_takes_the_length_preference_and_is_dropped():
    # Length decides most pairs; one feature also carries the length (as real trunk features do).
    chosen, rejected, length_diff, _ = _pairs(800, 6, content=0.5, length=3.0, seed=1)
    chosen[:, 0] = np.maximum(length_diff, 0) * 2
    rejected[:, 0] = np.maximum(-length_diff, 0) * 2

    plain = fit_head(chosen, rejected, length_diff, l2=0.01, debias="none")
    residual = fit_head(chosen, rejected, length_diff, l2=0.01, debias="residual")

    assert residual["length_weight"] > 1.0
    plain_margin = (chosen - rejected) @ plain["weight"]
    residual_margin = (chosen - rejected) @ residual["weight"]
    # What is saved (content only) follows length far less once the length term took its share.
    assert abs(np.corrcoef(residual_margin, length_diff)[0, 1]) < abs(np.corrcoef(plain_margin, length_diff)[0, 1])


def test_balanced_weights_give_both_length_groups_equal_weight():
    weights = balanced_weights(np.array([1.0, 2.0, 3.0, -1.0, 0.0]))
    assert weights.tolist() == [2 / 3, 2 / 3, 2 / 3, 2.0, 1.0]
    assert balanced_weights(np.array([1.0, 2.0])).tolist() == [1.0, 1.0]  # one group only: unchanged


def test_length_feature_counts_characters_of_text_and_chat():
    rows = [
        {"chosen": "abc", "rejected": "a"},
        {"chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "abc"}]},
    ]
    assert np.allclose(length_feature(rows), [np.log(4) - np.log(2), np.log(2) - np.log(4)])


def test_fit_head_refuses_an_unknown_debias_mode():
    chosen, rejected, length_diff, _ = _pairs(20, 2, 1.0, 0.0)
    with pytest.raises(ValueError, match="length_debias"):
        fit_head(chosen, rejected, length_diff, l2=1.0, debias="shorter")


def test_feature_cache_round_trip(tmp_path):
    cache = FeatureCache(tmp_path, "abc")
    cache.put([1, 2, 3], np.array([0.5, 1.5], dtype=np.float32))
    cache.save()
    again = FeatureCache(tmp_path, "abc")
    assert again.get([1, 2, 3]).tolist() == [0.5, 1.5]
    assert again.get([1, 2]) is None
    assert FeatureCache(tmp_path, "other").get([1, 2, 3]) is None  # another trunk: another namespace


def test_config_refuses_an_unknown_method_or_debias():
    with pytest.raises(ValueError, match="length_debias"):
        RewardModelConfig(train_file="x", method="finetune", length_debias="shorter")
    with pytest.raises(ValueError, match="method"):
        RewardModelConfig(train_file="x", method="distil")


@pytest.mark.slow
def test_frozen_head_run_saves_a_classifier_that_scores_like_the_fitted_head(tmp_path):
    from rlhf.training.reward_head import FeatureCache, head_layer, trunk_fingerprint
    from rlhf.training.scoring import load_reward_model, score_sequences

    train = write_jsonl(tmp_path / "train.jsonl", pair_rows(40, seed=3))
    evaluation = write_jsonl(tmp_path / "test.jsonl", pair_rows(12, seed=4))
    cfg = RewardModelConfig(
        train_file=str(train),
        eval_file=str(evaluation),
        base_model="tiny",
        output_dir=str(tmp_path / "rm"),
        max_length=64,
        tiny_vocab_size=500,
        method="frozen-head",
        head_l2=0.1,
        length_debias="both",
        feature_cache_dir=str(tmp_path / "cache"),
    )
    out = train_reward_model(cfg)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train/pairs"] == 40
    assert metrics["train/cached_texts"] == 0
    assert metrics["eval/pairs"] == 12
    assert "eval/length_balanced_accuracy" in metrics
    # The saved model is a plain sequence classifier whose score is the fitted head applied to the cached features.
    model, tokenizer = load_reward_model(out)
    cache = FeatureCache(tmp_path / "cache", trunk_fingerprint(model))
    from rlhf.training.data import encode_pairs, read_pairs

    items, _ = encode_pairs(read_pairs(train)[:4], tokenizer, 64)
    sequences = [item["chosen_ids"] for item in items]
    scores = score_sequences(model, sequences, tokenizer.pad_token_id)
    weight = head_layer(model).weight.detach().numpy()[0]
    expected = [float(cache.get(seq) @ weight) for seq in sequences]
    assert np.allclose(scores, expected, atol=1e-4)


@pytest.mark.slow
def test_frozen_head_on_smollm2_saves_a_shortened_llama_classifier(tmp_path, smollm2):
    from transformers import AutoModelForSequenceClassification

    from rlhf.training.scoring import score_texts

    rows = pair_rows(6, seed=5)
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    cfg = RewardModelConfig(
        train_file=str(train),
        base_model="smollm2",
        output_dir=str(tmp_path / "rm"),
        max_length=64,
        method="frozen-head",
        trunk_layers=2,
        length_debias="residual",
        feature_cache_dir="none",
    )
    out = train_reward_model(cfg)

    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert type(model).__name__ == "LlamaForSequenceClassification"
    assert model.config.num_hidden_layers == 2 and len(model.model.layers) == 2
    assert model.config.pad_token_id != model.config.eos_token_id  # the reward is read at the end of turn
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train/trunk_layers"] == 2 and metrics["train/steps"] == 12
    # The chosen (helpful) answers of the training pairs score above the rejected (curt) ones.
    answers = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
    scores = score_texts(out, [r["prompt"] for r in rows] * 2, answers)
    assert sum(c > r for c, r in zip(scores[:6], scores[6:], strict=True)) >= 5


def test_decorrelated_weight_removes_the_margin_length_correlation():
    from rlhf.training.reward_head import decorrelated_weight

    chosen, rejected, length_diff, _ = _pairs(500, 6, content=1.0, length=2.0, seed=2)
    chosen[:, 0] += 2 * np.maximum(length_diff, 0)  # feature 0 carries length
    rejected[:, 0] += 2 * np.maximum(-length_diff, 0)
    diffs = chosen - rejected
    weight = fit_head(chosen, rejected, length_diff, l2=0.01, debias="none")["weight"].astype(np.float64)

    projected = decorrelated_weight(weight, diffs, length_diff)

    assert abs(np.corrcoef(diffs @ weight, length_diff)[0, 1]) > 0.01
    assert abs(np.corrcoef(diffs @ projected, length_diff)[0, 1]) < 1e-6
    assert np.allclose(decorrelated_weight(weight, diffs, np.zeros(500)), weight)  # nothing to remove


@pytest.mark.slow
def test_decorrelate_debias_after_finetuning_records_the_correlation_it_removed(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", pair_rows(24, seed=6, long_every=3))
    cfg = RewardModelConfig(
        train_file=str(train),
        base_model="tiny",
        output_dir=str(tmp_path / "rm"),
        max_length=64,
        tiny_vocab_size=500,
        max_steps=3,
        learning_rate=1e-3,
        length_debias="decorrelate",
        feature_cache_dir="none",
    )
    metrics = json.loads((train_reward_model(cfg) / "metrics.json").read_text())

    assert metrics["train/decorrelate_pairs"] == 24
    assert abs(metrics["train/margin_length_correlation_after"]) < 1e-3


def test_length_balanced_rows_oversample_the_smaller_length_group_with_a_seed():
    from rlhf.training.reward_model import length_balanced_rows

    rows = [{"chosen": "long answer", "rejected": "no"} for _ in range(5)]
    rows += [{"chosen": "ok", "rejected": "a much longer answer"} for _ in range(2)]
    balanced = length_balanced_rows(rows, seed=1)

    shorter = [r for r in balanced if len(r["chosen"]) < len(r["rejected"])]
    assert len(balanced) == 10 and len(shorter) == 5
    assert balanced[:7] == rows  # the original pairs are all kept, in order
    assert length_balanced_rows(rows, seed=1) == balanced
    assert length_balanced_rows(rows[:5], seed=1) == rows[:5]  # one group only: nothing to balance
