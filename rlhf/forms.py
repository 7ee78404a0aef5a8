"""The "new reward-model run" form: the settings most people change, with the training dataclass's defaults."""

from dataclasses import fields
from typing import Any

from django import forms

from annotation.exports.options import STRATEGIES
from rlhf.training.config import DEBIAS_CHOICES, METHOD_CHOICES, RewardModelConfig
from rlhf.training.ppo_config import PPO_RECIPE_LABELS, PPO_RECIPES, PPORunConfig
from rlhf.training.registry import stage_get

_DEFAULTS = {f.name: f.default for f in fields(RewardModelConfig)}
_HELP = {f.name: f.metadata.get("help", "") for f in fields(RewardModelConfig)}
CONFIG_FIELDS = (
    "base_model", "method", "length_debias", "trunk_layers", "num_train_epochs", "learning_rate",
    "per_device_train_batch_size", "max_length", "use_lora", "lora_r", "use_margin", "center_rewards_coefficient",
    "max_steps", "seed",
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
    method = forms.ChoiceField(
        choices=[(m, m) for m in METHOD_CHOICES], initial=_DEFAULTS["method"], required=False,
        help_text=_help("method"),
    )  # fmt: skip
    length_debias = forms.ChoiceField(
        label="Length debiasing", choices=[(d, d) for d in DEBIAS_CHOICES], initial=_DEFAULTS["length_debias"],
        required=False, help_text=_help("length_debias"),
    )  # fmt: skip
    trunk_layers = forms.IntegerField(
        initial=_DEFAULTS["trunk_layers"], min_value=0, max_value=1000, required=False,
        help_text=_help("trunk_layers"),
    )  # fmt: skip
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
        initial=0.1,
        min_value=0.0,
        max_value=0.9,
        help_text="Share of prompts held out for evaluation (at least 3 on a small project, when above 0).",
    )

    def run_arguments(self) -> dict[str, Any]:
        """name, config and export options for training_run_create."""
        data = self.cleaned_data
        # Fields a client may leave out (added after the form's first version) take the dataclass default.
        config = {name: _DEFAULTS[name] if data[name] in (None, "") else data[name] for name in CONFIG_FIELDS}
        export = {"strategy": data["strategy"], "test_ratio": data["test_ratio"]}
        return {"name": data["name"], "config": config, "export_options": export}


# --- policy runs ---------------------------------------------------------------------------------------------------

_PPO = {f.name: f for f in fields(PPORunConfig)}
ALGORITHMS = [
    ("ppo", "PPO against a reward model (default)"),
    ("grpo", "GRPO (reward model as reward function; any tokenizer)"),
    ("rloo", "RLOO (reward model as reward function; any tokenizer)"),
    ("dpo", "DPO straight from the preference export (no reward model)"),
    ("sft", "SFT on the best-ranked responses"),
]
DEFAULT_CHAIN = "chain"


