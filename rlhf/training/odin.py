"""ODIN length disentangling for fine-tuned reward models (Chen et al., 2024, "ODIN: Disentangled Reward Mitigates
Hacking in RLHF", arXiv:2402.07319). Plain Python, no Django.

The classifier gets a second output during training: the reward the Bradley-Terry loss sees is quality + length
head, and two extra terms push the response length into the length head and out of the quality head:

    loss = BT(r_Q + r_L) + length_weight * (|corr(r_Q, len)| - corr(r_L, len)) + ortho_weight * |w_Q . w_L|

(corr: Pearson over the responses of the batch; len: log(1 + characters) of the whole response, as the length-aware
evaluation counts it; w: the two head rows, normalised). When training ends the length output is dropped
(`drop_length_head`), so what is saved is an ordinary one-output sequence classifier scoring quality only, which
every other part of the platform (evaluation, scoring, PPO) loads unchanged.

Written here because TRL's RewardTrainer has no such loss and no library ships one for transformers classifiers;
the subclass only replaces `compute_loss` and passes the lengths through the collator.
"""

import math
from typing import Any

LENGTH_COLUMNS = ("chosen_length", "rejected_length")


def length_of(response: Any) -> float:
    from rlhf.training.evaluate import response_length

    return math.log1p(response_length(response))


