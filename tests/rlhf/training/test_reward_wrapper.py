"""ReencodingRewardModel: PPO with a reward model on another tokenizer (a tiny BERT behind a tiny GPT-2 policy); and
EnsembleRewardModel: several reward models, on either tokenizer, as PPO's one reward."""

from pathlib import Path
from typing import Any

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
    policy, reward = save_tiny_policy_and_reward_model(root, demo_rows(16))
    (root / "second").mkdir()
    return {
        "policy": policy,
        "gpt2_reward": reward,  # on the policy's tokenizer: read as it is
        "bert": save_tiny_bert_reward_model(root, demo_rows(16)),
        "bert2": save_tiny_bert_reward_model(root / "second", demo_rows(16)),  # other random weights
    }


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


def tiny_ppo_config(tmp_path: Path, tiny: dict[str, Path], **overrides):
    """A few PPO episodes of the tiny policy against the tiny BERT reward model (re-encoded)."""
    from rlhf.training.ppo_config import PPORunConfig

    settings = dict(
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
    )
    return PPORunConfig(**settings | overrides)


def run_ensemble_ppo(tmp_path: Path, tiny: dict[str, Path], **ensemble) -> tuple[Any, Path, list[str], dict]:
    """A tiny PPO run against an ensemble (`ensemble`: the reward_ensemble… settings): (config, output dir, progress
    messages, metrics.json)."""
    import json

    from rlhf.training.ppo import run_ppo

    events: list = []
    cfg = tiny_ppo_config(tmp_path, tiny, eval_samples_per_prompt=2, best_of_n=0, monitor_every=-1, **ensemble)
    with one_thread():
        out = run_ppo(cfg, progress=events.append)
    return cfg, out, [e.message for e in events], json.loads((out / "metrics.json").read_text())


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
    from rlhf.training.progress import ProgressEvent

    events: list[ProgressEvent] = []
    cfg = tiny_ppo_config(tmp_path, tiny, eval_samples_per_prompt=1)
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


def test_an_ensembles_rewards_combine_by_mean_mean_less_spread_or_worst_case():
    import torch

    from rlhf.training.reward_wrapper import combine_rewards

    stacked = torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 3.0]])  # 3 members x 2 responses
    assert combine_rewards(stacked, "mean").tolist() == pytest.approx([2.0, 1.0])
    spread = stacked.std(0, unbiased=False)
    assert combine_rewards(stacked, "mean-std", 0.5).tolist() == pytest.approx(
        (stacked.mean(0) - 0.5 * spread).tolist()
    )
    assert combine_rewards(stacked, "min").tolist() == [1.0, 0.0]
    assert combine_rewards(stacked[:1], "mean-std").tolist() == [1.0, 0.0]  # one member: no spread
    with pytest.raises(ValueError, match="mean, mean-std, min"):
        combine_rewards(stacked, "median")


def test_trl_get_reward_on_an_ensemble_reads_the_combination_of_each_members_reward(tiny, parts):
    """A native reward model (the policy's tokenizer) and two re-encoded BERTs: TRL's `get_reward` on the ensemble
    gives, for each row, the members' rewards as `get_reward` reads them one by one, combined."""
    import torch
    from trl.experimental.utils import get_reward

    from rlhf.training.ppo import reward_scorer
    from rlhf.training.reward_wrapper import EnsembleRewardModel, combine_rewards

    prompts, responses = [TEXT_PROMPT, CHAT_PROMPT, CHAT_PROMPT], [*RESPONSES, "Ok."]
    ids = [policy_ids(parts[2], p, r) for p, r in zip(prompts, responses, strict=True)]
    known = [(q, p) for (q, _), p in zip(ids, prompts, strict=True)]
    members = [reward_scorer(tiny[name], parts[2], known) for name in ("gpt2_reward", "bert", "bert2")]
    pad = parts[2].pad_token_id
    width, length = max(len(q) for q, _ in ids), max(len(r) for _, r in ids)
    rows = torch.tensor([[pad] * (width - len(q)) + q + r + [pad] * (length - len(r)) for q, r in ids])

    with torch.inference_mode():
        each = torch.stack([get_reward(m, rows, pad, width)[1] for m in members])
        _, scores, _ = get_reward(EnsembleRewardModel(members, "mean-std", 2.0), rows, pad, width)
        _, worst, _ = get_reward(EnsembleRewardModel(members, "min"), rows, pad, width)

    assert each.std(0).min() > 1e-4  # the members disagree, so the modes differ
    assert scores.tolist() == pytest.approx(combine_rewards(each, "mean-std", 2.0).tolist(), abs=1e-5)
    assert worst.tolist() == pytest.approx(each.min(0).values.tolist(), abs=1e-5)
    with pytest.raises(ValueError, match="ensemble mode must be one of"):
        EnsembleRewardModel(members, "vote")


def three_members(tiny: dict[str, Path], parts) -> tuple[list, list, list, int]:
    """Three samples on the policy's tokenizer and three reward models for them (a native GPT-2 reward model, two
    re-encoded BERTs): (query ids, response ids, members, pad id)."""
    from rlhf.training.ppo import reward_scorer

    prompts, responses = [TEXT_PROMPT, CHAT_PROMPT, CHAT_PROMPT], [*RESPONSES, "Ok."]
    ids = [policy_ids(parts[2], p, r) for p, r in zip(prompts, responses, strict=True)]
    queries, answers = [q for q, _ in ids], [r for _, r in ids]
    known = [(q, p) for q, p in zip(queries, prompts, strict=True)]
    members = [reward_scorer(tiny[name], parts[2], known) for name in ("gpt2_reward", "bert", "bert2")]
    return queries, answers, members, parts[2].pad_token_id


