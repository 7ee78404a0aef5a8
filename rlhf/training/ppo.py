"""PPO against a trained reward model: TRL's PPOTrainer (`trl.experimental.ppo`, trl==1.12.0). Plain Python.

    python -m rlhf.training.ppo --config configs/ppo.example.yaml
    python -m rlhf.training.ppo --policy runs/sft --reward_model runs/reward --train_file train.jsonl

Policy: any causal LM (id, path or an earlier run's output). Reference: a frozen copy of the initial policy (with
LoRA: the adapter-free model). Reward model: any reward-model run (a one-output sequence classifier). On the policy's
tokenizer TRL scores the policy's token ids directly and the value model starts from the reward model; on another
tokenizer (the MiniLM default) it is wrapped (`reward_wrapper.ReencodingRewardModel`: responses are decoded and
re-encoded as in reward-model training) and the value model starts from the policy with a new one-output head.
Prompts: the `prompt` of each row of `train_file` (text, or chat messages through the tokenizer's chat template),
left-padded; held-out prompts are sampled before and after training and scored side by side (samples.json).

This module is the only place that imports `trl.experimental.ppo` (TRL removed PPO after 1.12.0).
"""

import copy
import json
import math
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

from rlhf.training.diversity import cost_warnings, perplexity, sample_set_metrics
from rlhf.training.generation import encode_prompts, read_prompts, sample_ids, split_held_out
from rlhf.training.ppo_config import PPORunConfig
from rlhf.training.progress import ProgressCallback, ProgressEvent, emit

# We pin trl==1.12.0 for this module (the last release with PPO), so TRL's "experimental API" warning says nothing new.
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

# TRL's log keys -> our slash names (see PPOTrainer.train).
PPO_LOG_KEYS = {
    "objective/scores": "ppo/mean_reward",
    "objective/kl": "ppo/kl",
    "objective/entropy": "ppo/entropy",
    "objective/non_score_reward": "ppo/non_score_reward",
    "objective/rlhf_reward": "ppo/rlhf_reward",
    "policy/entropy_avg": "ppo/token_entropy",
    "policy/approxkl_avg": "ppo/approx_kl",
    "policy/clipfrac_avg": "ppo/clipfrac",
    "loss/policy_avg": "ppo/policy_loss",
    "loss/value_avg": "ppo/value_loss",
    "val/clipfrac_avg": "ppo/value_clipfrac",
    "val/ratio": "ppo/ratio",
    "val/ratio_var": "ppo/ratio_var",
    "val/num_eos_tokens": "ppo/num_eos_tokens",
    "lr": "ppo/learning_rate",
    "episode": "ppo/episode",
    "eps": "ppo/episodes_per_s",
    "kl_coef": "ppo/kl_coef",
    "epoch": "ppo/epoch",
    "monitor/reward_gain_std": "ppo/monitor_reward_gain_std",
    "monitor/second_gain_std": "ppo/monitor_second_gain_std",
    "monitor/gap": "ppo/monitor_gap",
    "monitor/length": "ppo/monitor_length",
}
REENCODING_NOTE = (
    "NOTE: reward model on another tokenizer: responses are decoded and re-encoded for it ({detail}); the value model "
    "starts from the policy with a new value head."
)
ENSEMBLE_NOTE = "NOTE: the reward is an ensemble of {n} reward models, combined by {mode}."
NO_SCORE_HEAD = (
    "The reward model {rm} is a {cls}, not a one-output sequence classifier; PPO needs a reward-model run "
    "(…ForSequenceClassification with num_labels=1, on any tokenizer)."
)
NO_VALUE_HEAD = (
    "The policy {policy} has no sequence-classification form with a `score` head ({cls}), so PPO cannot start a "
    "value model from it for a reward model on another tokenizer. Use a reward model on the policy's tokenizer, or "
    "GRPO/RLOO."
)


# --- checks --------------------------------------------------------------------------------------------------------


def _comparable_vocab(tokenizer: Any) -> dict[str, int]:
    """The vocabulary without a dedicated pad token (one may have been added for PPO, at the end of the vocab)."""
    vocab = dict(tokenizer.get_vocab())
    if tokenizer.pad_token is not None and tokenizer.pad_token != tokenizer.eos_token:
        vocab.pop(tokenizer.pad_token, None)
    return vocab


def tokenizer_difference(policy_tokenizer: Any, reward_tokenizer: Any) -> str | None:
    """None when the two tokenizers map text to the same ids; else a short description of the difference."""
    a, b = _comparable_vocab(policy_tokenizer), _comparable_vocab(reward_tokenizer)
    if a != b:
        only_a, only_b = len(a.keys() - b.keys()), len(b.keys() - a.keys())
        moved = sum(1 for k in a.keys() & b.keys() if a[k] != b[k])
        return (
            f"vocabularies of {len(a)} and {len(b)} tokens: {only_a} only in the policy's, {only_b} only in the "
            f"reward model's, {moved} with different ids"
        )
    if policy_tokenizer.eos_token != reward_tokenizer.eos_token:
        return f"EOS {policy_tokenizer.eos_token!r} vs {reward_tokenizer.eos_token!r}"
    return None


