"""One registry of run kinds: what each kind trains with, what it reads and what it leaves behind.

Plain Python, no Django, no torch: the web process reads it (forms, serializers, the run page), the worker and the
commands read it, and `python -m rlhf.training.<stage>` is its `module`. Adding a run kind is one `Stage` here, one
config dataclass and one training function `train(config, progress) -> output dir` in its module (plus the
TrainingRun.Kind choice, which a test keeps equal to this registry).

- `config`: the stage's dataclass (`from_dict` loads a stored run's JSON, ignoring keys of older versions);
- `module` / `entry`: `module.entry(config, progress=...)` trains and returns the output dir, whose `metrics.json`
  holds the final metrics; `module.main(argv)` is the command line (`--config file.yaml`, `--help`);
- `inputs`: which files the run needs written from the project before it trains: `preferences` (the preference
  export snapshot: train.jsonl, test.jsonl, eval.jsonl), `prompts` (prompts.jsonl / eval_prompts.jsonl, the
  export's train / test side) and `demonstrations` (sft.jsonl / sft_eval.jsonl, the best-ranked responses);
- `input_fields`: config field <- the input file (a key of what the inputs writer returns) it is set to;
- `outputs`: what the run leaves, by role (`policy`, `reward_model`) -> its sub-directory of the output dir;
- `managed`: the config fields the platform sets per run (paths, models): a caller may not choose them;
- `form_fields`: the new-policy-run form's generic settings (kl_coef, batch_size, ...) -> this kind's config field;
- `policy_field` / `reward_field`: where the run's policy (a path, model id or earlier run) and its reward model
  (a reward-model run's output) go in the config; `needs_policy` / `needs_reward`: whether the run must have them.
"""

from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

from rlhf.training.config import RewardModelConfig
from rlhf.training.ppo_config import ChainConfig, DPORunConfig, GRPORunConfig, PPORunConfig, SFTRunConfig
from rlhf.training.progress import ProgressCallback

PREFERENCES, PROMPTS, DEMONSTRATIONS = "preferences", "prompts", "demonstrations"
POLICY, REWARD_MODEL = "policy", "reward_model"


@dataclass(frozen=True)
class Stage:
    kind: str
    label: str
    config: type
    module: str
    entry: str
    inputs: frozenset[str]
    input_fields: dict[str, str]
    outputs: dict[str, str]
    managed: frozenset[str]
    policy_field: str = ""
    reward_field: str = ""
    second_reward_field: str = ""  # an optional second reward-model run (PPO's second opinion)
    ensemble_reward_field: str = ""  # optional further reward-model runs scored with the first as one ensemble (PPO)
    needs_policy: bool = False
    needs_reward: bool = False
    description: str = ""
    form_fields: dict[str, str] = field(default_factory=dict)

    @property
    def cli(self) -> str:
        return f"python -m {self.module} --config run.yaml"

    def train_function(self) -> Any:
        """The training function (imports torch and TRL: only the worker and the commands call this)."""
        return getattr(import_module(self.module), self.entry)

    def train(self, config: Any, progress: ProgressCallback | None = None) -> Path:
        return Path(self.train_function()(config, progress=progress))

    def config_from(self, data: dict[str, Any]) -> Any:
        return self.config.from_dict(data)

    def caller_fields(self) -> list[str]:
        """The config fields a caller may set (the dataclass's, less the managed ones), in declaration order."""
        return [name for name in self.config.__dataclass_fields__ if name not in self.managed]

    def output_dir(self, output: str | Path, role: str) -> Path:
        """Where this kind's `role` output (policy / reward_model) is inside a run's output dir."""
        return Path(output) / self.outputs[role] if self.outputs.get(role) else Path(output)


