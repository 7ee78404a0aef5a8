"""Exports in a real browser: a manager picks options, previews the counts and first rows, downloads the zip."""

import zipfile

import pytest
from playwright.sync_api import expect

from annotation.exports import ExportOptions
from annotation.services.exports import preference_export_meta
from tests.browser.conftest import log_in
from tests.factories import ProjectFactory, PromptFactory, labeler, manager, rank_queue

pytestmark = pytest.mark.browser


def test_manager_previews_and_downloads(page, tmp_path):
    project = ProjectFactory(overlap=2)
    for i in range(5):
        PromptFactory(project=project, responses=3, text=f"Question {i}")
    rank_queue(project, labeler(project))
    rank_queue(project, labeler(project))
    log_in(page, manager(project), next_url=f"/projects/{project.slug}/")
    page.get_by_role("link", name="Export preference data").click()
    page.get_by_label("Strategy").select_option("majority")
    page.get_by_label("Format").select_option("parquet")
    page.get_by_role("button", name="Preview").click()
    meta = preference_export_meta(project=project, fmt="parquet", options=ExportOptions(strategy="majority"))
    expect(page.locator('[data-count="pairs"]')).to_have_text(str(meta["counts"]["pairs"]))
    expect(page.locator("pre.json-row")).to_have_count(5)
    with page.expect_download() as download:
        page.locator("#download-zip").click()
    path = tmp_path / "export.zip"
    download.value.save_as(path)
    assert {"train.parquet", "test.parquet", "export_meta.json"} <= set(zipfile.ZipFile(path).namelist())
