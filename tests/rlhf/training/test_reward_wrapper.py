"""ReencodingRewardModel: PPO with a reward model on another tokenizer (a tiny BERT behind a tiny GPT-2 policy)."""

from pathlib import Path

import pytest

from rlhf.training.chat import render_chat
from rlhf.training.generation import encode_prompts
from tests.rlhf.training.causal_models import (
    demo_rows,
    one_thread,
    save_tiny_bert_reward_model,
    save_tiny_policy_and_reward_model,
    write_jsonl,
)

TEXT_PROMPT = "Can you tell me something useful about tea? (0)"
CHAT_PROMPT = [
    {"role": "user", "content": "Can you tell me something useful about bikes?"},
    {"role": "assistant", "content": "Sure, what would you like to know?"},
    {"role": "user", "content": "Something useful about gardens, please."},
]
RESPONSES = ["Sure! Here is a clear explanation about tea, with an example.", "No. I do not want to talk about it."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    policy, _ = save_tiny_policy_and_reward_model(root, demo_rows(16))
    return {"policy": policy, "bert": save_tiny_bert_reward_model(root, demo_rows(16))}


@pytest.fixture(scope="module")
def parts(tiny):
    from transformers import AutoTokenizer

    from rlhf.training.scoring import load_reward_model

    model, reward_tokenizer = load_reward_model(tiny["bert"])
    return model.to("cpu"), reward_tokenizer, AutoTokenizer.from_pretrained(str(tiny["policy"]))


def wrapper(parts, known_prompts=()):
    from rlhf.training.reward_wrapper import ReencodingRewardModel

    model, reward_tokenizer, policy_tokenizer = parts
    return ReencodingRewardModel(model, reward_tokenizer, policy_tokenizer, 512, known_prompts)


def policy_ids(tokenizer, prompt, response: str) -> tuple[list[int], list[int]]:
    """What PPO holds for a sample: the rendered prompt's ids and the response's ids ending with the EOS."""
    (query,) = encode_prompts(tokenizer, [prompt], 256)
    completion = render_chat(tokenizer, prompt, response)[1]
    return query, tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def direct_scores(bert_dir: Path, prompts: list, responses: list[str]) -> list[float]:
    from rlhf.training.scoring import score_texts

    return score_texts(bert_dir, prompts, responses)


def test_the_policy_template_header_of_the_tiny_hh_template_is_the_assistant_turn(parts):
    from rlhf.training.reward_wrapper import policy_template

    assert policy_template(parts[2]).header == "\n\nAssistant:"
    assert policy_template(parts[2]).default_system is None


def test_reward_of_a_known_prompt_equals_scoring_the_original_prompt_and_response_directly(tiny, parts):
    prompts = [TEXT_PROMPT, CHAT_PROMPT]
    ids = [policy_ids(parts[2], p, r) for p, r in zip(prompts, RESPONSES, strict=True)]
    rm = wrapper(parts, [(q, p) for (q, _), p in zip(ids, prompts, strict=True)])

    got = rm.score_ids([q for q, _ in ids], [r for _, r in ids])

    # A plain-text prompt stays plain text for the reward model, as in its training (GRPO does the same).
    assert got == pytest.approx(direct_scores(tiny["bert"], prompts, RESPONSES), abs=1e-5)
    assert rm.split(ids[1][0] + ids[1][1]) == (CHAT_PROMPT, " " + RESPONSES[1])


def test_reward_of_an_unknown_prompt_splits_at_the_last_assistant_header(tiny, parts):
    prompts = [TEXT_PROMPT, CHAT_PROMPT]
    ids = [policy_ids(parts[2], p, r) for p, r in zip(prompts, RESPONSES, strict=True)]
    rm = wrapper(parts)  # no known prompts: the rows are split as text

    got = rm.score_ids([q for q, _ in ids], [r for _, r in ids])

    # The template renders a text prompt as one user turn, so that is what the reward model reads back.
    as_chat = [[{"role": "user", "content": TEXT_PROMPT}], CHAT_PROMPT]
    assert got == pytest.approx(direct_scores(tiny["bert"], as_chat, RESPONSES), abs=1e-5)
    prompt, response = rm.split(ids[0][0] + ids[0][1])
    assert prompt == "\n\nHuman: " + TEXT_PROMPT + "\n\nAssistant:" and response == " " + RESPONSES[0]


def test_trl_get_reward_reads_each_rows_reward_at_its_last_response_token(tiny, parts):
    import torch
    from trl.experimental.utils import get_reward

    prompts, responses = [TEXT_PROMPT, CHAT_PROMPT, CHAT_PROMPT], [*RESPONSES, "Ok."]
    ids = [policy_ids(parts[2], p, r) for p, r in zip(prompts, responses, strict=True)]
    rm = wrapper(parts, [(q, p) for (q, _), p in zip(ids, prompts, strict=True)])
    pad = parts[2].pad_token_id
    width, length = max(len(q) for q, _ in ids), max(len(r) for _, r in ids)
    rows = [[pad] * (width - len(q)) + q + r + [pad] * (length - len(r)) for q, r in ids]  # as PPO lays them out

    logits, scores, ends = get_reward(rm, torch.tensor(rows), pad, width)

    assert logits.shape == (3, width + length, 1)
    assert ends.tolist() == [width + len(r) - 1 for _, r in ids]
    assert scores.tolist() == pytest.approx(direct_scores(tiny["bert"], prompts, responses), abs=1e-5)


@pytest.mark.slow
def test_ppo_with_a_bert_reward_model_on_another_tokenizer_trains_and_logs_a_reward(tmp_path, tiny):
    from rlhf.training.ppo import run_ppo
    from rlhf.training.ppo_config import PPORunConfig
    from rlhf.training.progress import ProgressEvent

    events: list[ProgressEvent] = []
    cfg = PPORunConfig(
        policy=str(tiny["policy"]),
        reward_model=str(tiny["bert"]),
        train_file=str(write_jsonl(tmp_path / "train.jsonl", demo_rows(16))),
        output_dir=str(tmp_path / "ppo"),
        total_episodes=8,
        per_device_train_batch_size=4,
        num_mini_batches=2,
        num_ppo_epochs=1,
        response_length=8,
        num_eval_prompts=2,
        eval_samples_per_prompt=1,
    )
    with one_thread():
        out = run_ppo(cfg, progress=events.append)

    assert any("reward model on another tokenizer: responses are decoded and re-encoded" in e.message for e in events)
    train = [e for e in events if e.stage == "train" and "ppo/mean_reward" in e.metrics]
    assert train and all(isinstance(e.metrics["ppo/mean_reward"], float) for e in train)
    assert all(e.metrics["ppo/value_loss"] == e.metrics["ppo/value_loss"] for e in train)  # not NaN
    assert events[-1].stage == "done" and (out / "samples.json").is_file()


@pytest.mark.slow
def test_smollm2_chatml_rows_split_into_messages_without_the_default_system_prompt(tiny, parts, smollm2_tokenizer):
    from rlhf.training.reward_wrapper import ReencodingRewardModel, policy_template

    template = policy_template(smollm2_tokenizer)
    assert template.header == "<|im_start|>assistant\n"
    assert template.default_system and "SmolLM" in template.default_system
    query, response = policy_ids(smollm2_tokenizer, CHAT_PROMPT, RESPONSES[0])
    assert response[-1] == smollm2_tokenizer.convert_tokens_to_ids("<|im_end|>")  # SmolLM2's EOS ends the turn
    rm = ReencodingRewardModel(parts[0], parts[1], smollm2_tokenizer, 512)

    assert rm.split(query + response) == (CHAT_PROMPT, RESPONSES[0])
    assert rm.score_ids([query], [response]) == pytest.approx(
        direct_scores(tiny["bert"], [CHAT_PROMPT], [RESPONSES[0]]), abs=1e-5
    )
