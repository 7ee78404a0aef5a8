"""What RL costs: distinct-n, self-similarity (real MiniLM embeddings), perplexity under a real model, warnings."""

import pytest

from rlhf.training.boundary import embed as minilm_embed
from rlhf.training.diversity import cost_warnings, distinct_n, perplexity, sample_set_metrics, self_similarity
from tests.rlhf.training.causal_models import demo_rows, save_tiny_policy_and_reward_model


def test_distinct_n_counts_distinct_word_ngrams_over_all_texts():
    assert distinct_n(["the cat sat", "the cat ran"], 1) == pytest.approx(4 / 6)  # the, cat, sat, ran
    assert distinct_n(["the cat sat", "the cat ran"], 2) == pytest.approx(3 / 4)  # "the cat" twice
    assert distinct_n(["The cat", "the CAT"], 2) == 0.5  # lower-cased
    assert distinct_n(["one"], 2) == 0.0  # no bigrams at all


@pytest.fixture(scope="module")
def embed():
    return minilm_embed


def test_self_similarity_is_one_for_identical_samples_and_lower_for_different_ones(embed):
    same = [["Boil the pasta for ten minutes."] * 3]
    varied = [["Boil the pasta for ten minutes.", "The stock market fell sharply today.", "Cats sleep a lot."]]
    assert self_similarity(same, embed) == pytest.approx(1.0, abs=1e-4)
    assert self_similarity(varied, embed) < 0.5
    # averaged over prompts; a prompt with one sample has no pairs and is skipped
    assert self_similarity([same[0], varied[0], ["alone"]], embed) == pytest.approx(
        (1.0 + self_similarity(varied, embed)) / 2, abs=1e-4
    )
    assert self_similarity([["alone"]], embed) is None


def test_perplexity_under_a_model_is_lower_for_text_it_was_trained_towards(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    policy_dir, _ = save_tiny_policy_and_reward_model(tmp_path, demo_rows(8))
    model, tokenizer = AutoModelForCausalLM.from_pretrained(policy_dir), AutoTokenizer.from_pretrained(policy_dir)
    prompt = tokenizer("Question:")["input_ids"]
    seen = tokenizer(" the same answer again")["input_ids"]
    other = tokenizer(" zebra quantum velvet")["input_ids"]
    before = perplexity(model, tokenizer.pad_token_id, [prompt], [seen])
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.tensor([prompt + seen])
    for _ in range(30):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert perplexity(model, tokenizer.pad_token_id, [prompt], [seen]) < before / 2
    assert perplexity(model, tokenizer.pad_token_id, [prompt], [seen]) < perplexity(
        model, tokenizer.pad_token_id, [prompt], [other]
    )
    assert model.training  # perplexity() evaluates in eval mode and restores the mode it found


def test_sample_set_metrics_and_the_warnings_they_raise(embed):
    before = sample_set_metrics(["a b c", "d e f", "g h i", "j k l"], [3, 3, 3, 3], 2, embed)
    narrow = sample_set_metrics(["a b c", "a b c", "a b c", "a b c"], [3, 3, 3, 3], 2, embed)
    long = sample_set_metrics(["a b c x", "d e f y", "g h i z", "j k l w"], [9, 9, 9, 9], 2, embed)
    assert before["distinct2"] == 1.0 and narrow["distinct2"] == pytest.approx(2 / 8)
    assert before["length"] == 3.0 and before["length_std"] == 0.0

    warnings = cost_warnings(before, narrow, drop=0.2, length_sd=1.0)
    assert any("distinct-2" in w for w in warnings) and any("self-similarity" in w for w in warnings)
    assert any("longer" in w for w in cost_warnings(before, long, drop=0.2, length_sd=1.0))
    assert cost_warnings(before, before, drop=0.2, length_sd=1.0) == []