def test_held_out_scoring_reads_each_member_once_and_combines_as_the_ensemble_does(tiny, parts):
    """`score_members` (the held-out evaluation's scorer) gives the ensemble's own score, as PPO reads it, and each
    member's score of the same samples, without a second pass over the members; a single model has no members."""
    from rlhf.training.ppo import score_members, score_responses
    from rlhf.training.reward_wrapper import EnsembleRewardModel

    queries, answers, members, pad = three_members(tiny, parts)
    ensemble = EnsembleRewardModel(members, "mean-std", 0.5)

    scores, each = score_members(ensemble, queries, answers, pad)

    assert scores == pytest.approx(score_responses(ensemble, queries, answers, pad), abs=1e-5)
    by_member = [score_responses(m, queries, answers, pad) for m in members]
    assert [list(sample) for sample in each] == [pytest.approx(list(s), abs=1e-6) for s in zip(*by_member)]
    single, none = score_members(members[1], queries, answers, pad)
    assert single == pytest.approx(by_member[1], abs=1e-6) and none == [(), (), ()]


def test_a_calibrated_ensemble_combines_each_members_z_score_on_the_calibration_set(tiny, parts):
    """After `calibrate` each member's reward is its z-score on the calibration samples (mean 0, std 1 there), TRL's
    `get_reward` and `score_members` read the combination of those z-scores, and `score_members` still reports each
    member's own raw score."""
    import torch

    from rlhf.training.ppo import score_members, score_responses
    from rlhf.training.reward_wrapper import EnsembleRewardModel, combine_rewards

    queries, answers, members, pad = three_members(tiny, parts)
    raw = torch.tensor([score_responses(m, queries, answers, pad) for m in members])  # [members, samples]
    ensemble = EnsembleRewardModel(members, "mean-std", 0.5)
    assert score_responses(ensemble, queries, answers, pad) == pytest.approx(
        combine_rewards(raw, "mean-std", 0.5).tolist(), abs=1e-5
    )  # not calibrated: raw scores

    ensemble.calibrate(raw)
    z = (raw - raw.mean(1, keepdim=True)) / raw.std(1, unbiased=False, keepdim=True)
    # float32, and the tiny members' scores differ in the 4th decimal: z-scores to 1e-3
    assert ensemble.standardise(raw).mean(1).abs().max() < 1e-3
    assert ensemble.standardise(raw).std(1, unbiased=False).tolist() == pytest.approx([1.0] * 3, abs=1e-3)
    expected = combine_rewards(z, "mean-std", 0.5).tolist()
    assert score_responses(ensemble, queries, answers, pad) == pytest.approx(expected, abs=1e-3)
    scores, each = score_members(ensemble, queries, answers, pad)
    assert scores == pytest.approx(expected, abs=1e-3)
    assert [list(sample) for sample in each] == [pytest.approx(s, abs=1e-6) for s in raw.T.tolist()]
    with pytest.raises(ValueError, match="at least two samples"):
        ensemble.calibrate(raw[:, :1])
    with pytest.raises(ValueError, match=r"\[members, samples\]"):
        ensemble.calibrate(raw[:2])


@pytest.mark.slow
def test_ppo_with_a_normalised_ensemble_calibrates_on_training_prompts_and_optimises_the_z_scores(tmp_path, tiny):
    """`reward_ensemble_normalize`: before training the members are put on the reference's scale (its samples of the
    training prompts); the held-out combined score is then the mean of the members' z-scores."""
    cfg, out, messages, metrics = run_ensemble_ppo(
        tmp_path, tiny, reward_ensemble=[str(tiny["gpt2_reward"])], reward_ensemble_normalize=True
    )

    assert any("standardising the ensemble's members on the reference's samples of" in m for m in messages)
    center = [metrics[f"ppo/member{i}_calibration_mean"] for i in range(2)]
    scale = [metrics[f"ppo/member{i}_calibration_std"] for i in range(2)]
    assert min(scale) > 1e-6 and scale != pytest.approx([1.0, 1.0])
    for when in ("before", "after"):
        z = [(metrics[f"ppo/eval_member{i}_{when}"] - center[i]) / scale[i] for i in range(2)]
        assert metrics[f"ppo/eval_score_{when}"] == pytest.approx(sum(z) / 2, rel=1e-4, abs=1e-4)


@pytest.mark.slow
def test_ppo_against_an_ensemble_reports_each_members_held_out_gain(tmp_path, tiny):
    import json

    cfg, out, messages, metrics = run_ensemble_ppo(
        tmp_path, tiny, reward_ensemble=[str(tiny["gpt2_reward"]), str(tiny["bert2"])], reward_ensemble_mode="mean-std"
    )

    assert any("the reward is an ensemble of 3 reward models, combined by mean-std" in m for m in messages)
    for i in range(3):
        before, after, gain = (metrics[f"ppo/eval_member{i}_{k}"] for k in ("before", "after", "gain_std"))
        assert gain == pytest.approx((after - before) / metrics[f"ppo/eval_member{i}_std"], rel=1e-6, abs=1e-9)
    # the combined reward is mean-std of the members: below their mean on the same samples
    assert metrics["ppo/eval_score_before"] < sum(metrics[f"ppo/eval_member{i}_before"] for i in range(3)) / 3
    assert json.loads((out / "training_config.json").read_text())["reward_ensemble"] == cfg.reward_ensemble