class PolicyRunForm(forms.Form):
    """A new PPO run (or GRPO/RLOO, DPO, SFT, or the offline default chain) on a project."""

    name = forms.CharField(required=False, max_length=200, help_text="Optional; default: '<project> <kind> #id'.")
    algorithm = forms.ChoiceField(choices=ALGORITHMS, initial="ppo")
    recipe = forms.ChoiceField(
        label="PPO settings", required=False,
        choices=[("", "TRL's defaults (the fields below)")] + list(PPO_RECIPE_LABELS.items()),
        help_text="PPO: a measured recipe (docs/training-ppo.md) sets every training setting; the fields below that "
        "you change from what they show still win. smollm2-cpu: SmolLM2 with LoRA on a 2-core CPU (bench/ppo.py's "
        "defaults).",
    )  # fmt: skip
    policy_run = forms.ChoiceField(
        label="Policy", required=False,
        help_text="An earlier policy run of this project, or 'default chain': SmolLM2-135M-Instruct (offline) → SFT → "
        "reward model → PPO on this project (CPU: tens of minutes).",
    )  # fmt: skip
    policy_path = forms.CharField(
        label="…or a policy path / model id", required=False, max_length=500,
        help_text="A local directory or a Hugging Face id, used when no run is chosen; empty = 'default', "
        "SmolLM2-135M-Instruct. For SFT and the default chain: the model they start from ('tiny' = test fixture).",
    )  # fmt: skip
    reward_run = forms.ChoiceField(
        label="Reward model run", required=False,
        help_text="A succeeded reward-model run (PPO, GRPO, RLOO), on any tokenizer.",
    )  # fmt: skip
    second_reward_run = forms.ChoiceField(
        label="Second reward model (optional)", required=False,
        help_text="PPO: a second succeeded reward-model run that PPO does not optimise (another seed, split or "
        "backbone). The held-out samples are scored by both; a growing gap between them flags reward hacking.",
    )  # fmt: skip
    ensemble_reward_runs = forms.MultipleChoiceField(
        label="Reward-model ensemble (optional)", required=False,
        help_text="PPO: more succeeded reward-model runs (the same recipe on other seeds or splits) scored with the "
        "reward model as one ensemble; PPO optimises their mean and each one's held-out gain is reported.",
    )  # fmt: skip
    kl_coef = forms.FloatField(label="KL coefficient", initial=_PPO["kl_coef"].default, min_value=0, max_value=10,
                               help_text=_PPO["kl_coef"].metadata["help"])  # fmt: skip
    kl_target = forms.FloatField(
        label="KL target (adaptive)", required=False, min_value=0.01, max_value=1000,
        help_text="PPO: empty = a fixed KL coefficient. " + _PPO["kl_target"].metadata["help"],
    )  # fmt: skip
    total_episodes = forms.IntegerField(initial=_PPO["total_episodes"].default, min_value=1, max_value=10_000_000,
                                        help_text=_PPO["total_episodes"].metadata["help"])  # fmt: skip
    response_length = forms.IntegerField(initial=_PPO["response_length"].default, min_value=1, max_value=4096,
                                         help_text=_PPO["response_length"].metadata["help"])  # fmt: skip
    batch_size = forms.IntegerField(initial=_PPO["per_device_train_batch_size"].default, min_value=1, max_value=1024,
                                    help_text="Rollout batch (PPO) / batch size (other algorithms).")  # fmt: skip
    num_ppo_epochs = forms.IntegerField(label="PPO epochs", initial=_PPO["num_ppo_epochs"].default, min_value=1,
                                        max_value=100)  # fmt: skip
    learning_rate = forms.FloatField(required=False, min_value=1e-9, max_value=1.0,
                                     help_text="Empty: the algorithm's default.")  # fmt: skip
    temperature = forms.FloatField(initial=_PPO["temperature"].default, min_value=0.01, max_value=5.0)
    seed = forms.IntegerField(initial=_PPO["seed"].default)
    test_ratio = forms.FloatField(
        initial=0.1, min_value=0.0, max_value=0.9, help_text="Share of prompts held out (never trained on)."
    )

    def __init__(self, *args, policy_runs=(), reward_runs=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["policy_run"].choices = [("", "—"), (DEFAULT_CHAIN, "default chain (SFT → RM → PPO)")] + [
            (str(r.pk), f"#{r.pk} {r.name} ({r.get_kind_display()})") for r in policy_runs
        ]
        self.fields["reward_run"].choices = [("", "—")] + [(str(r.pk), f"#{r.pk} {r.name}") for r in reward_runs]
        self.fields["second_reward_run"].choices = self.fields["reward_run"].choices
        self.fields["ensemble_reward_runs"].choices = self.fields["reward_run"].choices[1:]

    def clean(self):
        data = super().clean()
        if data.get("policy_run") == DEFAULT_CHAIN:
            data["kind"] = "chain"
        else:
            data["kind"] = {"rloo": "grpo"}.get(data.get("algorithm"), data.get("algorithm"))
        if data.get("recipe") and data["kind"] != "ppo":
            self.add_error("recipe", "A PPO recipe is for PPO runs: choose PPO, or TRL's defaults.")
        return data

    def run_arguments(self) -> dict[str, Any]:
        """kind, name, config, policy, reward run and export options for policy_run_create."""
        data, kind = self.cleaned_data, self.cleaned_data["kind"]
        policy = "" if data["policy_run"] in ("", DEFAULT_CHAIN) else f"run:{data['policy_run']}"
        arguments = {"kind": kind, "name": data["name"], "policy": policy or data["policy_path"].strip(),
                     "reward_run": int(data["reward_run"]) if data["reward_run"] else None,
                     "second_reward_run": int(data["second_reward_run"]) if data.get("second_reward_run") else None,
                     "ensemble_reward_runs": [int(pk) for pk in data.get("ensemble_reward_runs") or []],
                     "export_options": {"test_ratio": data["test_ratio"]}}  # fmt: skip
        arguments["config"] = self._config(kind, data)
        if data.get("recipe"):
            # The recipe sets what the form shows by default: only the fields the user changed override it.
            recipe = PPO_RECIPES[data["recipe"]]
            form_fields = stage_get(kind).form_fields
            # (kl_horizon is no form field: the recipe's measured horizon stays when only kl_target is changed)
            changed = {form_fields[name] for name in self.changed_data if name in form_fields}
            arguments["config"] = {
                field: value for field, value in arguments["config"].items() if field in changed or field not in recipe
            }
            arguments["recipe"] = data["recipe"]
        return arguments

    @staticmethod
    def _config(kind: str, data: dict) -> dict[str, Any]:
        """The form's settings under the kind's config names (the registry's `form_fields`); empty ones left out."""
        target = data.get("kl_target")
        values = {
            **{name: data.get(name) for name in ("kl_coef", "total_episodes", "response_length", "batch_size",
                                                 "num_ppo_epochs", "temperature", "seed", "algorithm")},
            "learning_rate": data.get("learning_rate") or None,
            # Adaptive KL over a run of N episodes: a horizon of N/4 lets kl_coef move by up to e^0.8 in the run.
            "kl_target": target or None,
            "kl_horizon": max(1, data["total_episodes"] // 4) if target else None,
            "base_model": (data.get("policy_path") or "").strip() or None,
        }  # fmt: skip
        fields_ = stage_get(kind).form_fields
        return {field: values[name] for name, field in fields_.items() if values.get(name) is not None}


class GenerateForm(forms.Form):
    """Sample responses from a finished policy run into a new labeling round."""

    k = forms.IntegerField(label="Responses per prompt", initial=4, min_value=1, max_value=10)
    max_new_tokens = forms.IntegerField(initial=64, min_value=1, max_value=4096)
    scope = forms.ChoiceField(choices=[("train", "train-side prompts"), ("all", "all prompts")], initial="train")
    include_original = forms.BooleanField(
        required=False, initial=True, label="Keep the old responses next to the new ones (compare old vs new)"
    )


class ComparisonForm(forms.Form):
    """A blind comparison batch of a finished policy run against the policy it started from."""

    k = forms.IntegerField(label="Responses per prompt from each model", initial=2, min_value=1, max_value=5)
    limit = forms.IntegerField(label="Prompts", initial=8, min_value=1, max_value=100_000)
    max_new_tokens = forms.IntegerField(initial=64, min_value=1, max_value=4096)
    scope = forms.ChoiceField(choices=[("all", "any prompts"), ("train", "train-side prompts")], initial="all")
