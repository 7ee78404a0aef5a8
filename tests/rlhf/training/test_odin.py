"""ODIN's length head on fine-tuned reward models (rlhf/training/odin.py): the extra output, the loss terms, the
collator, and a trained model that is saved with the quality output only."""

import json

import numpy as np
import pytest
import torch

from rlhf.training import odin
from rlhf.training.config import RewardModelConfig
from rlhf.training.defaults import build_tiny_model
from rlhf.training.reward_model import train_reward_model

from .conftest import write_jsonl


def test_length_head_is_added_for_training_and_dropped_keeping_the_quality_row():
    model = build_tiny_model(vocab_size=50, pad_token_id=0).eval()
    quality = model.classifier.weight.detach().clone()
    ids = torch.tensor([[1, 5, 7, 2]])

    odin.add_length_head(model, seed=0)
    two = model(input_ids=ids).logits
    odin.drop_length_head(model)
    one = model(input_ids=ids).logits

    assert two.shape == (1, 2) and one.shape == (1, 1)
    assert torch.equal(model.classifier.weight, quality)
    assert torch.allclose(one[0, 0], two[0, 0])
    assert model.config.num_labels == 1  # TRL and every loader expect one output


def test_odin_terms_are_pearson_correlations_and_orthogonality_with_gradients():
    rng = np.random.default_rng(0)
    lengths = torch.tensor(rng.normal(size=32), dtype=torch.float)
    quality = torch.tensor(rng.normal(size=32), dtype=torch.float, requires_grad=True)
    length_out = (2 * lengths + 0.1 * torch.randn(32, generator=torch.Generator().manual_seed(1))).requires_grad_()
    head = torch.tensor([[1.0, 0.0], [1.0, 1.0]], requires_grad=True)

    disentangle, ortho = odin.odin_terms(torch.stack([quality, length_out], dim=1), lengths, head)
    expected = abs(np.corrcoef(quality.detach(), lengths)[0, 1]) - np.corrcoef(length_out.detach(), lengths)[0, 1]

    assert disentangle.item() == pytest.approx(expected, abs=1e-5)
    assert ortho.item() == pytest.approx(2**-0.5, abs=1e-6)  # cos 45 degrees
    (disentangle + ortho).backward()
    assert quality.grad.abs().sum() > 0 and head.grad.abs().sum() > 0
    assert float(odin.pearson(torch.ones(4), torch.arange(4.0))) == 0.0  # constant: no correlation, no NaN


def test_collator_lays_the_lengths_out_as_the_input_ids_chosen_then_rejected():
    collate = odin.collator_class()(pad_token_id=0)
    rows = [{"chosen": "a" * 9, "rejected": "b"}, {"chosen": "c", "rejected": "d" * 99}]
    items = odin.add_lengths(
        [{"chosen_ids": [1, 2], "rejected_ids": [3]}, {"chosen_ids": [4], "rejected_ids": [5]}], rows
    )

    batch = collate(items)

    assert batch["input_ids"].tolist() == [[1, 2], [4, 0], [3, 0], [5, 0]]
    assert batch["lengths"].tolist() == pytest.approx([np.log1p(9), np.log1p(1), np.log1p(1), np.log1p(99)])


def test_config_takes_residual_debias_with_finetune_and_refuses_negative_weights():
    cfg = RewardModelConfig(train_file="x", method="finetune", length_debias="residual", odin_length_weight=2.0)
    assert cfg.odin_length_weight == 2.0
    with pytest.raises(ValueError, match="odin_length_weight"):
        RewardModelConfig(train_file="x", length_debias="residual", odin_length_weight=-1.0)


def _confounded(n: int, seed: int, chosen_longer: bool) -> list[dict]:
    """Content decides ("great" beats "awful"); in training the chosen answer is also always the longer one."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        short, long = int(rng.integers(1, 4)), int(rng.integers(12, 20))
        good, bad = (long, short) if chosen_longer else (short, long)
        rows.append({
            "prompt": f"\n\nHuman: question {i}?\n\nAssistant:",
            "chosen": " great answer" + " and more" * good,
            "rejected": " awful answer" + " and more" * bad,
        })  # fmt: skip
    return rows


@pytest.mark.slow
def test_odin_finetune_saves_a_one_output_model_that_leans_less_on_length(tmp_path):
    from transformers import AutoModelForSequenceClassification

    train = write_jsonl(tmp_path / "train.jsonl", _confounded(64, seed=0, chosen_longer=True))
    shorter = write_jsonl(tmp_path / "shorter.jsonl", _confounded(32, seed=1, chosen_longer=False))
    results = {}
    for seed in (3, 4):  # two seeds: a 200-token toy model's outcome moves with the CPU's thread count
        for debias in ("none", "residual"):
            cfg = RewardModelConfig(
                train_file=str(train), eval_file=str(shorter), base_model="tiny",
                output_dir=str(tmp_path / f"{debias}{seed}"), max_length=64, tiny_vocab_size=200, num_train_epochs=6,
                learning_rate=1e-3, seed=seed, length_debias=debias, boundary_index=False,
            )  # fmt: skip
            out = train_reward_model(cfg)
            results[debias, seed] = json.loads((out / "metrics.json").read_text())

    saved = AutoModelForSequenceClassification.from_pretrained(tmp_path / "residual3")
    assert saved.classifier.out_features == 1
    assert "train/odin_length_term" in results["residual", 3]
    # Every held-out pair has the better answer shorter: a length detector gets them all wrong (measured: 0.0 with
    # either seed), content gets them right (ODIN: 0.28-0.56 by seed and thread count). The margin-length correlation
    # on 32 pairs is not asserted: it swung from 0.03 to 0.32 for the same seed between one and two threads.
    for seed in (3, 4):
        assert results["none", seed]["eval/accuracy"] <= 0.1
    gain = np.mean([results["residual", s]["eval/accuracy"] - results["none", s]["eval/accuracy"] for s in (3, 4)])
    assert gain >= 0.2
