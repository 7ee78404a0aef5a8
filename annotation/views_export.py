"""Exports in the browser (managers): every format and option of `export_preferences`, a preview of the counts
and first rows, then the download. Parameters are the API's (annotation/api/views/export.py), validated by the same
serializer, so the page, the API and the command agree."""

import itertools
import shutil

import orjson
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from rest_framework import serializers

from annotation import exports
from annotation.api.views.export import ExportQuerySerializer, export_arguments
from annotation.selectors import project_get_for_user
from annotation.services.exports import (
    OBJECTIVES,
    preference_export_archive,
    preference_export_meta,
    preference_export_stream,
)

PREVIEW_ROWS = 5
FORMAT_CHOICES = [
    ("jsonl", "JSONL (TRL prompt/chosen/rejected)"),
    ("parquet", "Parquet"),
    ("hf", "Hugging Face dataset (save_to_disk folders)"),
    ("raw", "Raw rankings (one JSON line per ranking)"),
    ("openrlhf", "OpenRLHF bundle (data + train_rm.sh, train_ppo.sh)"),
    ("verl", "verl bundle (Parquet + run_ppo.sh)"),
]


class PageQuerySerializer(ExportQuerySerializer):
    format = serializers.ChoiceField(choices=[f for f, _ in FORMAT_CHOICES], default="jsonl")


def _validated(request):
    """(query, options, filters, errors): errors is {field: [messages]} when a parameter is bad."""
    query = PageQuerySerializer(data=request.GET)
    if not query.is_valid():
        return None, None, None, {k: [str(m) for m in v] for k, v in query.errors.items()}
    try:
        q, options, filters = export_arguments(query.validated_data)
    except serializers.ValidationError as error:  # options that do not go together
        return None, None, None, {k: [str(m) for m in v] for k, v in error.detail.items()}
    return q, options, filters, {}


def _preview(project, q, options, filters) -> dict:
    # Bundles and the HF dataset hold the same pairs as the JSONL export: preview those rows.
    rows_fmt = "raw" if q["format"] == "raw" else "jsonl"
    meta_fmt = q["format"] if q["format"] in ("jsonl", "parquet", "raw") else "jsonl"
    meta = preference_export_meta(project=project, fmt=meta_fmt, options=options, filters=filters)
    stream = preference_export_stream(project=project, fmt=rows_fmt, options=options, filters=filters)
    lines = itertools.islice((line for chunk in stream for line in chunk.splitlines() if line.strip()), PREVIEW_ROWS)
    rows = [orjson.dumps(orjson.loads(line), option=orjson.OPT_INDENT_2).decode() for line in lines]
    return {"meta": meta, "rows": rows, "rows_of": "train split" if rows_fmt == "jsonl" else "rankings"}


@login_required
@require_GET
def export_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, manage=True)
    q, options, filters, errors = _validated(request)
    query_string = request.GET.urlencode()
    preview = None
    if q is not None and request.GET.get("preview"):
        preview = _preview(project, q, options, filters)
    api = reverse("api-preference-export", args=[project.slug])
    context = {
        "project": project,
        "q": q or {},
        "get": request.GET,
        "errors": errors,
        "preview": preview,
        "format_choices": FORMAT_CHOICES,
        "strategies": exports.STRATEGIES,
        "ties": exports.TIES,
        "margins": exports.MARGINS,
        "columns": exports.COLUMNS,
        "datasets": exports.DATASETS,
        "objectives": OBJECTIVES,
        "pairs_from": exports.PAIRS_FROM,
        "download_url": reverse("annotation:export-download", args=[project.slug]) + "?" + query_string,
        "split_urls": (
            [(split, f"{api}?{query_string}&split={split}") for split in (exports.TRAIN, exports.TEST)]
            if q and q["format"] in ("jsonl", "parquet")
            else []
        ),
    }
    return render(request, "annotation/export.html", context, status=400 if errors else 200)


@login_required
@require_GET
def export_download(request: HttpRequest, slug: str) -> HttpResponse:
    """The whole export as one zip, in any format (the data files, export_meta.json; a bundle's folder)."""
    project = project_get_for_user(user=request.user, slug=slug, manage=True)
    q, options, filters, errors = _validated(request)
    if errors:
        return export_page(request, slug)
    archive = preference_export_archive(project=project, options=options, filters=filters, fmt=q["format"])
    handle = archive.open("rb")
    shutil.rmtree(archive.parent)  # the open handle keeps the file readable until the response closes it
    name = archive.name if q["format"] in exports.BUNDLE_FORMATS else f"{project.slug}-{q['format']}.zip"
    return FileResponse(handle, as_attachment=True, filename=name, content_type="application/zip")
