"""Training-run serializers. The config serializer is generated from RewardModelConfig, so the API documents the
same fields (with the same help) as the CLI and the dataclass."""

import types
from dataclasses import MISSING, fields
from typing import Union, get_args, get_origin

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation.exports.options import MARGINS, STRATEGIES, TIES
from rlhf.models import RunMetric, TrainingRun
from rlhf.services import MANAGED_CONFIG_FIELDS
from rlhf.training.config import RewardModelConfig

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
    return _FIELD_TYPES[kind](**options)


class StrictSerializer(serializers.Serializer):
    """Unknown keys are an error, not silently dropped (a typo must not train with the default instead)."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        if unknown:
            raise serializers.ValidationError([f"Unknown field: {name}." for name in unknown])
        return super().to_internal_value(data)


RewardModelConfigSerializer = type(
    "RewardModelConfigSerializer",
    (StrictSerializer,),
    {
        "__doc__": "Reward-model training settings (rlhf.training.config.RewardModelConfig); all optional.",
        **{f.name: _config_field(f) for f in fields(RewardModelConfig) if f.name not in MANAGED_CONFIG_FIELDS},
    },
)


class ExportOptionsSerializer(StrictSerializer):
    """How the project's rankings become the run's preference pairs (the export snapshot)."""

    strategy = serializers.ChoiceField(choices=STRATEGIES, required=False, help_text="Default: all.")
    test_ratio = serializers.FloatField(required=False, min_value=0, max_value=1, help_text="Default: 0.1.")
    ties = serializers.ChoiceField(choices=TIES, required=False, help_text="Default: drop.")
    margin = serializers.ChoiceField(
        choices=MARGINS, required=False, help_text="Default: rank-diff when use_margin is on, else none."
    )
    seed = serializers.IntegerField(required=False, help_text="Seed of the train/test split.")


class TrainingRunSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    percent = serializers.IntegerField(read_only=True)
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [
            "id", "project", "kind", "name", "status", "cancel_requested", "stage", "step", "total_steps", "percent",
            "eta_s", "config", "export", "metrics", "error", "log_tail", "run_dir", "data_dir", "output_dir",
            "scoring", "task_id", "worker_pid", "worker_host", "created_by", "created_at", "started_at",
            "finished_at", "heartbeat_at", "page_url",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_page_url(self, run: TrainingRun) -> str:
        from django.urls import reverse

        return reverse("rlhf:run-detail", args=[run.pk])


class RunMetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = RunMetric
        fields = ["id", "step", "name", "value"]