def check_reward_model(reward_dir: str | Path, policy_tokenizer: Any) -> str | None:
    """Refuse, with a clear message, a reward model that cannot be scored at all; return how its tokenizer differs
    from the policy's (None when it is the same: no re-encoding)."""
    from transformers import AutoConfig, AutoTokenizer

    path = Path(reward_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a trained reward model (no config.json).")
    config = AutoConfig.from_pretrained(str(path))
    architectures = config.architectures or []
    if not any(name.endswith("ForSequenceClassification") for name in architectures) or config.num_labels != 1:
        raise ValueError(NO_SCORE_HEAD.format(rm=path, cls=", ".join(architectures) or config.model_type))
    return tokenizer_difference(policy_tokenizer, AutoTokenizer.from_pretrained(str(path)))


def _load_scorer(path: str | Path, pad_token_id: int) -> Any:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1)
    model.config.pad_token_id = pad_token_id
    return model


def _reencoding_reward_model(path: str | Path, tokenizer: Any, known_prompts: list[tuple[list[int], Any]]) -> Any:
    """The reward model behind `ReencodingRewardModel`, reading as many tokens as it was trained with."""
    from rlhf.training.evaluate import DEFAULT_MAX_LENGTH, trained_max_length
    from rlhf.training.reward_wrapper import ReencodingRewardModel
    from rlhf.training.scoring import load_reward_model

    model, reward_tokenizer = load_reward_model(path)
    max_length = trained_max_length(Path(path)) or DEFAULT_MAX_LENGTH
    return ReencodingRewardModel(model, reward_tokenizer, tokenizer, max_length, known_prompts)


def _value_model_from_policy(source: str, tokenizer: Any) -> Any:
    """The policy as a one-output sequence classifier (a new, randomly initialised value head), pad token set."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    if not hasattr(model, "score"):
        raise ValueError(NO_VALUE_HEAD.format(policy=source, cls=type(model).__name__))
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:  # a pad token added for PPO
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def reward_and_value_models(
    cfg: PPORunConfig, policy: Any, tokenizer: Any, known_prompts: list[tuple[list[int], Any]]
) -> tuple[Any, Any]:
    """(reward model, value model). On the policy's tokenizer, with a `score` head: the reward model as it is and a
    copy as the value model. Otherwise the re-encoding wrapper, and the value model from the policy."""
    from transformers import AutoTokenizer

    from rlhf.training.models import resolve_model

    if tokenizer_difference(tokenizer, AutoTokenizer.from_pretrained(str(cfg.reward_model))) is None:
        reward_model = _load_scorer(cfg.reward_model, tokenizer.pad_token_id)
        if hasattr(reward_model, "score"):
            value_model = _load_scorer(cfg.reward_model, tokenizer.pad_token_id)
            return _with_ensemble(cfg, reward_model, tokenizer, known_prompts), value_model
    source = getattr(policy, "name_or_path", "") or resolve_model(cfg.policy)
    value_model = _value_model_from_policy(str(source), tokenizer)
    reward_model = _reencoding_reward_model(cfg.reward_model, tokenizer, known_prompts)
    return _with_ensemble(cfg, reward_model, tokenizer, known_prompts), value_model


def _with_ensemble(cfg: PPORunConfig, reward_model: Any, tokenizer: Any, known_prompts: list) -> Any:
    """The reward model alone, or with `reward_ensemble`'s runs (each on its own tokenizer or the policy's) as one
    `EnsembleRewardModel`."""
    if not cfg.reward_ensemble:
        return reward_model
    from rlhf.training.reward_wrapper import EnsembleRewardModel

    members = [reward_model, *(reward_scorer(path, tokenizer, known_prompts) for path in cfg.reward_ensemble)]
    return EnsembleRewardModel(members, cfg.reward_ensemble_mode, cfg.reward_ensemble_std_weight)


def reward_scorer(path: str | Path, tokenizer: Any, known_prompts: list[tuple[list[int], Any]]) -> Any:
    """A reward model that `score_responses` can call on the policy's token ids: as it is on the policy's tokenizer
    (with a `score` head), else behind the re-encoding wrapper. Used for the second opinion."""
    from transformers import AutoTokenizer

    check_reward_model(path, tokenizer)
    if tokenizer_difference(tokenizer, AutoTokenizer.from_pretrained(str(path))) is None:
        model = _load_scorer(path, tokenizer.pad_token_id)
        if hasattr(model, "score"):
            return model.eval()
    return _reencoding_reward_model(path, tokenizer, known_prompts)


def freeze_value_model(value_model: Any, top_layers: int) -> None:
    """Train only the value model's top `top_layers` decoder layers and its head (0 = everything)."""
    from rlhf.training.reward_model import _layer_list, freeze_lower_layers

    layers = _layer_list(value_model.base_model)
    if top_layers > 0 and layers is not None and top_layers < len(layers):
        freeze_lower_layers(value_model, len(layers) - top_layers)


# --- samples -------------------------------------------------------------------------------------------------------


def score_responses(reward_model: Any, query_ids: list[list[int]], response_ids: list[list[int]], pad: int) -> list:
    """Rewards exactly as PPO computes them: left-padded query + response, read at the response's last token."""
    import torch
    from trl.experimental.utils import get_reward

    width = max(len(q) for q in query_ids)
    length = max(1, max(len(r) for r in response_ids))
    rows = [
        [pad] * (width - len(q)) + q + r + [pad] * (length - len(r))
        for q, r in zip(query_ids, response_ids, strict=True)
    ]
    device = next(reward_model.parameters()).device
    with torch.inference_mode():
        _, scores, _ = get_reward(reward_model, torch.tensor(rows, device=device), pad, width)
    return [float(s) for s in scores]


class Samples(NamedTuple):
    """Samples of the held-out prompts, grouped by prompt, one entry per sample in every field."""

    texts: list[str]
    rewards: list[float]  # as PPO optimises them (the missing-EOS penalty included)
    scores: list[float]  # the reward model's alone (an ensemble's combined score)
    responses: list[list[int]]
    member_scores: list[tuple[float, ...]]  # with an ensemble each member's score, else ()


