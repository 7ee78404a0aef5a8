"""Exports of the labeling modes from the database, through every entry point: the command, the streaming API and
its metadata (the same bytes), and the admin's zip. Ratings submitted through the services are read back; a
pairwise project's strength becomes the margin by the project's mapping unless the caller gives one."""

import hashlib
import io
import zipfile

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.services.assignments import assignment_next
from annotation.services.projects import project_create, project_update
from annotation.services.rankings import ranking_submit
from tests.annotation.api._helpers import api_client
from tests.factories import AdminFactory, PromptFactory, labeler, manager

pytestmark = pytest.mark.django_db

SCORES = {"ann": [7, 5, 5, 1], "ben": [6, 6, 2, 1]}  # by response index; ann has a tie at 5, ben at 6


@pytest.fixture
def form_project():
    """Two prompts; ann and ben rank every response by index and score them as SCORES says (index 0 first)."""
    project = project_create(name="Form", slug="form", response_form="instructgpt", overlap=2)
    for _ in range(2):
        PromptFactory(project=project)
    for name, scores in SCORES.items():
        user = labeler(project, username=name)
        while (assignment := assignment_next(project=project, labeler=user)) is not None:
            index = dict(assignment.prompt.responses.values_list("id", "index"))
            ranks = {rid: index[rid] + 1 for rid in assignment.shown_order}
            ratings = {
                rid: {"overall": scores[index[rid]], "harmful": index[rid] == 3} for rid in assignment.shown_order
            }
            ranking_submit(labeler=user, assignment_id=assignment.id, ranks=ranks, ratings=ratings)
    return project


@pytest.fixture
def ab_project():
    """One prompt judged by three labelers: A better (strength 1), A better (strength 2), a tie."""
    project = project_create(name="AB", slug="ab", kind="pairwise", overlap=3)
    PromptFactory(project=project, responses=["good", "bad"])
    for name, (choice, strength) in {"x": ("good", 1), "y": ("good", 2), "z": ("tie", None)}.items():
        user = labeler(project, username=name)
        assignment = assignment_next(project=project, labeler=user)
        text = dict(assignment.prompt.responses.values_list("id", "text"))
        ranks = {rid: 1 if choice == "tie" or text[rid] == "good" else 2 for rid in assignment.shown_order}
        ranking_submit(labeler=user, assignment_id=assignment.id, ranks=ranks, strength=strength)
    return project


