"""Training-run serializers. Each kind's config serializer is generated from its dataclass in the registry, so the
API documents the same fields (with the same help) as the CLI and the dataclass."""

import types
from dataclasses import MISSING, fields
from typing import Union, get_args, get_origin

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from annotation.exports.options import MARGINS, STRATEGIES, TIES
from rlhf.models import RunMetric, TrainingRun
from rlhf.selectors import run_length_evaluation_get, run_no_heldout_reason_get
from rlhf.services.loop import PROMPT_SCOPES
from rlhf.training.registry import STAGES

_FIELD_TYPES = {str: serializers.CharField, int: serializers.IntegerField, float: serializers.FloatField,
                bool: serializers.BooleanField}  # fmt: skip


def _config_field(dc_field) -> serializers.Field:
    kind, nullable = dc_field.type, False
    if get_origin(kind) in (Union, types.UnionType):
        args = [a for a in get_args(kind) if a is not type(None)]
        kind, nullable = args[0], True
    options = {"required": False, "help_text": dc_field.metadata.get("help", "")}
    if nullable:
        options["allow_null"] = True
    if dc_field.default is not MISSING:
        options["help_text"] += f" Default: {dc_field.default!r}."
    if kind is str:
        options["allow_blank"] = False
        options["max_length"] = 1000
    if kind is int:  # beyond 32 bits no setting makes sense, and a 40-digit one only fails later in the worker
        options["min_value"], options["max_value"] = -(2**31), 2**31 - 1
    return _FIELD_TYPES[kind](**options)


class StrictSerializer(serializers.Serializer):
    """Unknown keys are an error, not silently dropped (a typo must not train with the default instead)."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        if unknown:
            # A dict, as a serializer's errors must be (a bare list made DRF's `errors` raise: a 500).
            raise serializers.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: [f"Unknown field: {name}." for name in unknown]}
            )
        return super().to_internal_value(data)


def _dataclass_serializer(name: str, cls, managed: set[str], doc: str) -> type[StrictSerializer]:
    fields_ = {f.name: _config_field(f) for f in fields(cls) if f.name not in managed}
    return type(name, (StrictSerializer,), {"__doc__": doc, **fields_})


# One strict serializer per run kind, generated from the kind's dataclass in the registry (rlhf/training/registry.py).
CONFIG_SERIALIZERS = {
    kind: _dataclass_serializer(
        f"{stage.config.__name__}Serializer",
        stage.config,
        set(stage.managed),
        f"{stage.label} settings ({stage.config.__module__}.{stage.config.__name__}); all optional.",
    )
    for kind, stage in STAGES.items()
}
RewardModelConfigSerializer = CONFIG_SERIALIZERS["reward_model"]
POLICY_CONFIG_SERIALIZERS = {kind: cls for kind, cls in CONFIG_SERIALIZERS.items() if kind != "reward_model"}


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="RunConfig", serializers=list(CONFIG_SERIALIZERS.values()), resource_type_field_name=None
    )
)
class RunConfigField(serializers.JSONField):
    """The training settings of the run's kind (each kind's dataclass; unknown fields are an error)."""


def run_config_validate(kind: str, config) -> dict:
    """The config checked by the kind's serializer; errors come back under `config` as for a nested serializer."""
    serializer = CONFIG_SERIALIZERS[kind]()
    if not isinstance(config, dict):
        raise serializers.ValidationError({"config": ["Expected an object of settings."]})
    try:
        return dict(serializer.run_validation(config))
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({"config": exc.detail}) from None


class GenerateOptionsSerializer(StrictSerializer):
    """Sampling a policy run's responses into a new labeling round."""

    project = serializers.SlugField(required=False, help_text="Whose prompts (default: the run's project).")
    k = serializers.IntegerField(default=4, min_value=1, max_value=10, help_text="Responses sampled per prompt.")
    scope = serializers.ChoiceField(
        choices=PROMPT_SCOPES, default="train", help_text="train: the export's train side only (default); all."
    )
    include_original = serializers.BooleanField(
        default=True, help_text="Copy each prompt's existing responses next to the new ones (compare old vs new)."
    )
    max_new_tokens = serializers.IntegerField(default=64, min_value=1, max_value=4096)
    temperature = serializers.FloatField(default=0.7, min_value=0.0, max_value=5.0)
    seed = serializers.IntegerField(default=0, min_value=0, max_value=2**32 - 1)
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=10_000_000, help_text="At most this many prompts."
    )


class ComparisonOptionsSerializer(StrictSerializer):
    """A blind comparison batch of a policy run against the policy it started from."""

    project = serializers.SlugField(
        required=False, help_text="Whose prompts and labelers (default: the run's project)."
    )
    k = serializers.IntegerField(
        default=2, min_value=1, max_value=5, help_text="Responses per prompt from each model (2k shown per prompt)."
    )
    scope = serializers.ChoiceField(
        choices=PROMPT_SCOPES, default="all", help_text="all: any original prompt (default); train: the train side."
    )
    limit = serializers.IntegerField(default=8, min_value=1, max_value=100_000, help_text="At most this many prompts.")
    max_new_tokens = serializers.IntegerField(default=64, min_value=1, max_value=4096)
    temperature = serializers.FloatField(default=0.7, min_value=0.0, max_value=5.0)
    seed = serializers.IntegerField(default=0, min_value=0, max_value=2**32 - 1)