def score_members(
    reward_model: Any, query_ids: list[list[int]], response_ids: list[list[int]], pad: int
) -> tuple[list[float], list[tuple[float, ...]]]:
    """(scores, each sample's member scores). An ensemble's members are each scored once and their scores combined as
    the ensemble combines them (standardising and `combine_rewards` are elementwise, so combining the scores read at
    the last token equals reading the combined rewards there), so member figures cost no second pass; the member
    scores are each member's own (raw); a single model has no members (())."""
    import torch

    from rlhf.training.reward_wrapper import EnsembleRewardModel, combine_rewards

    if not isinstance(reward_model, EnsembleRewardModel):
        return score_responses(reward_model, query_ids, response_ids, pad), [()] * len(response_ids)
    each = [score_responses(member, query_ids, response_ids, pad) for member in reward_model.members]
    stacked = reward_model.standardise(torch.tensor(each))
    combined = combine_rewards(stacked, reward_model.mode, reward_model.std_weight)
    return [float(s) for s in combined], list(zip(*each, strict=True))


def sample_and_score(
    cfg: PPORunConfig, policy: Any, reward_model: Any, tokenizer: Any, prompt_ids: list, per_prompt: int | None = None
) -> Samples:
    """`per_prompt` (default `eval_samples_per_prompt`) samples of each held-out prompt, scored."""
    from rlhf.training.generation import decode_response

    per_prompt = per_prompt or cfg.eval_samples_per_prompt
    repeated = [ids for ids in prompt_ids for _ in range(per_prompt)]
    if not repeated:
        return Samples([], [], [], [], [])
    responses = sample_ids(
        policy,
        tokenizer,
        repeated,
        cfg.response_length,
        cfg.temperature,
        top_p=cfg.top_p,
        repetition_penalty=cfg.repetition_penalty,
    )
    scores, members = score_members(reward_model, repeated, responses, tokenizer.pad_token_id)
    rewards = eos_penalised(cfg, tokenizer, scores, responses)
    return Samples([decode_response(tokenizer, ids) for ids in responses], rewards, scores, responses, members)


CALIBRATION_PROMPTS = 64  # training prompts whose reference samples put an ensemble's members on one scale
CALIBRATION_NOTE = "standardising the ensemble's members on the reference's samples of {n} training prompts"


def calibrate_ensemble(
    cfg: PPORunConfig, policy: Any, ensemble: Any, tokenizer: Any, prompt_ids: list
) -> dict[str, float]:
    """`reward_ensemble_normalize`: one sample of each prompt from `policy` (the reference, before training), scored
    by each member; the ensemble then combines the members' z-scores on those samples (`EnsembleRewardModel.
    calibrate`). Training prompts, so the held-out figures stay untouched by it. Returns each member's mean and
    standard deviation there (metrics)."""
    import torch

    samples = sample_and_score(cfg, policy, ensemble, tokenizer, prompt_ids, 1)
    ensemble.calibrate(torch.tensor(samples.member_scores).T)
    return {
        f"ppo/member{i}_calibration_{name}": float(values[i])
        for name, values in (("mean", ensemble.center), ("std", ensemble.scale))
        for i in range(len(ensemble.members))
    }


def eos_penalised(cfg: PPORunConfig, tokenizer: Any, scores: list[float], responses: list) -> list[float]:
    """The rewards PPO optimises: the scores less the missing-EOS penalty of responses that never ended."""
    if cfg.missing_eos_penalty is None or cfg.stop_token != "eos":
        return scores
    return [
        r - cfg.missing_eos_penalty * (tokenizer.eos_token_id not in ids)
        for r, ids in zip(scores, responses, strict=True)
    ]


def member_metrics(before: Samples, after: Samples) -> dict[str, float]:
    """With a reward-model ensemble: each member's held-out gain on the same samples as `ppo/eval_member<i>_…` (member
    0 = `reward_model`), from its scores alone (no missing-EOS penalty, as `ppo/eval_score_…`). Empty for a single
    reward model."""
    if not before.member_scores or not after.member_scores or not before.member_scores[0]:
        return {}
    metrics: dict[str, float] = {}
    by_member = [list(zip(*samples.member_scores, strict=True)) for samples in (before, after)]
    for i, (was, now) in enumerate(zip(*by_member, strict=True)):
        metrics |= sample_metrics(list(was), list(now), name=f"member{i}")
    return metrics


