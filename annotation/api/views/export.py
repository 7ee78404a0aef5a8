"""Preference dataset export, streamed, and its metadata: managers and admins only (labelers get 403, outsiders
404)."""

import shutil

from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from annotation import exports
from annotation.api.permissions import project_for
from annotation.api.views.base import BaseApi, errors
from annotation.exports import ExportOptions
from annotation.exports.run import RAW_RATINGS
from annotation.services.exports import (
    ExportFilters,
    preference_export_archive,
    preference_export_meta,
    preference_export_stream,
)

EXPORT = ["export"]
MAX_SMALL = 2**31 - 1  # versions, rounds, counts: beyond a 32-bit column the database driver overflows
MAX_SEED = 2**32 - 1
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "raw": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


class _CsvField(serializers.CharField):
    def __init__(self, child: serializers.Field, **kwargs):
        self.child = child
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> tuple:
        parts = [part.strip() for part in super().to_internal_value(data).split(",") if part.strip()]
        return tuple(self.child.run_validation(part) for part in parts)


class ExportMetaSerializer(serializers.Serializer):
    """export_meta.json, schema version 1 (docs/export.md lists every key)."""

    class ProjectRefSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        slug = serializers.SlugField()
        name = serializers.CharField()
        kind = serializers.CharField(help_text="ranking or pairwise.")

    class LabelerRefSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()

    schema_version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    git_commit = serializers.CharField(allow_null=True)
    format = serializers.CharField(help_text="jsonl, parquet or raw.")
    dataset = serializers.CharField(help_text="pairs or ratings.")
    strategy = serializers.CharField(help_text="all, majority or consensus.")
    options = serializers.DictField(help_text="Every ExportOptions field.")
    columns = serializers.ListField(child=serializers.CharField())
    conversational = serializers.BooleanField()
    project = ProjectRefSerializer()
    response_form = serializers.ListField(
        child=serializers.DictField(), help_text="The project's per-response form fields: key, type, label."
    )
    filters = serializers.DictField(help_text="guideline_versions, since, until, categories, rounds.")
    left_out = serializers.DictField(
        help_text="gold_prompts, eval_set_prompts, excluded_labelers, rankings_of_excluded_labelers."
    )
    counts = serializers.DictField(help_text="prompts, rankings, pairs, ..., splits: {train, test}.")
    labelers = LabelerRefSerializer(many=True, help_text="Labelers of the exported rankings.")
    agreement = serializers.DictField(child=serializers.FloatField(allow_null=True))
    files = serializers.DictField(child=serializers.CharField(), help_text="Data file name -> sha256.")
    content_hash = serializers.CharField(help_text="sha256 over the sorted name<TAB>sha256 lines of `files`.")


