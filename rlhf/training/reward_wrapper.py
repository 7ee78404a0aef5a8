"""A reward model on another tokenizer than the policy's, made usable by TRL 1.12's PPO. Plain Python, no Django.

TRL's PPO scores a rollout with `trl.experimental.utils.get_reward(model, query_responses, pad_token_id,
context_length)`: it runs `getattr(model, model.base_model_prefix)(input_ids=..., attention_mask=..., ...)` on the
*policy's* token ids (padding masked to id 0), then `model.score(output.hidden_states[-1])`, and reads that at each
row's last response token. A reward model with its own tokenizer (the MiniLM/BERT default) cannot read those ids, so
`ReencodingRewardModel` takes the place of the backbone and the head without touching TRL:

- its backbone (`backbone`) takes each row's non-pad ids (the attention mask), splits them into prompt and response,
  decodes both, renders them for the reward model's tokenizer exactly as reward-model training did
  (`data.encode_sequences`: same chat rendering, same truncation, EOS appended) and runs the reward model;
- it returns an output whose `hidden_states[-1]` is a [batch, seq_len, 1] tensor holding each row's reward at every
  position, and `score` is the identity, so whichever position TRL reads (the last response token) gives the reward.

Prompt / response split. PPO's prompts are known in advance: given `known_prompts` (their policy token ids and the
original prompt, text or chat messages), a row that starts with one is split there exactly and the reward model gets
the *original* prompt, as GRPO's reward function does (the policy's chat template cannot tell a plain-text prompt
from a one-turn chat). Any other row is split as text: after the last generation header the policy's chat template
adds (found by rendering an empty conversation with and without `add_generation_prompt`: `<|im_start|>assistant\\n`
for ChatML, `\\n\\nAssistant:` for the HH template), and ChatML role blocks are parsed back into messages (the
template's default system message dropped); other prompts go on as text. The response is its decoded text without
special tokens (the end of turn / EOS), as GRPO's completions are: `encode_sequences` appends the reward model's EOS.

The value model cannot be this wrapper (it needs a value per token, trained): PPO then starts it from the policy.

`EnsembleRewardModel` puts several reward models (each on the policy's tokenizer or behind this wrapper) behind the
same interface, their rewards combined (`combine_rewards`): PPO's `reward_ensemble`.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rlhf.training.chat import has_chat_template
from rlhf.training.data import encode_sequences
from rlhf.training.ppo_config import ENSEMBLE_MODES
from rlhf.training.scoring import score_sequences

CHATML_TURN = re.compile(r"<\|im_start\|>([^\n<]*)\n(.*?)<\|im_end\|>", re.S)
HH_HEADER = "\n\nAssistant:"
_UNKNOWN = object()


@dataclass(frozen=True)
class PolicyTemplate:
    """What the policy's chat template adds around a prompt: the generation header that ends it, and the system
    message it inserts when the conversation has none (SmolLM2's), if any."""

    header: str
    default_system: str | None


def policy_template(tokenizer: Any) -> PolicyTemplate:
    """The generation header (the difference between an empty conversation rendered with and without
    `add_generation_prompt`) and the default system message of the policy's chat template."""
    if not has_chat_template(tokenizer):
        return PolicyTemplate(HH_HEADER, None)  # data.format_prompt's template-free rendering
    empty = [{"role": "user", "content": ""}]
    closed = tokenizer.apply_chat_template(empty, tokenize=False, add_generation_prompt=False)
    opened = tokenizer.apply_chat_template(empty, tokenize=False, add_generation_prompt=True)
    header = opened[len(closed) :] if opened.startswith(closed) and len(opened) > len(closed) else HH_HEADER
    systems = [content for role, content in CHATML_TURN.findall(closed) if role.strip() == "system"]
    return PolicyTemplate(header, systems[0] if systems else None)


def split_at_header(text: str, header: str) -> tuple[str, str]:
    """(prompt, response) of a decoded row: the prompt ends with the last generation header; without one, the whole
    text is the prompt."""
    at = text.rfind(header) if header else -1
    if at < 0:
        return text, ""
    cut = at + len(header)
    return text[:cut], text[cut:]


def prompt_from_text(text: str, template: PolicyTemplate) -> Any:
    """A decoded prompt back into chat messages when it is made of ChatML role blocks (the template's default system
    message dropped: the reward model never saw it); else the text as it is (HH text is parsed downstream)."""
    turns = [(role.strip(), content) for role, content in CHATML_TURN.findall(text)]
    if not turns:
        return text
    if turns[0] == ("system", template.default_system):
        turns = turns[1:]
    return [{"role": role, "content": content} for role, content in turns] or ""


class ReencodingRewardModel(torch.nn.Module):
    """A reward model on its own tokenizer behind the interface TRL's `get_reward` expects of a reward model on the
    policy's tokenizer (`base_model_prefix`, a backbone with `hidden_states`, a `score` head). See the module
    docstring."""

    base_model_prefix = "backbone"

    def __init__(
        self,
        reward_model: Any,
        reward_tokenizer: Any,
        policy_tokenizer: Any,
        max_length: int = 512,
        known_prompts: Iterable[tuple[Sequence[int], Any]] = (),
        batch_size: int = 16,
    ) -> None:
        super().__init__()
        self.reward_model = reward_model
        self.score = torch.nn.Identity()  # the backbone already returns rewards
        self.reward_tokenizer, self.policy_tokenizer = reward_tokenizer, policy_tokenizer
        limit = getattr(reward_model.config, "max_position_embeddings", None) or max_length
        self.max_length, self.batch_size = min(max_length, limit), batch_size
        self.template = policy_template(policy_tokenizer)
        self.special = sorted(set(policy_tokenizer.all_special_tokens), key=len, reverse=True)
        self._prompts: dict[tuple[int, ...], Any] = {}
        self._lengths: list[int] = []
        self.add_prompts(known_prompts)

    def add_prompts(self, known_prompts: Iterable[tuple[Sequence[int], Any]]) -> None:
        """Register (policy token ids of a rendered prompt, the original prompt) pairs for exact splitting."""
        for ids, prompt in known_prompts:
            self._prompts[tuple(ids)] = prompt
        self._lengths = sorted({len(k) for k in self._prompts}, reverse=True)

    def split(self, ids: list[int]) -> tuple[Any, str]:
        """(prompt for the reward model, response text) of one row of policy token ids without padding."""
        for length in self._lengths:
            prompt = self._prompts.get(tuple(ids[:length]), _UNKNOWN) if length <= len(ids) else _UNKNOWN
            if prompt is not _UNKNOWN:
                return prompt, self.policy_tokenizer.decode(ids[length:], skip_special_tokens=True)
        head, tail = split_at_header(self.policy_tokenizer.decode(ids, skip_special_tokens=False), self.template.header)
        prompt = prompt_from_text(head, self.template)
        return self._without_special(prompt) if isinstance(prompt, str) else prompt, self._without_special(tail)

    def _without_special(self, text: str) -> str:
        """The text as `decode(..., skip_special_tokens=True)` would give it (BOS, end of turn, EOS dropped)."""
        for token in self.special:
            text = text.replace(token, "")
        return text

    def rewards(self, prompts: list[Any], responses: list[str]) -> list[float]:
        """The reward model's score of each (prompt, response text), rendered and cut as in its training."""
        sequences, _ = encode_sequences(self.reward_tokenizer, prompts, responses, self.max_length)
        return score_sequences(self.reward_model, sequences, self.reward_tokenizer.pad_token_id, self.batch_size)

    def score_ids(self, query_ids: list[list[int]], response_ids: list[list[int]]) -> list[float]:
        """Rewards of (prompt ids, response ids) pairs of the policy's tokens, the split given."""
        prompts = [self.split(list(q))[0] for q in query_ids]
        texts = [self.policy_tokenizer.decode(r, skip_special_tokens=True) for r in response_ids]
        return self.rewards(prompts, texts)

    def backbone(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> Any:
        """TRL's backbone call: every position of a row holds that row's reward ([batch, seq_len, 1])."""
        from transformers.modeling_outputs import BaseModelOutput

        rows = [ids[mask].tolist() for ids, mask in zip(input_ids, attention_mask.bool(), strict=True)]
        prompts, texts = zip(*(self.split(row) for row in rows), strict=True) if rows else ((), ())
        values = torch.tensor(self.rewards(list(prompts), list(texts)), dtype=torch.float32)
        hidden = values.to(input_ids.device)[:, None, None].expand(-1, input_ids.shape[1], 1)
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=(hidden,))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """[batch, seq_len, 1] rewards, as `score(backbone(...).hidden_states[-1])`."""
        return self.score(self.backbone(input_ids, attention_mask, **kwargs).hidden_states[-1])


def combine_rewards(stacked: torch.Tensor, mode: str = "mean", std_weight: float = 1.0) -> torch.Tensor:
    """One reward from an ensemble's [members, ...] rewards (Coste et al. 2024, "Reward Model Ensembles Help Mitigate
    Overoptimization"): `mean`; `mean-std` = the mean less `std_weight` x the members' spread (their uncertainty-
    weighted objective, with the standard deviation so the penalty is in reward units); `min` = the worst case."""
    if mode == "mean":
        return stacked.mean(0)
    if mode == "mean-std":
        spread = stacked.std(0, unbiased=False) if stacked.shape[0] > 1 else torch.zeros_like(stacked[0])
        return stacked.mean(0) - std_weight * spread
    if mode == "min":
        return stacked.min(0).values
    raise ValueError(f"ensemble mode must be one of {', '.join(ENSEMBLE_MODES)}, not {mode!r}.")


class EnsembleRewardModel(torch.nn.Module):
    """Several reward models as one, behind the same interface TRL's `get_reward` expects (`base_model_prefix`, a
    backbone returning `hidden_states`, a `score` head). Each member is a reward model on the policy's tokenizer (a
    sequence classifier) or a `ReencodingRewardModel`; the backbone runs each member's backbone and head on the same
    ids and combines their per-position rewards (`combine_rewards`), so TRL reads the combined reward where it would
    read one model's. Members should come from one recipe (seeds or splits): `mean-std` and `min` compare their
    raw scores, unless `calibrate` has put each member on the scale of its own scores of the reference's samples
    (members on different scales: a SmolLM2 and a MiniLM reward model, say)."""

    base_model_prefix = "backbone"

    def __init__(self, members: Sequence[Any], mode: str = "mean", std_weight: float = 1.0) -> None:
        super().__init__()
        if not members:
            raise ValueError("An ensemble needs at least one reward model.")
        combine_rewards(torch.zeros(1, 1), mode)  # an unknown mode fails here, not at the first rollout
        self.members = torch.nn.ModuleList(members)
        self.mode, self.std_weight = mode, std_weight
        self.score = torch.nn.Identity()
        # each member's reward is (raw - center) / scale before combining: the identity until calibrate()
        self.register_buffer("center", torch.zeros(len(members)))
        self.register_buffer("scale", torch.ones(len(members)))

    def calibrate(self, member_scores: torch.Tensor) -> None:
        """Standardise each member from its scores of a calibration set ([members, samples], e.g. the reference
        policy's samples of training prompts): afterwards a member's reward is its z-score on that set, so members on
        different scales weigh alike in `mean` and their spread in `mean-std` is not a difference of scales."""
        if member_scores.dim() != 2 or member_scores.shape[0] != len(self.members) or member_scores.shape[1] < 2:
            raise ValueError("calibrate needs [members, samples] scores with at least two samples.")
        scores = member_scores.float()
        self.center.copy_(scores.mean(1))
        self.scale.copy_(scores.std(1, unbiased=False).clamp_min(1e-6))

    def standardise(self, stacked: torch.Tensor) -> torch.Tensor:
        """[members, ...] raw member rewards on the calibrated scale (unchanged when not calibrated)."""
        shape = (-1,) + (1,) * (stacked.dim() - 1)
        center, scale = self.center.to(stacked), self.scale.to(stacked)
        return (stacked - center.view(shape)) / scale.view(shape)

    def member_rewards(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """[members, batch, seq_len, 1]: each member's reward at every position, as `get_reward` would read it (on the
        calibrated scale once `calibrate` ran)."""
        outputs = []
        for member in self.members:
            output = getattr(member, member.base_model_prefix)(
                input_ids=input_ids, attention_mask=attention_mask, **kwargs
            )
            outputs.append(member.score(output.hidden_states[-1]).float())
        return self.standardise(torch.stack(outputs))

    def backbone(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> Any:
        from transformers.modeling_outputs import BaseModelOutput

        hidden = combine_rewards(self.member_rewards(input_ids, attention_mask, **kwargs), self.mode, self.std_weight)
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=(hidden,))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.score(self.backbone(input_ids, attention_mask, **kwargs).hidden_states[-1])