def run(*args) -> str:
    out = io.StringIO()
    call_command("export_preferences", *args, "--no-progress", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def read(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_command_writes_the_ratings_dataset(tmp_path, form_project):
    out = run("--project", "form", "--dataset", "ratings", "--out", str(tmp_path), "--test-ratio", "0")
    rows = read(tmp_path / "train.jsonl")
    assert len(rows) == 2 * 2 * 4  # prompts x labelers x responses
    assert "Exported 16 ratings (one per response and labeler)" in out
    assert sorted(row["score"] for row in rows) == sorted(2 * (SCORES["ann"] + SCORES["ben"]))
    assert sum(row["label_harmful"] for row in rows) == 4
    assert {row["text_comment"] for row in rows} == {""}
    meta = orjson.loads((tmp_path / "export_meta.json").read_bytes())
    assert meta["dataset"] == "ratings" and meta["project"]["kind"] == "ranking"
    assert [f["key"] for f in meta["response_form"]][:2] == ["overall", "fails_instruction"]


def test_command_derives_pairs_from_scores_with_score_margins(tmp_path, form_project):
    run("--project", "form", "--pairs-from", "scores", "--margin", "score-diff", "--ties", "keep",
        "--out", str(tmp_path), "--test-ratio", "0")  # fmt: skip
    rows = read(tmp_path / "train.jsonl")
    assert len(rows) == 2 * 2 * 6
    assert sum(row["tie"] for row in rows) == 2 * 2  # each labeler tied one pair per prompt
    # every pair of unequal scores, the higher one chosen, margin = the difference (both prompts alike)
    expected = [abs(s[i] - s[j]) for s in SCORES.values() for i in range(4) for j in range(i + 1, 4) if s[i] != s[j]]
    assert sorted(row["margin"] for row in rows if not row["tie"]) == sorted(2 * expected)
    assert all(row["margin"] > 0 for row in rows if not row["tie"])


def test_command_refuses_options_that_do_not_go_together(tmp_path, form_project):
    with pytest.raises(CommandError, match="margin strength is one labeler's judgment per row"):
        run("--project", "form", "--margin", "strength", "--strategy", "majority", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="Format raw writes whole rankings"):
        run("--project", "form", "--dataset", "ratings", "--format", "raw", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="strength_margins"):
        run("--project", "form", "--strength-margins", "3,2,1", "--out", str(tmp_path))


def test_raw_rankings_carry_their_ratings_and_strength(tmp_path, form_project, ab_project):
    run("--project", "form", "--format", "raw", "--out", str(tmp_path / "form"), "--exclude-flags", "none")
    line = read(tmp_path / "form" / "rankings.jsonl")[0]
    assert {r["rating"]["overall"] for r in line["responses"]} <= set(SCORES["ann"] + SCORES["ben"])
    run("--project", "ab", "--format", "raw", "--out", str(tmp_path / "ab"))
    assert sorted(str(line["strength"]) for line in read(tmp_path / "ab" / "rankings.jsonl")) == ["1", "2", "None"]


def test_strength_margins_follow_the_project_unless_the_command_names_them(tmp_path, ab_project):
    run("--project", "ab", "--margin", "strength", "--out", str(tmp_path / "default"), "--test-ratio", "0")
    assert sorted(row["margin"] for row in read(tmp_path / "default" / "train.jsonl")) == [2.0, 3.0]  # tie dropped
    project_update(project=ab_project, strength_margins=[1, 0.5, 0.25, 0])
    run("--project", "ab", "--margin", "strength", "--ties", "keep", "--out", str(tmp_path / "mine"),
        "--test-ratio", "0")  # fmt: skip
    rows = read(tmp_path / "mine" / "train.jsonl")
    assert sorted((row["tie"], row["margin"]) for row in rows) == [(False, 0.5), (False, 1.0), (True, 0.0)]
    meta = orjson.loads((tmp_path / "mine" / "export_meta.json").read_bytes())
    assert meta["options"]["strength_margins"] == [1.0, 0.5, 0.25, 0.0]
    run("--project", "ab", "--margin", "strength", "--strength-margins", "3,2,1,0", "--out", str(tmp_path / "cli"),
        "--test-ratio", "0")  # fmt: skip
    assert sorted(row["margin"] for row in read(tmp_path / "cli" / "train.jsonl")) == [2.0, 3.0]


def test_api_streams_the_same_bytes_as_the_command_for_every_new_option(tmp_path, form_project, ab_project):
    client = api_client(manager(form_project))
    queries = [
        ("form", "dataset=ratings", ["--dataset", "ratings"]),
        ("form", "dataset=ratings&format=parquet", ["--dataset", "ratings", "--format", "parquet"]),
        ("form", "pairs_from=scores&margin=score-diff&ties=keep",
         ["--pairs-from", "scores", "--margin", "score-diff", "--ties", "keep"]),
    ]  # fmt: skip
    for slug, query, flags in queries:
        out = tmp_path / query.replace("&", "_")
        run("--project", slug, "--out", str(out), "--test-ratio", "0", *flags)
        response = client.get(f"/api/projects/{slug}/export/?test_ratio=0&{query}")
        assert response.status_code == 200, query
        body = b"".join(response.streaming_content)
        name = "train.parquet" if "parquet" in query else "train.jsonl"
        meta = orjson.loads((out / "export_meta.json").read_bytes())
        assert hashlib.sha256(body).hexdigest() == meta["files"][name], query
        api_meta = client.get(f"/api/projects/{slug}/export/meta/?test_ratio=0&{query}").json()
        assert api_meta["files"] == meta["files"] and api_meta["counts"] == meta["counts"]
    ab = api_client(manager(ab_project))
    streamed = ab.get("/api/projects/ab/export/?test_ratio=0&margin=strength&strength_margins=1,0.5,0.25,0")
    assert sorted(orjson.loads(line)["margin"] for line in b"".join(streamed.streaming_content).splitlines()) == [
        0.5, 1.0
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("margin=strength&strategy=consensus", "options: margin strength is one labeler's judgment per row"),
        ("dataset=ratings&format=raw", "dataset: Format raw writes whole rankings"),
        ("strength_margins=1,2", "options: strength_margins must be 4 non-negative numbers"),
        ("dataset=opinions", 'dataset: "opinions" is not a valid choice.'),
        ("pairs_from=vibes", 'pairs_from: "vibes" is not a valid choice.'),
    ],
)
def test_api_refuses_bad_new_options_with_a_400(form_project, query, message):
    response = api_client(manager(form_project)).get(f"/api/projects/form/export/?{query}")
    assert response.status_code == 400
    assert any(e.startswith(message) for e in response.json()["errors"]), response.json()


def test_admin_export_zip_takes_the_ratings_dataset(client, form_project):
    client.force_login(AdminFactory())
    data = {"strategy": "all", "ties": "drop", "margin": "none", "test_ratio": 0, "min_labelers": 1,
            "exclude_flags": "all", "dataset": "ratings", "pairs_from": "ranks"}  # fmt: skip
    response = client.post(f"/admin/annotation/project/{form_project.pk}/export/", data)
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert len(archive.read("train.jsonl").splitlines()) == 16
    refused = client.post(
        f"/admin/annotation/project/{form_project.pk}/export/", data | {"margin": "strength", "strategy": "majority"}
    )
    assert refused.status_code == 200 and b"one labeler&#x27;s judgment per row" in refused.content
