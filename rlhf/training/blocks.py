"""The blocks every stage's config is built from, as TRL composes ModelConfig with each trainer's config: a field
shared by several stages is declared (with its help) once, here; a stage's config inherits the blocks it uses and
declares only its own fields, plus `stage_field(...)` where a shared field takes another default or a more precise
help for that stage.

The configs stay flat dataclasses: a run stores its config as one JSON object of field names, so composing by
inheritance keeps every stored run loading (`from_dict` reads fields by name; tests/rlhf/training/test_registry.py
loads configs stored before the blocks existed), and TrlParser still makes one `--flag` per field. Plain Python.
"""

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from rlhf.training.launch import LAUNCHER_HELP, launcher_parse

REPORT_TO_CHOICES = ("none", "wandb", "trackio", "tensorboard")
BF16_CHOICES = ("auto", "true", "false")


def stage_field(block: type, name: str, default: Any = MISSING, help: str | None = None) -> Any:  # noqa: A002
    """A block's field with this stage's default and/or help (the rest, e.g. its type's help, as in the block)."""
    base = block.__dataclass_fields__[name]
    metadata = dict(base.metadata) | ({"help": help} if help else {})
    return field(default=base.default if default is MISSING else default, metadata=metadata)


class ConfigDict:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Build a config from a dict, ignoring unknown keys (e.g. a stored config from an older version)."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class LaunchBlock(ConfigDict):
    """Every stage: where it trains (rlhf/training/launch.py)."""

    launcher: str = field(default="inprocess", metadata={"help": LAUNCHER_HELP})

    def launcher_check(self) -> None:
        launcher_parse(self.launcher)


@dataclass
class TrainingBlock(LaunchBlock):
    """The stages that run an optimizer (reward model, SFT, PPO, DPO, GRPO/RLOO)."""

    learning_rate: float = field(default=1e-5, metadata={"help": "Peak learning rate."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Examples per batch and device."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Batches accumulated per optimizer step."})
    seed: int = field(default=42, metadata={"help": "Random seed (initialisation, shuffling, dropout, sampling)."})
    logging_steps: int = field(default=10, metadata={"help": "Log the stage's metrics every N optimizer steps."})
    report_to: str = field(
        default="none", metadata={"help": "Experiment tracker: none | wandb | trackio | tensorboard"}
    )
    bf16: str = field(
        default="auto",
        metadata={"help": "'auto' = bf16 only on a GPU that supports it (never on a CPU); 'true' or 'false'."},
    )

    def training_check(self) -> None:
        """The launcher, report_to and bf16 (a bool becomes 'true' / 'false'); ValueError on a bad value."""
        self.launcher_check()
        if self.report_to not in REPORT_TO_CHOICES:
            raise ValueError(f"report_to must be one of {', '.join(REPORT_TO_CHOICES)}, not {self.report_to!r}.")
        value = self.bf16
        self.bf16 = ("true" if value else "false") if isinstance(value, bool) else str(value).lower()
        if self.bf16 not in BF16_CHOICES:
            raise ValueError(f"bf16 must be auto, true or false, not {value!r}.")


@dataclass
class EpochsBlock:
    """The stages that pass over a dataset (reward model, SFT, DPO, GRPO/RLOO; PPO counts episodes instead)."""

    num_train_epochs: float = field(default=1.0, metadata={"help": "Passes over the training data."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimizer steps; -1 = use epochs."})


@dataclass
class LoraBlock:
    """LoRA adapters (peft) instead of full fine-tuning; merged into the weights when saved."""

    use_lora: bool = field(default=False, metadata={"help": "Train LoRA adapters (peft); merged when saved."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha."})