def add_lengths(items: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The encoded pairs (data.encode_pairs, same order as rows) with each response's log length added."""
    for item, row in zip(items, rows, strict=True):
        item["chosen_length"] = length_of(row["chosen"])
        item["rejected_length"] = length_of(row["rejected"])
    return items


def head_module(model: Any) -> tuple[Any, str]:
    """(parent module, attribute) of the classifier's output linear layer: `score` (decoders), `classifier` (BERT),
    or `classifier.out_proj` (RoBERTa-style heads)."""
    import torch

    for name in ("score", "classifier"):
        layer = getattr(model, name, None)
        if isinstance(layer, torch.nn.Linear):
            return model, name
        if layer is not None and isinstance(getattr(layer, "out_proj", None), torch.nn.Linear):
            return layer, "out_proj"
    raise ValueError(f"{type(model).__name__} has no linear score/classifier layer for ODIN's length head.")


def add_length_head(model: Any, seed: int = 0) -> None:
    """Give the one-output classifier a second (length) output; the quality output keeps its initial weights."""
    import torch

    parent, name = head_module(model)
    old = getattr(parent, name)
    new = torch.nn.Linear(old.in_features, 2, bias=old.bias is not None, dtype=old.weight.dtype)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        new.weight[0].copy_(old.weight[0])
        new.weight[1].normal_(0.0, float(old.weight.std()) or 0.02, generator=generator)
        if old.bias is not None:
            new.bias[0] = old.bias[0]
            new.bias[1] = 0.0
    # config.num_labels stays 1 (TRL refuses other values; the classifiers read it only for their own loss).
    setattr(parent, name, new)


def drop_length_head(model: Any) -> None:
    """Back to a one-output classifier holding the quality head only (what is saved and scored)."""
    import torch

    parent, name = head_module(model)
    old = getattr(parent, name)
    if old.out_features == 1:
        return
    new = torch.nn.Linear(old.in_features, 1, bias=old.bias is not None, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(old.weight[:1])
        if old.bias is not None:
            new.bias.copy_(old.bias[:1])
    setattr(parent, name, new)


def pearson(a: Any, b: Any) -> Any:
    """Pearson correlation of two 1-d tensors (0 when either is constant), differentiable.

    As in the paper, plain: its gradient grows as 1/std(a), and a freshly initialised reward head's outputs are a
    hundredth of a logit apart, so early on this term dominates the loss (on HH pairs with MiniLM: gradient norms
    40-90 against ~1 without it, clipped to 1). A floor on std(a) was tried; it did not help on HH (the quality
    head stayed at chance either way, docs/benchmarks.md) and it let the quality head learn length at a scale below
    the floor on the synthetic test, so it was taken out."""
    a, b = a - a.mean(), b - b.mean()
    denominator = (a.pow(2).sum() * b.pow(2).sum()).sqrt()
    return (a * b).sum() / (denominator + 1e-8)


def odin_terms(logits: Any, lengths: Any, head_weight: Any) -> tuple[Any, Any]:
    """(length term, orthogonality term) of ODIN's loss for the logits (N, 2) of N responses."""
    import torch

    quality, length = logits[:, 0].float(), logits[:, 1].float()
    disentangle = pearson(quality, lengths).abs() - pearson(length, lengths)
    rows = torch.nn.functional.normalize(head_weight.float(), dim=-1)
    return disentangle, (rows[0] * rows[1]).sum().abs()


def collator_class() -> type:
    from trl.trainer.reward_trainer import DataCollatorForPreference

    class LengthCollator(DataCollatorForPreference):
        """TRL's preference collator plus `lengths`: chosen responses' then rejected ones', as input_ids is laid out."""

        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            import torch

            lengths = [e["chosen_length"] for e in examples] + [e["rejected_length"] for e in examples]
            output = super().torch_call(examples)
            output["lengths"] = torch.tensor(lengths, dtype=torch.float)
            return output

    return LengthCollator


def trainer_class() -> type:
    import torch
    from trl import RewardTrainer

    class OdinRewardTrainer(RewardTrainer):
        """RewardTrainer whose loss is ODIN's; logged accuracy and margins are the quality head's."""

        def __init__(self, *args: Any, length_weight: float = 1.0, ortho_weight: float = 1.0, **kwargs: Any):
            self.length_weight, self.ortho_weight = length_weight, ortho_weight
            super().__init__(*args, **kwargs)

        def _set_signature_columns_if_needed(self) -> None:
            if self._signature_columns is None:
                self._signature_columns = ["chosen_ids", "rejected_ids", "margin", *LENGTH_COLUMNS]

        def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False, num_items_in_batch: Any = None):
            mode = "train" if self.model.training else "eval"
            lengths = inputs.pop("lengths")
            margin = inputs.pop("margin", None)
            inputs["use_cache"] = False
            outputs = model(**inputs)
            logits = outputs.logits
            chosen, rejected = torch.chunk(logits.sum(-1), chunks=2)
            shift = 0 if margin is None else margin
            loss = -torch.nn.functional.logsigmoid(chosen - rejected - shift).mean()
            parent, name = head_module(_unwrapped(model))
            disentangle, ortho = odin_terms(logits, lengths, _base_layer(getattr(parent, name)).weight)
            loss = loss + self.length_weight * disentangle + self.ortho_weight * ortho
            if self.args.center_rewards_coefficient is not None:
                loss = loss + self.args.center_rewards_coefficient * torch.mean(logits[:, 0] ** 2)
            with torch.no_grad():
                q_chosen, q_rejected = torch.chunk(logits[:, 0], chunks=2)
                metrics = self._metrics[mode]
                metrics["accuracy"].append((q_chosen > q_rejected).float().mean().item())
                metrics["margin"].append((q_chosen - q_rejected).mean().item())
                metrics["mean_reward"].append(logits[:, 0].mean().item())
                metrics["odin_length_term"].append(float(disentangle))
            return (loss, outputs) if return_outputs else loss

    return OdinRewardTrainer


def _unwrapped(model: Any) -> Any:
    """The transformers model under DDP and PEFT wrappers."""
    model = getattr(model, "module", model)
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _base_layer(layer: Any) -> Any:
    """PEFT's modules_to_save wraps the head: its trained copy holds the weights in use."""
    trained = getattr(layer, "modules_to_save", None)
    if trained is not None and "default" in trained:
        return trained["default"]
    return getattr(layer, "original_module", layer)
