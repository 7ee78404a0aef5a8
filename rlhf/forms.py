"""The "new reward-model run" form: the settings most people change, with the training dataclass's defaults."""

from dataclasses import fields
from typing import Any

from django import forms

from annotation.exports.options import STRATEGIES
from rlhf.training.config import RewardModelConfig

_DEFAULTS = {f.name: f.default for f in fields(RewardModelConfig)}
_HELP = {f.name: f.metadata.get("help", "") for f in fields(RewardModelConfig)}
CONFIG_FIELDS = (
    "base_model", "num_train_epochs", "learning_rate", "per_device_train_batch_size", "max_length", "use_lora",
    "lora_r", "use_margin", "center_rewards_coefficient", "max_steps", "seed",
)  # fmt: skip
STRATEGY_HELP = {
    "all": "every labeler's ranking gives its own pairs",
    "majority": "one pair per response pair, the majority's order",
    "consensus": "only pairs all labelers agree on",
}


def _help(name: str) -> str:
    return _HELP[name]


class RewardRunForm(forms.Form):
    name = forms.CharField(required=False, max_length=200, help_text="Optional; default: '<project> reward model #id'.")
    base_model = forms.CharField(initial=_DEFAULTS["base_model"], max_length=500, help_text=_help("base_model"))
    num_train_epochs = forms.FloatField(initial=_DEFAULTS["num_train_epochs"], min_value=0.01, max_value=100)
    learning_rate = forms.FloatField(initial=_DEFAULTS["learning_rate"], min_value=1e-8, max_value=1.0)
    per_device_train_batch_size = forms.IntegerField(
        label="Batch size", initial=_DEFAULTS["per_device_train_batch_size"], min_value=1, max_value=1024
    )
    max_length = forms.IntegerField(
        initial=_DEFAULTS["max_length"], min_value=8, max_value=32768, help_text=_help("max_length")
    )
    use_lora = forms.BooleanField(
        label="LoRA", required=False, initial=_DEFAULTS["use_lora"], help_text=_help("use_lora")
    )
    lora_r = forms.IntegerField(label="LoRA rank", initial=_DEFAULTS["lora_r"], min_value=1, max_value=1024)
    use_margin = forms.BooleanField(
        label="Use margins", required=False, initial=_DEFAULTS["use_margin"],
        help_text="Export a rank-difference margin per pair (TRL's margin column) and use it in the loss.",
    )  # fmt: skip
    center_rewards_coefficient = forms.FloatField(
        required=False, min_value=0, help_text=_help("center_rewards_coefficient")
    )
    max_steps = forms.IntegerField(initial=_DEFAULTS["max_steps"], min_value=-1, help_text=_help("max_steps"))
    seed = forms.IntegerField(initial=_DEFAULTS["seed"])
    strategy = forms.ChoiceField(
        choices=[(s, f"{s} — {STRATEGY_HELP.get(s, '')}") for s in STRATEGIES], initial="all",
        help_text="How rankings become preference pairs.",
    )  # fmt: skip
    test_ratio = forms.FloatField(
        initial=0.1, min_value=0.0, max_value=0.9, help_text="Share of prompts held out for evaluation."
    )

    def run_arguments(self) -> dict[str, Any]:
        """name, config and export options for training_run_create."""
        data = self.cleaned_data
        config = {name: data[name] for name in CONFIG_FIELDS}
        export = {"strategy": data["strategy"], "test_ratio": data["test_ratio"]}
        return {"name": data["name"], "config": config, "export_options": export}