class _FormatIsOurs(DefaultContentNegotiation):
    """`?format=` names the export format here, not a DRF renderer (DRF would answer 404 to `format=jsonl`)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ExportQuerySerializer(serializers.Serializer):
    """The export's options and filters, as query parameters (the names of `export_preferences`' flags)."""

    format = serializers.ChoiceField(
        choices=["jsonl", "parquet", "raw"], default="jsonl", help_text="jsonl / parquet: one split; raw: rankings."
    )
    dataset = serializers.ChoiceField(
        choices=exports.DATASETS, default="pairs",
        help_text="pairs; ratings: one row per response per labeler (score, labels, texts of the per-response form).",
    )  # fmt: skip
    strategy = serializers.ChoiceField(choices=exports.STRATEGIES, default="all")
    ties = serializers.ChoiceField(choices=exports.TIES, default="drop")
    margin = serializers.ChoiceField(
        choices=exports.MARGINS, default="none",
        help_text="rank-diff, score-diff (per-response scores) or strength (pairwise); the last two need strategy all.",
    )  # fmt: skip
    pairs_from = serializers.ChoiceField(
        choices=exports.PAIRS_FROM, default="ranks", help_text="scores: the per-response scores order the pairs."
    )
    strength_margins = _CsvField(
        serializers.FloatField(min_value=0, max_value=1000), required=False,
        help_text="Margin of strength 1..4 for margin=strength, e.g. 3,2,1,0 (default: the project's setting).",
    )  # fmt: skip
    columns = serializers.ChoiceField(choices=exports.COLUMNS, default="full")
    test_ratio = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.1)
    seed = serializers.IntegerField(default=0, min_value=0, max_value=MAX_SEED)
    near_dup_threshold = serializers.FloatField(min_value=0.01, max_value=1.0, default=0.8)
    min_labelers = serializers.IntegerField(min_value=1, max_value=MAX_SMALL, default=1)
    min_agreement = serializers.FloatField(min_value=0.0, max_value=1.0, required=False, allow_null=True)
    exclude_flags = serializers.CharField(default="all", help_text="all, none, or a list: unsafe,all_bad")
    category = _CsvField(serializers.CharField(), required=False, help_text="Comma-separated categories.")
    guideline_version = _CsvField(
        serializers.IntegerField(min_value=1, max_value=MAX_SMALL), required=False, help_text="e.g. 2,3"
    )
    round = _CsvField(serializers.IntegerField(min_value=1, max_value=MAX_SMALL), required=False, help_text="e.g. 1,2")
    objective = serializers.ChoiceField(
        choices=["helpfulness", "harmlessness"], default="helpfulness",
        help_text="helpfulness: every prompt but the red-team ones; harmlessness: the red-team prompts only (their "
        "rankings judge harmlessness), a separate dataset.",
    )  # fmt: skip
    since = serializers.DateTimeField(required=False, help_text="Rankings made from (ISO datetime).")
    until = serializers.DateTimeField(required=False, help_text="Rankings made until (ISO datetime).")


def _export_query(request, serializer_class: type[ExportQuerySerializer]) -> tuple[dict, ExportOptions, ExportFilters]:
    """(the validated query, its ExportOptions, its ExportFilters): a bad parameter is a 400."""
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return export_arguments(query.validated_data)


def export_arguments(q: dict) -> tuple[dict, ExportOptions, ExportFilters]:
    """The ExportOptions and ExportFilters of a validated export query (the API's and the export page's); options
    that do not go together raise a serializers.ValidationError (a 400)."""
    try:
        options = ExportOptions(
            strategy=q["strategy"], ties=q["ties"], margin=q["margin"], columns=q["columns"],
            test_ratio=q["test_ratio"], seed=q["seed"], near_duplicate_threshold=q["near_dup_threshold"],
            min_labelers=q["min_labelers"], min_agreement=q.get("min_agreement"),
            exclude_flags=exports.parse_flag_list(q["exclude_flags"]), dataset=q["dataset"],
            pairs_from=q["pairs_from"], strength_margins=q.get("strength_margins") or None,
        )  # fmt: skip
    except ValueError as exc:  # options that do not go together (e.g. margin strength with strategy majority)
        raise serializers.ValidationError({"options": [str(exc)]}) from None
    if q["format"] == "raw" and q["dataset"] == "ratings":
        raise serializers.ValidationError({"dataset": [RAW_RATINGS]})
    filters = ExportFilters(
        guideline_versions=q.get("guideline_version", ()), since=q.get("since"), until=q.get("until"),
        categories=q.get("category", ()), rounds=q.get("round", ()), objective=q.get("objective", "helpfulness"),
    )  # fmt: skip
    return q, options, filters


class PreferenceExportApi(BaseApi):
    content_negotiation_class = _FormatIsOurs

    class QuerySerializer(ExportQuerySerializer):
        format = serializers.ChoiceField(
            choices=["jsonl", "parquet", "raw", *exports.BUNDLE_FORMATS], default="jsonl",
            help_text="jsonl / parquet: one split; raw: rankings; openrlhf / verl: a zip of the hand-off bundle for "
            "that engine (data, launch scripts, README), not streamed.",
        )  # fmt: skip
        split = serializers.ChoiceField(
            choices=[exports.TRAIN, exports.TEST], default=exports.TRAIN, help_text="Ignored by the bundles."
        )

    @extend_schema(
        operation_id="preference_export", tags=EXPORT, parameters=[QuerySerializer],
        responses={200: OpenApiResponse(OpenApiTypes.BINARY, description="JSONL (one TRL preference row per line), "
                                        "Parquet, or raw rankings (JSONL), streamed; for openrlhf / verl a zip."),
                   **errors(400, 403, 404)},
        description="Stream the project's preference dataset: one split (`split`) of the pairs made by `strategy`, "
        "or every ranking (`format=raw`). Gold prompts, excluded labelers and superseded versions are always left "
        "out. The command `export_preferences` writes both splits, Hugging Face datasets and export_meta.json; "
        "`GET .../export/meta/` with the same parameters returns that export_meta.json. `format=openrlhf` or "
        "`format=verl`: a zip of a hand-off bundle for that Ray-based PPO engine (both splits, launch scripts with the "
        "platform's hyper-parameters, a README pinning the engine version, export_meta.json). See docs/export.md.",
    )  # fmt: skip
    def get(self, request, slug: str):
        project = project_for(request, slug, manage=True)
        q, options, filters = _export_query(request, self.QuerySerializer)
        fmt = q["format"]
        if fmt in exports.BUNDLE_FORMATS:
            archive = preference_export_archive(project=project, options=options, filters=filters, fmt=fmt)
            handle = archive.open("rb")
            shutil.rmtree(archive.parent)  # the open handle keeps the file readable until the response closes it
            response = FileResponse(handle, as_attachment=True, filename=archive.name, content_type="application/zip")
            response["X-Export-Schema-Version"] = str(exports.SCHEMA_VERSION)
            return response
        stream = preference_export_stream(project=project, fmt=fmt, split=q["split"], options=options, filters=filters)
        name = (
            f"{project.slug}-rankings.jsonl" if fmt == "raw" else f"{project.slug}-{q['strategy']}-{q['split']}.{fmt}"
        )
        response = StreamingHttpResponse(stream, content_type=CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["X-Export-Schema-Version"] = str(exports.SCHEMA_VERSION)
        return response


class PreferenceExportMetaApi(BaseApi):
    content_negotiation_class = _FormatIsOurs  # always JSON, whatever `format` the export would have

    @extend_schema(
        operation_id="preference_export_meta", tags=EXPORT, parameters=[ExportQuerySerializer],
        responses={200: ExportMetaSerializer, **errors(400, 403, 404)},
        description="The export_meta.json of the export with these parameters (the stream's, without `split`, "
        "which it ignores): options, filters, what was left out, counts per split, labelers, agreement, and the "
        "sha256 of each data file as `export_preferences` names them (`train.jsonl`, `test.jsonl`; `.parquet`; "
        "`rankings.jsonl` for raw), which the streamed split's bytes match. Runs the whole export without "
        "sending it: it takes as long. Managers and admins. See docs/export.md.",
    )  # fmt: skip
    def get(self, request, slug: str):
        project = project_for(request, slug, manage=True)
        q, options, filters = _export_query(request, ExportQuerySerializer)
        meta = preference_export_meta(project=project, fmt=q["format"], options=options, filters=filters)
        return Response(meta)