def side_by_side(
    prompts: list, before: tuple, after: tuple, second: tuple[list, list] | None = None
) -> list[dict[str, Any]]:
    """One row per policy sample: the reference's sample of the same prompt with the same index next to it (the
    reference has at least as many samples per prompt), both rewards, and the second reward model's scores."""
    k_after = len(after[0]) // max(len(prompts), 1)
    k_before = len(before[0]) // max(len(prompts), 1)
    rows = []
    for i in range(len(after[0])):
        j = (i // k_after) * k_before + i % k_after
        row = {
            "prompt": prompts[i // k_after],
            "before": before[0][j],
            "before_reward": round(before[1][j], 4),
            "after": after[0][i],
            "after_reward": round(after[1][i], 4),
        }
        if second is not None:
            row["before_second"], row["after_second"] = round(second[0][j], 4), round(second[1][i], 4)
        rows.append(row)
    return rows


def sample_metrics(before: list[float], after: list[float], name: str = "reward") -> dict[str, float]:
    """Mean reward before (the reference's samples) and after, and the gain in units of the standard deviation of
    the reference's rewards on the same prompts."""
    import numpy as np

    if not before or not after:
        return {}
    std = float(np.std(before)) or 1.0
    gain = float(np.mean(after) - np.mean(before))
    return {
        f"ppo/eval_{name}_before": float(np.mean(before)),
        f"ppo/eval_{name}_after": float(np.mean(after)),
        f"ppo/eval_{name}_std": float(np.std(before)),
        f"ppo/eval_{name}_gain": gain,
        f"ppo/eval_{name}_gain_std": gain / std,
    }


def best_of_n_metrics(rewards: list[float], per_prompt: int, others: dict[str, list[float]]) -> dict[str, float]:
    """Best-of-n from the reference (Nakano et al. 2021; Gao et al. 2023): each prompt's samples split into groups
    of n, the highest-`rewards` sample of each group kept; its mean gain over the reference's mean, in units of the
    reference's std, for `rewards` and for every other scorer in `others` (on the same picks), for n = 4 and
    n = per_prompt."""
    import numpy as np

    if not rewards or per_prompt < 2:
        return {}
    metrics: dict[str, float] = {}
    scorers = {"reward": rewards, **others}
    for n in sorted({k for k in (4, per_prompt) if 2 <= k <= per_prompt}):
        picks = []
        for start in range(0, len(rewards), per_prompt):
            for group in range(start, start + per_prompt - n + 1, n):
                picks.append(max(range(group, group + n), key=lambda i: rewards[i]))
        for name, values in scorers.items():
            std = float(np.std(values)) or 1.0
            gain = float(np.mean([values[i] for i in picks]) - np.mean(values))
            metrics[f"ppo/best_of_{n}_{name}_gain_std"] = gain / std
    return metrics


# --- warnings ------------------------------------------------------------------------------------------------------


class Watch:
    """Wraps the progress callback: flags KL past the threshold and entropy collapse as the metrics arrive."""

    def __init__(
        self, progress: ProgressCallback | None, kl_threshold: float, collapse_ratio: float, gap: float = 1.0
    ) -> None:
        self.progress, self.kl_threshold, self.collapse_ratio, self.gap = progress, kl_threshold, collapse_ratio, gap
        self.first_entropy: float | None = None
        self.warnings: list[str] = []
        self._kinds: set[str] = set()

    def check(self, step: int, metrics: dict[str, float]) -> list[str]:
        new = []
        kl, entropy = metrics.get("ppo/kl"), metrics.get("ppo/token_entropy")
        if kl is not None and kl > self.kl_threshold and "kl" not in self._kinds:
            new.append(
                f"KL to the reference reached {kl:.2f} nats per response at step {step} (threshold "
                f"{self.kl_threshold:g}): the policy is drifting; raise kl_coef or lower the learning rate."
            )
            self._kinds.add("kl")
        if entropy is not None and self.first_entropy is None:
            self.first_entropy = entropy
        elif (
            entropy is not None and entropy < self.collapse_ratio * self.first_entropy and "entropy" not in self._kinds
        ):
            new.append(
                f"Entropy collapsed to {entropy:.3f} nats per token at step {step} (from {self.first_entropy:.3f}): "
                "the policy's outputs are losing diversity, a known effect of RL; check the samples."
            )
            self._kinds.add("entropy")
        gap = metrics.get("ppo/monitor_gap")
        if gap is not None and gap > self.gap and "gap" not in self._kinds:
            new.append(
                f"The reward model's gain on held-out prompts exceeds the second reward model's by {gap:.2f} standard "
                f"deviations at step {step} (threshold {self.gap:g}): the policy may be exploiting the reward model "
                "(reward hacking); read the samples."
            )
            self._kinds.add("gap")
        self.warnings += new
        return new

    def __call__(self, event: ProgressEvent) -> None:
        new = self.check(event.step, event.metrics)
        if new:
            event.message = " ".join([event.message, *[f"WARNING: {w}" for w in new]]).strip()
            event.metrics = {**event.metrics, "ppo/warnings": float(len(self.warnings))}
        emit(self.progress, event)


# --- the monitor ---------------------------------------------------------------------------------------------------


class Reference:
    """The reference's held-out samples at the start: each scorer's mean and std (the unit of every gain)."""

    def __init__(self, scores: dict[str, list[float]], n_first: int | None = None) -> None:
        """`n_first`: the means are over the first n_first samples only (the monitor's prompts: a gain compares the
        same prompts), the stds over all of them (the same unit as the final figures)."""
        import numpy as np

        self.mean = {name: float(np.mean(v[:n_first] if n_first else v)) for name, v in scores.items() if v}
        self.std = {name: float(np.std(v)) or 1.0 for name, v in scores.items() if v}

    def gain(self, name: str, values: list[float]) -> float | None:
        if name not in self.mean or not values:
            return None
        return (sum(values) / len(values) - self.mean[name]) / self.std[name]


def monitor_callback(cfg: PPORunConfig, out: Path, tokenizer: Any, prompt_ids: list) -> Any:
    """A TrainerCallback that, every `every` batches (set by run_ppo), samples the monitor prompts from the current
    policy, scores them with the reward model and the second one, adds `monitor/reward_gain_std`,
    `monitor/second_gain_std` and `monitor/gap` (their difference) to the batch's logs (-> ppo/monitor_… on the
    run's charts) and rewrites `samples_live.json` (reference vs policy, the run page's table while it runs).
    `trainer`, `reward`, `second`, `reference` and `rows` (the reference's samples of the monitor prompts, two per
    prompt) are set by run_ppo once the trainer exists."""
    from transformers import TrainerCallback

    class Monitor(TrainerCallback):
        every = 0
        trainer: Any = None
        reward: Any = None
        second: Any = None
        reference: Reference | None = None
        rows: list[dict] = []

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if not logs or "objective/kl" not in logs or self.every <= 0 or state.global_step % self.every:
                return
            logs.update(self.measure(state.global_step))

        def measure(self, step: int) -> dict[str, float]:
            policy = self.trainer.accelerator.unwrap_model(self.trainer.model).policy
            texts, _, scores, responses, _ = sample_and_score(cfg, policy, self.reward, tokenizer, prompt_ids, 2)
            repeated = [ids for ids in prompt_ids for _ in range(2)]
            logs = {"monitor/reward_gain_std": self.reference.gain("score", scores),
                    "monitor/length": sum(map(len, responses)) / max(len(responses), 1)}  # fmt: skip
            rows = [{**ref, "step": step, "after": text, "after_reward": round(score, 4)}
                    for ref, text, score in zip(self.rows, texts, scores, strict=False)]  # fmt: skip
            if self.second is not None:
                second = score_responses(self.second, repeated, responses, tokenizer.pad_token_id)
                logs["monitor/second_gain_std"] = self.reference.gain("second", second)
                logs["monitor/gap"] = logs["monitor/reward_gain_std"] - logs["monitor/second_gain_std"]
                for row, value in zip(rows, second, strict=False):
                    row["after_second"] = round(value, 4)
            (out / "samples_live.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False))
            return {k: v for k, v in logs.items() if v is not None}

    return Monitor()


# --- adaptive KL ---------------------------------------------------------------------------------------------------


def adaptive_kl_coef(
    kl_coef: float, kl: float, target: float, episodes: int, horizon: int, floor: float = 0.0
) -> float:
    """One step of the proportional controller of Ziegler et al. 2019 ("Fine-Tuning Language Models from Human
    Preferences", eq. 2), as old TRL's AdaptiveKLController had it: the error is clipped to +-20% so that one noisy
    batch cannot swing the coefficient, and scaled by the batch's share of the horizon. `floor` (our addition) keeps
    the coefficient from sinking below a minimum while the KL is still under its target: in short CPU runs the
    coefficient otherwise fell to a fifth of its start in the first half and the KL then overshot the target for
    several batches before the controller caught up (docs/benchmarks.md, PPO run 11)."""
    error = min(max(kl / target - 1.0, -0.2), 0.2)
    return max(kl_coef * (1.0 + error * episodes / horizon), floor)


def kl_controller(target: float | None, horizon: int, floor: float = 0.0) -> Any:
    """A TrainerCallback that logs the batch's `kl_coef` (-> ppo/kl_coef in the run's metrics) and, with a target,
    applies `adaptive_kl_coef` after each PPO batch. PPOTrainer reads `args.kl_coef` when it computes each batch's
    rewards, so the new value takes effect from the next batch."""
    from transformers import TrainerCallback

    class AdaptiveKL(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if not logs or "objective/kl" not in logs:
                return
            logs["kl_coef"] = args.kl_coef  # the coefficient this batch was trained with
            if target is None:
                return
            episodes = args.batch_size  # set by PPOTrainer: episodes per batch over all processes
            kl = float(logs["objective/kl"])
            args.kl_coef = adaptive_kl_coef(args.kl_coef, kl, target, episodes, horizon, floor)

    return AdaptiveKL()


# --- training ------------------------------------------------------------------------------------------------------


def trl_ppo_config(cfg: PPORunConfig, out: Path) -> Any:
    from trl.experimental.ppo import PPOConfig

    from rlhf.training.reward_model import resolve_bf16

    return PPOConfig(
        output_dir=str(out),
        total_episodes=cfg.total_episodes,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_mini_batches=cfg.num_mini_batches,
        local_rollout_forward_batch_size=cfg.local_rollout_forward_batch_size,
        num_ppo_epochs=cfg.num_ppo_epochs,
        response_length=cfg.response_length,
        kl_coef=cfg.kl_coef,
        kl_estimator=cfg.kl_estimator,
        cliprange=cfg.cliprange,
        cliprange_value=cfg.cliprange_value,
        vf_coef=cfg.vf_coef,
        gamma=cfg.gamma,
        lam=cfg.lam,
        whiten_rewards=cfg.whiten_rewards,
        temperature=cfg.temperature,
        stop_token="eos" if cfg.stop_token == "eos" else None,
        missing_eos_penalty=cfg.missing_eos_penalty,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type,
        seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        num_sample_generations=0,  # our own before/after samples replace TRL's printed tables
        save_strategy="no",
        report_to=[] if cfg.report_to == "none" else [cfg.report_to],
        bf16=resolve_bf16(cfg.bf16),
        gradient_checkpointing=False,
        disable_tqdm=True,
    )


def _prompts(cfg: PPORunConfig) -> tuple[list, list]:
    prompts = read_prompts(cfg.train_file)
    if cfg.eval_file:
        return prompts, read_prompts(cfg.eval_file)[: cfg.num_eval_prompts]
    return split_held_out(prompts, cfg.num_eval_prompts)


def _prompt_budget(cfg: PPORunConfig, policy: Any) -> int:
    limit = getattr(policy.config, "max_position_embeddings", None) or getattr(policy.config, "n_positions", None)
    if limit and cfg.response_length >= limit:
        raise ValueError(f"response_length={cfg.response_length} leaves no room for a prompt in {limit} positions.")
    return min(cfg.max_prompt_length, limit - cfg.response_length) if limit else cfg.max_prompt_length


def _peft_config(cfg: PPORunConfig, policy: Any = None) -> Any:
    if not cfg.use_lora:
        return None
    from peft import LoraConfig

    from rlhf.training.reward_model import _lora_targets

    n_layers = getattr(getattr(policy, "config", None), "num_hidden_layers", None)
    top = cfg.lora_top_layers if n_layers and 0 < cfg.lora_top_layers < n_layers else 0
    return LoraConfig(
        task_type="CAUSAL_LM",
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        # the linear layers of the top `top` decoder layers by name (torch Linear layers: Llama, not GPT-2's Conv1D),
        # else every linear layer but the output head
        target_modules=(_lora_targets(policy, n_layers - top) if top else None) or "all-linear",
    )


def build_trainer(
    cfg: PPORunConfig,
    out: Path,
    policy: Any,
    tokenizer: Any,
    train_ids: list,
    callbacks: list,
    known_prompts: list[tuple[list[int], Any]] | None = None,
) -> Any:
    """TRL's PPOTrainer on our models and prompts (also used by the benchmark's bare-TRL baseline). `known_prompts`
    ((prompt ids, original prompt) pairs) let a re-encoding reward model split rows exactly."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl.experimental.ppo import PPOTrainer

    reward_model, value_model = reward_and_value_models(cfg, policy, tokenizer, known_prompts or [])
    freeze_value_model(value_model, cfg.value_top_layers)
    tokenizer.padding_side = "left"  # prompts end where generation starts
    trainer = PPOTrainer(
        args=trl_ppo_config(cfg, out),
        processing_class=tokenizer,
        model=policy,
        ref_model=None if cfg.use_lora else copy.deepcopy(policy),
        reward_model=reward_model,
        value_model=value_model,
        train_dataset=Dataset.from_dict({"input_ids": train_ids}),
        eval_dataset=Dataset.from_dict({"input_ids": train_ids[:1]}),
        peft_config=_peft_config(cfg, policy),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def run_ppo(cfg: PPORunConfig, progress: ProgressCallback | None = None) -> Path:
    """Optimise the policy against the reward model; save policy, tokenizer, samples.json, metrics.json and
    training_config.json; returns the output dir. A TrainingCancelled raised by `progress` propagates."""
    from transformers import set_seed

    from rlhf.training.causal_defaults import load_causal_lm, set_generation_defaults
    from rlhf.training.reward_model import _merged
    from rlhf.training.sft import trainer_progress

    unused = cfg.ensemble_settings_error()
    if unused:
        raise ValueError(unused)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    emit(progress, ProgressEvent(0, 0, message=f"loading {cfg.policy} and {cfg.reward_model}", stage="setup"))
    train_prompts, eval_prompts = _prompts(cfg)
    set_seed(cfg.seed)
    policy, tokenizer = load_causal_lm(cfg.policy)
    difference = check_reward_model(cfg.reward_model, tokenizer)
    if difference:
        emit(progress, ProgressEvent(0, 0, message=REENCODING_NOTE.format(detail=difference), stage="setup"))
    if cfg.reward_ensemble:
        message = ENSEMBLE_NOTE.format(n=1 + len(cfg.reward_ensemble), mode=cfg.reward_ensemble_mode)
        emit(progress, ProgressEvent(0, 0, message=message, stage="setup"))
    budget = _prompt_budget(cfg, policy)
    train_ids, eval_ids = (
        encode_prompts(tokenizer, train_prompts, budget),
        encode_prompts(tokenizer, eval_prompts, budget),
    )
    n_batches = math.ceil(cfg.total_episodes / (cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps))
    message = f"{len(train_ids)} train prompts, {len(eval_ids)} held out; {cfg.total_episodes} episodes"
    emit(progress, ProgressEvent(0, n_batches, {"ppo/train_prompts": len(train_ids)}, message, "setup"))

    watch = Watch(progress, cfg.kl_warning_threshold, cfg.entropy_collapse_ratio, cfg.hacking_warning_gap)
    boundary = prompt_boundary(cfg, train_prompts, eval_prompts)
    if boundary.get("warning"):
        watch.warnings.append(boundary["warning"])
        emit(progress, ProgressEvent(0, n_batches, message=f"WARNING: {boundary['warning']}", stage="setup"))
    bridge = trainer_progress(watch, PPO_LOG_KEYS, "ppo")
    monitor_ids = eval_ids[: cfg.monitor_prompts]
    monitor = monitor_callback(cfg, out, tokenizer, monitor_ids)
    # the controller and the monitor first: they add to the logs the bridge reports
    callbacks = [kl_controller(cfg.kl_target, cfg.kl_horizon, cfg.kl_coef_min), monitor, bridge]
    known = [*zip(train_ids, train_prompts, strict=True), *zip(eval_ids, eval_prompts, strict=True)]
    trainer = build_trainer(cfg, out, policy, tokenizer, train_ids, callbacks, known)
    second = reward_scorer(cfg.second_reward_model, tokenizer, known) if cfg.second_reward_model else None
    calibration = {}
    if cfg.reward_ensemble and cfg.reward_ensemble_normalize:
        message = CALIBRATION_NOTE.format(n=min(CALIBRATION_PROMPTS, len(train_ids)))
        emit(progress, ProgressEvent(0, n_batches, message=message, stage="setup"))
        calibration = calibrate_ensemble(cfg, policy, trainer.reward_model, tokenizer, train_ids[:CALIBRATION_PROMPTS])

    emit(progress, ProgressEvent(0, n_batches, message=f"sampling {len(eval_ids)} held-out prompts", stage="eval"))
    eval_started = time.monotonic()
    k_ref = max(cfg.best_of_n, cfg.eval_samples_per_prompt)
    before = sample_and_score(cfg, policy, trainer.reward_model, tokenizer, eval_ids, k_ref)
    repeated = [ids for ids in eval_ids for _ in range(k_ref)]
    second_all = score_responses(second, repeated, before[3], tokenizer.pad_token_id) if second and before[0] else []
    # distinct-n depends on how much text it counts: the reference's side of the cost metrics is the same number of
    # samples per prompt as the policy's (its first eval_samples_per_prompt); best-of-n uses all k_ref
    k = cfg.eval_samples_per_prompt
    before_eval = evaluate_samples(cfg, first_per_prompt(before, k_ref, k), k, eval_ids, policy, tokenizer, None)
    before_eval.pop("second_scores")
    monitor.trainer, monitor.reward, monitor.second = trainer, trainer.reward_model, second
    # the monitor's prompts are the first held-out ones: its gains are against their own reference samples
    monitor.reference = Reference({"score": before[2], "second": second_all}, n_first=len(monitor_ids) * k_ref)
    monitor.rows = monitor_rows(eval_prompts, before, k_ref, len(monitor_ids), second_all)
    monitor.every = _monitor_every(cfg, n_batches)
    eval_s = time.monotonic() - eval_started

    set_seed(cfg.seed)
    train_started = time.monotonic()
    trainer.train()
    train_s = time.monotonic() - train_started
    steps = trainer.state.global_step

    emit(progress, ProgressEvent(steps, steps, message="sampling the held-out prompts again", stage="eval"))
    eval_started = time.monotonic()
    trained = trainer.accelerator.unwrap_model(trainer.model).policy
    after = sample_and_score(cfg, trained, trainer.reward_model, tokenizer, eval_ids)
    with _reference_of(trainer, trained) as reference_model:
        after_eval = evaluate_samples(
            cfg, after, cfg.eval_samples_per_prompt, eval_ids, reference_model, tokenizer, second
        )
    eval_s += time.monotonic() - eval_started
    second_scores = (second_all, after_eval.pop("second_scores"))
    samples = side_by_side(eval_prompts, before, after, second_scores if second is not None else None)

    emit(progress, ProgressEvent(steps, steps, message=f"saving to {out}", stage="save"))
    policy = _merged(trained)
    set_generation_defaults(policy, tokenizer)
    tokenizer.padding_side = "left"
    policy.save_pretrained(out)
    tokenizer.save_pretrained(out)
    metrics = _final_metrics(cfg, bridge.history, before, after, steps, train_s, time.monotonic() - started)
    metrics |= cost_metrics(before_eval, after_eval, second_scores if second is not None else None)
    metrics |= best_of_n_metrics(before[1], k_ref, {"second": second_all} if second else {})
    metrics |= member_metrics(before, after) | calibration
    metrics["ppo/eval_runtime_s"] = round(eval_s, 3)
    metrics["boundary"] = boundary
    for warning in cost_warnings(
        before_eval, after_eval, drop=cfg.diversity_warning_drop, length_sd=cfg.length_warning_sd
    ) + _final_gap_warning(cfg, metrics):
        watch.warnings.append(warning)
    (out / "samples.json").write_text(json.dumps(samples, indent=2, ensure_ascii=False))
    (out / "training_config.json").write_text(json.dumps(_resolved(cfg, trainer), indent=2))
    report = {**metrics, "warnings": watch.warnings, "history": bridge.history}
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    done = {**metrics, "ppo/samples": samples, "ppo/warnings": float(len(watch.warnings))}
    emit(progress, ProgressEvent(steps, steps, done, _summary(metrics, watch.warnings, out), "done"))
    return out


BOUNDARY_SAMPLE = 500  # training prompts checked against the reward model's range (a seeded uniform sample)


def prompt_boundary(cfg: PPORunConfig, train_prompts: list, eval_prompts: list) -> dict[str, Any]:
    """Which of PPO's training prompts are unlike the reward model's training prompts (rlhf/training/boundary.py):
    the report of a sample of them, with the held-out prompts' share beside it. Never fails the run."""
    from rlhf.training.boundary import report

    try:
        result = report(cfg.reward_model, train_prompts, sample=BOUNDARY_SAMPLE, seed=cfg.seed)
        if result.get("available") and eval_prompts:
            result["held_out_share_out_of_range"] = report(cfg.reward_model, eval_prompts)["share_out_of_range"]
        return result
    except Exception as exc:  # noqa: BLE001 - a report about the prompts must not stop the training
        return {"available": False, "reason": f"boundary check failed: {exc}"}


def first_per_prompt(samples: tuple, per_prompt: int, k: int) -> tuple:
    """The first `k` of each prompt's `per_prompt` samples (every list of the tuple alike)."""
    keep = [i for i in range(len(samples[0])) if i % per_prompt < k]
    return tuple([values[i] for i in keep] for values in samples)


def _monitor_every(cfg: PPORunConfig, n_batches: int) -> int:
    if cfg.monitor_every < 0:
        return 0
    return cfg.monitor_every or max(1, math.ceil(n_batches / 8))


def monitor_rows(prompts: list, before: tuple, k_ref: int, n_prompts: int, second: list[float]) -> list[dict]:
    """The reference's first two samples of each monitor prompt, as the live table's left side."""
    rows = []
    for p in range(n_prompts):
        for j in range(p * k_ref, p * k_ref + min(2, k_ref)):
            row = {"prompt": prompts[p], "before": before[0][j], "before_reward": round(before[2][j], 4)}
            if second:
                row["before_second"] = round(second[j], 4)
            rows.append(row)
    return rows


class _reference_of:  # noqa: N801 - used as a context manager
    """The reference model for perplexities after training: the adapter-free policy (LoRA) or TRL's frozen copy."""

    def __init__(self, trainer: Any, trained: Any) -> None:
        self.trainer, self.trained, self._ctx = trainer, trained, None

    def __enter__(self) -> Any:
        if self.trainer.ref_model is not None:
            return self.trainer.ref_model
        self._ctx = self.trained.disable_adapter()
        self._ctx.__enter__()
        return self.trained

    def __exit__(self, *exc: Any) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(*exc)


def evaluate_samples(
    cfg: PPORunConfig,
    samples: tuple,
    per_prompt: int,
    prompt_ids: list,
    reference_model: Any,
    tokenizer: Any,
    second: Any,
) -> dict[str, Any]:
    """Diversity, length and perplexity under the reference of one set of samples, and the second reward model's
    scores of them (`second_scores`, [] without one). Self-similarity embeds with the boundary's MiniLM encoder."""
    from rlhf.training.boundary import embed

    texts, responses = samples[0], samples[3]
    repeated = [ids for ids in prompt_ids for _ in range(per_prompt)]
    lengths = [len(r) for r in responses]
    result: dict[str, Any] = sample_set_metrics(texts, lengths, per_prompt, embed)
    result["perplexity"] = perplexity(reference_model, tokenizer.pad_token_id, repeated, responses) if texts else None
    result["second_scores"] = (
        score_responses(second, repeated, responses, tokenizer.pad_token_id) if second is not None and texts else []
    )
    return result


def cost_metrics(before: dict, after: dict, second: tuple[list, list] | None) -> dict[str, float]:
    """Before/after diversity, length and perplexity figures and their ratios (after / before)."""
    metrics: dict[str, float] = {}
    for key in ("distinct1", "distinct2", "self_similarity", "length", "perplexity"):
        b, a = before.get(key), after.get(key)
        if b is not None and a is not None:
            metrics[f"ppo/{key}_before"], metrics[f"ppo/{key}_after"] = float(b), float(a)
            if b:
                metrics[f"ppo/{key}_ratio"] = float(a) / float(b)
    if second is not None:
        metrics |= sample_metrics(second[0], second[1], name="second")
    return metrics


def _final_gap_warning(cfg: PPORunConfig, metrics: dict) -> list[str]:
    gain, second = metrics.get("ppo/eval_score_gain_std"), metrics.get("ppo/eval_second_gain_std")
    if gain is None or second is None or gain - second <= cfg.hacking_warning_gap:
        return []
    return [
        f"On the held-out prompts the reward model's gain ({gain:+.2f} sd) exceeds the second reward model's "
        f"({second:+.2f} sd) by more than {cfg.hacking_warning_gap:g}: part of the gain may be reward hacking."
    ]


def _final_metrics(cfg, history: list, before: tuple, after: tuple, steps: int, train_s: float, total_s: float) -> dict:
    last = history[-1] if history else {}
    return {
        **{k: v for k, v in last.items() if k.startswith("ppo/") and k != "ppo/elapsed_s"},
        **sample_metrics(before[1], after[1]),
        **sample_metrics(before[2], after[2], name="score"),  # the reward model alone, without the EOS penalty
        "ppo/kl_final": _kl_final(history) if history else None,
        "ppo/steps": steps,
        "ppo/episodes": cfg.total_episodes,
        "ppo/train_runtime_s": round(train_s, 3),
        "ppo/runtime_s": round(total_s, 3),
        "ppo/s_per_episode": round(train_s / max(cfg.total_episodes, 1), 5),
    }


def _kl_final(history: list) -> float | None:
    """The mean KL to the reference over the last 10% of the logged batches (one batch is noisy)."""
    kls = [row["ppo/kl"] for row in history if "ppo/kl" in row]
    if not kls:
        return None
    tail = kls[-max(1, len(kls) // 10) :]
    return sum(tail) / len(tail)


def _summary(metrics: dict, warnings: list[str], out: Path) -> str:
    parts = ["done:"]
    if "ppo/eval_reward_before" in metrics:
        parts.append(
            f"held-out reward {metrics['ppo/eval_reward_before']:.3f} -> {metrics['ppo/eval_reward_after']:.3f} "
            f"({metrics['ppo/eval_reward_gain_std']:+.2f} sd),"
        )
    if metrics.get("ppo/kl_final") is not None:
        parts.append(f"KL {metrics['ppo/kl_final']:.3f} nats;")
    if warnings:
        parts.append(f"{len(warnings)} warning(s);")
    parts.append(f"saved to {out}")
    return " ".join(parts)


def _resolved(cfg: PPORunConfig, trainer: Any) -> dict[str, Any]:
    import torch
    import transformers
    import trl

    args = trainer.args
    return {
        **cfg.to_dict(),
        "stage": "ppo",
        "batch_size": args.batch_size,
        "mini_batch_size": args.mini_batch_size,
        "num_total_batches": args.num_total_batches,
        "bf16_resolved": bool(args.bf16),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
    }


def main(argv: list[str] | None = None) -> None:
    """`python -m rlhf.training.ppo --config run.yaml` (rlhf/training/cli.py; --help lists every field)."""
    from rlhf.training.cli import stage_main

    stage_main("ppo", argv)


if __name__ == "__main__":
    main()
