"""Exports in the browser: the preview's counts equal export_meta.json's, the first rows are the export's rows,
every format downloads as a zip with its files, bad options are a 400 naming the field, labelers never get in."""

import io
import json
import zipfile

import pytest
from django.urls import reverse

from annotation.services.exports import preference_export_meta
from tests.factories import ProjectFactory, PromptFactory, labeler, manager, rank_queue


@pytest.fixture
def project():
    project = ProjectFactory(overlap=2)
    for i in range(6):
        PromptFactory(project=project, responses=3, text=f"Question {i}: <b>bold</b>?")
    rank_queue(project, labeler(project))
    rank_queue(project, labeler(project), ranks_for=lambda p, rs: {r.id: min(r.index + 1, 2) for r in rs})
    return project


@pytest.mark.django_db
def test_preview_counts_and_rows(client, project):
    client.force_login(manager(project))
    url = reverse("annotation:export", args=[project.slug])
    page = client.get(url, {"preview": "1", "strategy": "all", "ties": "drop"})
    body = page.content.decode()
    meta = preference_export_meta(project=project)
    assert page.status_code == 200
    assert f'data-count="pairs">{meta["counts"]["pairs"]}<' in body
    assert f'data-count="ties_dropped">{meta["counts"]["ties_dropped"]}<' in body
    assert meta["counts"]["ties_dropped"] == 6  # the second labeler tied two responses on every prompt
    assert body.count('class="json-row"') == 5 and "&lt;b&gt;bold&lt;/b&gt;" in body  # escaped, never HTML
    assert "split=train" in body and "split=test" in body


@pytest.mark.django_db
@pytest.mark.parametrize("fmt,expected", [
    ("jsonl", {"train.jsonl", "test.jsonl", "export_meta.json"}),
    ("parquet", {"train.parquet", "test.parquet", "export_meta.json"}),
    ("raw", {"rankings.jsonl", "export_meta.json"}),
    ("hf", {"export_meta.json", "dataset_dict.json"}),
    ("openrlhf", {"train_rm.sh", "train_ppo.sh", "README.md"}),
])  # fmt: skip
def test_every_format_downloads_as_a_zip(client, project, fmt, expected):
    client.force_login(manager(project))
    response = client.get(reverse("annotation:export-download", args=[project.slug]), {"format": fmt})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    basenames = {name.rsplit("/", 1)[-1] for name in names}
    assert expected <= basenames, names
    if fmt == "jsonl":
        zf = zipfile.ZipFile(
            io.BytesIO(
                b"".join(
                    client.get(
                        reverse("annotation:export-download", args=[project.slug]), {"format": fmt}
                    ).streaming_content
                )
            )
        )
        meta = json.loads(zf.read("export_meta.json"))
        assert meta["counts"]["pairs"] == preference_export_meta(project=project)["counts"]["pairs"]  # fmt: skip


@pytest.mark.django_db
def test_bad_options_and_roles(client, project):
    boss = manager(project)
    client.force_login(boss)
    page = client.get(reverse("annotation:export", args=[project.slug]), {"preview": "1", "test_ratio": "7"})
    assert page.status_code == 400 and b"test_ratio" in page.content
    bad = client.get(reverse("annotation:export-download", args=[project.slug]), {"format": "exe"})
    assert bad.status_code == 400
    client.force_login(labeler(project))
    assert client.get(reverse("annotation:export", args=[project.slug])).status_code == 404
    assert client.get(reverse("annotation:export-download", args=[project.slug])).status_code == 404
