"""Importing prompts over the API: all or nothing, errors by line number, pairwise files become rankings."""

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Prompt, Ranking, Response
from tests.annotation.api._helpers import api_client


def _import(client, name: str, content: bytes, kind: str = "auto"):
    upload = SimpleUploadedFile(name, content)
    return client.post("/api/projects/alpha/import/", {"file": upload, "kind": kind}, format="multipart")


def _jsonl(*rows) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def test_import_with_bad_lines_lists_each_by_number_and_stores_nothing(world):
    content = _jsonl({"prompt": "Fine?", "responses": ["yes", "no"]}) + b"{not json\n"
    content += _jsonl({"prompt": "One answer only", "responses": ["lonely"]})
    before = (Prompt.objects.count(), Response.objects.count())

    response = _import(api_client(world.manager), "batch.jsonl", content)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 3"]
    assert "invalid JSON" in errors[0] and "needs 2 to 10" in errors[1]
    assert (Prompt.objects.count(), Response.objects.count()) == before


def test_import_of_prompts_stores_prompts_responses_and_hidden_model_names(world):
    content = _jsonl(
        {"prompt": "Capital of France?", "responses": [{"text": "Paris", "model": "m-a"}, "Lyon"], "category": "qa"},
        {"prompt": [{"role": "user", "content": "Hi"}], "responses": ["Hello", "Hey", "Yo"]},
    )

    response = _import(api_client(world.manager), "batch.jsonl", content, kind="prompts")

    assert response.status_code == 201
    assert response.json() == {
        "kind": "prompts",
        "prompts_created": 2,
        "responses_created": 5,
        "rankings_created": 0,
        "duplicates_skipped": 0,
        "prompts_refused": 0,
        "prompts_redacted": 0,
        "warnings": [],
    }
    prompt = world.project.prompts.get(text="Capital of France?")
    assert prompt.category == "qa" and list(prompt.responses.values_list("model_name", flat=True)) == ["m-a", ""]


def test_import_of_the_same_file_twice_skips_duplicates_with_a_warning(world):
    content = _jsonl({"prompt": "Again?", "responses": ["yes", "no"]})
    client = api_client(world.admin)
    assert _import(client, "a.jsonl", content).status_code == 201

    again = _import(client, "a.jsonl", content)

    assert again.status_code == 201
    assert again.json()["prompts_created"] == 0 and again.json()["duplicates_skipped"] == 1
    assert again.json()["warnings"] == ["line 1: exact duplicate of a prompt already in the project: skipped."]
    assert world.project.prompts.filter(text="Again?").count() == 1


def test_import_of_a_pairwise_file_creates_imported_rankings(world):
    content = _jsonl(
        {"prompt": "Say hi", "chosen": "Hello!", "rejected": "Go away."},
        {"prompt": "Add 2+2", "chosen": "4", "rejected": "5"},
    )

    response = _import(api_client(world.manager), "prefs.jsonl", content)

    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["prompts_created"], body["rankings_created"]) == ("pairwise", 2, 2)
    rankings = Ranking.objects.filter(project=world.project, source="imported")
    assert rankings.count() == 2
    winners = {r.prompt.text: r.entries.get(rank=1).response.text for r in rankings}
    assert winners == {"Say hi": "Hello!", "Add 2+2": "4"}


def test_import_of_a_csv_file(world):
    content = b"prompt,response_1,response_2,category\nWhy is the sky blue?,Rayleigh scattering,Magic,science\n"

    response = _import(api_client(world.manager), "batch.csv", content)

    assert response.status_code == 201 and response.json()["prompts_created"] == 1
    assert world.project.prompts.get(text="Why is the sky blue?").category == "science"


def test_import_without_a_file_or_with_an_unknown_kind_is_a_400(world):
    client = api_client(world.manager)
    missing = client.post("/api/projects/alpha/import/", {"kind": "auto"}, format="multipart")
    bad_kind = _import(client, "a.jsonl", _jsonl({"prompt": "x", "responses": ["a", "b"]}), kind="excel")

    assert missing.status_code == 400 and missing.json()["errors"] == ["file: No file was submitted."]
    assert bad_kind.status_code == 400 and bad_kind.json()["errors"] == ['kind: "excel" is not a valid choice.']
    assert not world.project.prompts.filter(text="x").exists()


def test_import_refuses_a_file_over_the_size_limit(world, settings):
    settings.IMPORT_MAX_BYTES = 10
    response = _import(api_client(world.manager), "a.jsonl", _jsonl({"prompt": "x", "responses": ["a", "b"]}))

    assert response.status_code == 400 and "the limit is 10 bytes" in response.json()["errors"][0]