class ExportOptionsSerializer(StrictSerializer):
    """How the project's rankings become the run's preference pairs (the export snapshot)."""

    strategy = serializers.ChoiceField(choices=STRATEGIES, required=False, help_text="Default: all.")
    test_ratio = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        help_text="Default: 0.1. Above 0, at least min(3, ceil(ratio x prompts)) prompts are held out.",
    )
    ties = serializers.ChoiceField(choices=TIES, required=False, help_text="Default: drop.")
    margin = serializers.ChoiceField(
        choices=MARGINS, required=False, help_text="Default: rank-diff when use_margin is on, else none."
    )
    seed = serializers.IntegerField(
        required=False, min_value=0, max_value=2**32 - 1, help_text="Seed of the train/test split."
    )


METRICS_HELP = (
    "metrics.json of the finished run: train/ and eval/ figures (docs/training.md), e.g. eval/accuracy, "
    "eval/accuracy_chosen_longer, eval/accuracy_chosen_shorter, eval/length_balanced_accuracy, "
    "eval/length_baseline_accuracy, eval/margin_length_correlation, eval/length_bias_warning."
)


def _figure(help_text: str, integer: bool = False) -> serializers.Field:
    field = serializers.IntegerField if integer else serializers.FloatField
    return field(read_only=True, allow_null=not integer, help_text=help_text)


class LengthEvaluationSerializer(serializers.Serializer):
    """A reward model's held-out figures split by response length (metrics.json's eval/ keys; docs/training.md).
    Length = characters of the response text; equal-length pairs belong to neither group; null = no such pairs."""

    accuracy = _figure("eval/accuracy: share of held-out pairs with reward(chosen) > reward(rejected).")
    accuracy_chosen_longer = _figure("eval/accuracy_chosen_longer: accuracy where the chosen response is longer.")
    pairs_chosen_longer = _figure("eval/pairs_chosen_longer.", integer=True)
    accuracy_chosen_shorter = _figure("eval/accuracy_chosen_shorter: accuracy where the chosen response is shorter.")
    pairs_chosen_shorter = _figure("eval/pairs_chosen_shorter.", integer=True)
    pairs_equal_length = _figure("eval/pairs_equal_length: pairs in neither group.", integer=True)
    length_balanced_accuracy = _figure("eval/length_balanced_accuracy: mean of the two (0.5 for a pure length rule).")
    length_baseline_accuracy = _figure("eval/length_baseline_accuracy: 'the longer response wins' on the same pairs.")
    margin_length_correlation = _figure(
        "eval/margin_length_correlation: Pearson's r of reward margin and length difference (chosen - rejected)."
    )
    warning = serializers.BooleanField(
        read_only=True, help_text="eval/length_bias_warning: the model may have learned response length."
    )
    warning_reasons = serializers.ListField(child=serializers.CharField(), read_only=True)
    balanced_threshold = serializers.FloatField(read_only=True, help_text="Warning when length-balanced accuracy < it.")
    shorter_threshold = serializers.FloatField(read_only=True, help_text="Warning when chosen-shorter accuracy < it.")


class TrainingRunSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    percent = serializers.IntegerField(read_only=True)
    page_url = serializers.SerializerMethodField()
    length_evaluation = serializers.SerializerMethodField(
        help_text="The held-out figures split by response length and the length-bias warning; null without them."
    )
    no_heldout_reason = serializers.SerializerMethodField(
        help_text="Why this reward-model run has no held-out figure, in words; null when it has (or will have) one."
    )

    class Meta:
        model = TrainingRun
        fields = [
            "id", "project", "kind", "name", "status", "cancel_requested", "stage", "step", "total_steps", "percent",
            "eta_s", "config", "export", "metrics", "error", "log_tail", "run_dir", "data_dir", "output_dir",
            "scoring", "generation", "comparison", "task_id", "worker_pid", "worker_host", "created_by", "created_at",
            "started_at", "finished_at", "heartbeat_at", "page_url", "length_evaluation", "no_heldout_reason",
        ]  # fmt: skip
        read_only_fields = fields
        extra_kwargs = {"metrics": {"help_text": METRICS_HELP}}

    @extend_schema_field(serializers.CharField())
    def get_page_url(self, run: TrainingRun) -> str:
        from django.urls import reverse

        return reverse("rlhf:run-detail", args=[run.pk])

    @extend_schema_field(LengthEvaluationSerializer(allow_null=True))
    def get_length_evaluation(self, run: TrainingRun) -> dict | None:
        return run_length_evaluation_get(run=run)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_no_heldout_reason(self, run: TrainingRun) -> str | None:
        return run_no_heldout_reason_get(run=run)


class RunMetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = RunMetric
        fields = ["id", "step", "name", "value"]