STAGES: dict[str, Stage] = {
    stage.kind: stage
    for stage in (
        Stage(
            kind="reward_model",
            label="Reward model",
            config=RewardModelConfig,
            module="rlhf.training.reward_model",
            entry="train_reward_model",
            inputs=frozenset({PREFERENCES}),
            input_fields={"train_file": "train_file", "eval_file": "eval_file"},
            outputs={REWARD_MODEL: ""},
            managed=frozenset({"train_file", "eval_file", "output_dir", "human_agreement"}),
            description="A reward model on the preference pairs (TRL's RewardTrainer, or a fitted frozen-trunk head).",
        ),
        Stage(
            kind="ppo",
            label="PPO",
            config=PPORunConfig,
            module="rlhf.training.ppo",
            entry="run_ppo",
            inputs=frozenset({PROMPTS}),
            input_fields={"train_file": "prompts_file", "eval_file": "eval_prompts_file"},
            outputs={POLICY: ""},
            managed=frozenset(
                {
                    "policy",
                    "reward_model",
                    "second_reward_model",
                    "reward_ensemble",
                    "train_file",
                    "eval_file",
                    "output_dir",
                }
            ),
            policy_field="policy",
            reward_field="reward_model",
            second_reward_field="second_reward_model",
            ensemble_reward_field="reward_ensemble",
            needs_policy=True,
            needs_reward=True,
            description="PPO of a policy against a reward-model run on the train-side prompts.",
            form_fields={
                "kl_coef": "kl_coef",
                "total_episodes": "total_episodes",
                "response_length": "response_length",
                "batch_size": "per_device_train_batch_size",
                "num_ppo_epochs": "num_ppo_epochs",
                "temperature": "temperature",
                "seed": "seed",
                "learning_rate": "learning_rate",
                "kl_target": "kl_target",
                "kl_horizon": "kl_horizon",
            },
        ),
        Stage(
            kind="sft",
            label="SFT",
            config=SFTRunConfig,
            module="rlhf.training.sft",
            entry="run_sft",
            inputs=frozenset({PROMPTS, DEMONSTRATIONS}),
            input_fields={"train_file": "sft_file", "eval_file": "sft_eval_file"},
            outputs={POLICY: ""},
            managed=frozenset({"train_file", "eval_file", "output_dir", "tokenizer_texts_file"}),
            policy_field="base_model",
            description="Supervised fine-tuning on each prompt's best-ranked response.",
            form_fields={
                "batch_size": "per_device_train_batch_size",
                "seed": "seed",
                "learning_rate": "learning_rate",
            },
        ),
        Stage(
            kind="dpo",
            label="DPO",
            config=DPORunConfig,
            module="rlhf.training.dpo",
            entry="run_dpo",
            inputs=frozenset({PROMPTS, PREFERENCES}),
            input_fields={"train_file": "train_file", "eval_file": "test_file"},
            outputs={POLICY: ""},
            managed=frozenset({"policy", "train_file", "eval_file", "output_dir"}),
            policy_field="policy",
            needs_policy=True,
            description="DPO straight from the preference pairs (no reward model).",
            form_fields={
                "kl_coef": "beta",
                "batch_size": "per_device_train_batch_size",
                "seed": "seed",
                "learning_rate": "learning_rate",
            },
        ),
        Stage(
            kind="grpo",
            label="GRPO / RLOO",
            config=GRPORunConfig,
            module="rlhf.training.grpo",
            entry="run_grpo",
            inputs=frozenset({PROMPTS}),
            input_fields={"train_file": "prompts_file"},
            outputs={POLICY: ""},
            managed=frozenset({"policy", "reward_model", "train_file", "output_dir"}),
            policy_field="policy",
            reward_field="reward_model",
            needs_policy=True,
            needs_reward=True,
            description="GRPO or RLOO with a reward-model run as the reward function.",
            form_fields={
                "algorithm": "algorithm",
                "kl_coef": "beta",
                "response_length": "max_completion_length",
                "temperature": "temperature",
                "seed": "seed",
                "learning_rate": "learning_rate",
            },
        ),
        Stage(
            kind="chain",
            label="Default chain (SFT → reward model → PPO)",
            config=ChainConfig,
            module="rlhf.training.chain",
            entry="train_chain",
            inputs=frozenset({PROMPTS, DEMONSTRATIONS, PREFERENCES}),
            input_fields={
                "sft_file": "sft_file",
                "pairs_file": "train_file",
                "eval_pairs_file": "test_file",
                "prompts_file": "prompts_file",
                "eval_prompts_file": "eval_prompts_file",
            },
            outputs={POLICY: "ppo", REWARD_MODEL: "reward"},
            managed=frozenset(
                {"sft_file", "pairs_file", "eval_pairs_file", "prompts_file", "eval_prompts_file", "output_dir"}
            ),
            description="The offline default chain: SmolLM2 -> SFT -> a reward model -> PPO.",
            form_fields={
                "kl_coef": "ppo_kl_coef",
                "total_episodes": "ppo_total_episodes",
                "seed": "seed",
                "response_length": "ppo_response_length",
                "batch_size": "ppo_batch_size",
                "num_ppo_epochs": "ppo_num_ppo_epochs",
                "temperature": "ppo_temperature",
                "kl_target": "ppo_kl_target",
                "kl_horizon": "ppo_kl_horizon",
                "learning_rate": "ppo_learning_rate",
                "base_model": "base_model",
            },
        ),
    )
}


def stage_get(kind: str) -> Stage:
    """The registry entry of a run kind; KeyError names the known kinds."""
    try:
        return STAGES[kind]
    except KeyError:
        raise KeyError(f"Unknown run kind {kind!r}; known: {', '.join(STAGES)}.") from None


def kinds_with(role: str) -> tuple[str, ...]:
    """The kinds whose runs leave a `role` output (policy / reward_model)."""
    return tuple(kind for kind, stage in STAGES.items() if role in stage.outputs)


def kinds_needing(input_name: str) -> tuple[str, ...]:
    return tuple(kind for kind, stage in STAGES.items() if input_name in stage.inputs)
