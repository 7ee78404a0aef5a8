"""The admin's export page: managers download their projects' preference data as a zip; others' are a 404."""

import io
import zipfile

import orjson
import pytest
from django.urls import reverse

from tests.factories import ProjectFactory, PromptFactory, labeler, manager, ranking_make


@pytest.fixture
def projects(db):
    mine, theirs = ProjectFactory(slug="mine"), ProjectFactory(slug="theirs")
    people = [labeler(mine, username="l1"), labeler(mine, username="l2")]
    for _ in range(5):
        prompt = PromptFactory(project=mine)
        for person in people:
            ranking_make(prompt, person, [1, 2, 3, 4])
    return {"mine": mine, "theirs": theirs, "manager": manager(mine, is_staff=True, username="maria")}


def _url(project) -> str:
    return reverse("admin:annotation_project_export", args=[project.pk])


def test_manager_gets_the_export_form_linked_from_the_project_pages(client, projects):
    client.force_login(projects["manager"])

    page = client.get(_url(projects["mine"]))
    changelist = client.get(reverse("admin:annotation_project_changelist"))
    change = client.get(reverse("admin:annotation_project_change", args=[projects["mine"].pk]))

    assert page.status_code == 200 and b'id="export-form"' in page.content
    assert _url(projects["mine"]).encode() in changelist.content and _url(projects["mine"]).encode() in change.content


def test_manager_downloads_a_zip_with_train_test_and_metadata(client, projects):
    client.force_login(projects["manager"])

    response = client.post(_url(projects["mine"]), {
        "strategy": "majority", "ties": "drop", "margin": "rank-diff", "test_ratio": "0", "min_labelers": "2",
        "exclude_flags": "all", "categories": "",
    })  # fmt: skip

    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="mine-preferences.zip"'
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as zf:
        assert sorted(zf.namelist()) == ["export_meta.json", "test.jsonl", "train.jsonl"]
        meta = orjson.loads(zf.read("export_meta.json"))
        rows = [orjson.loads(line) for line in zf.read("train.jsonl").splitlines()]
    assert meta["strategy"] == "majority" and meta["counts"]["prompts"] == 5
    assert len(rows) == 5 * 6 and {row["margin"] for row in rows} == {1.0, 2.0, 3.0}
    assert all(row["votes_for"] == 2 and row["votes_against"] == 0 for row in rows)


def test_manager_cannot_export_another_project(client, projects):
    client.force_login(projects["manager"])

    assert client.get(_url(projects["theirs"])).status_code == 404
    assert client.post(_url(projects["theirs"]), {"strategy": "all"}).status_code == 404


def test_a_labeler_without_staff_access_is_sent_to_the_admin_login(client, projects):
    client.force_login(projects["mine"].members.get(username="l1"))

    response = client.get(_url(projects["mine"]))

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
