"""The labeling loop over the API: next task, submit (idempotent), invalid rankings, skip, revise, privacy."""

import json

import pytest

from annotation.api.serializers import RANK_DUPLICATE
from annotation.models import Assignment, Ranking, Response
from annotation.ranking_rules import RANK_FOREIGN, RANK_MISSING, RANK_NOT_DENSE, RANK_TIES_FORBIDDEN
from annotation.services.rankings import (
    SUBMIT_ALREADY,
    SUBMIT_RATIONALE_REQUIRED,
    SUBMIT_SKIPPED,
    SUBMIT_UNKNOWN_FLAG,
)
from tests.annotation.api._helpers import SECRET_MODELS, api_client, ranks_body
from tests.factories import ProjectFactory, PromptFactory, ResponseFactory, labeler


def _next(client, slug="alpha"):
    return client.post(f"/api/projects/{slug}/tasks/next/")


def _submit(client, assignment_id, body):
    return client.post(f"/api/tasks/{assignment_id}/submit/", body, format="json")


def test_next_submit_then_identical_repeat_stores_one_ranking(world):
    client = api_client(world.labeler)
    task = _next(client).json()
    shown = [r["id"] for r in task["responses"]]
    body = ranks_body(shown, [1, 2, 2, 3], flags=["unsafe"], rationale="B and C are equally vague.", time_spent_s=12.5)

    first = _submit(client, task["assignment_id"], body)
    repeat = _submit(client, task["assignment_id"], body)

    assert first.status_code == 201 and first.json()["created"] is True
    assert repeat.status_code == 200 and repeat.json() == {**first.json(), "created": False}
    ranking = Ranking.objects.get()
    assert ranking.pk == first.json()["ranking_id"]
    assert dict(ranking.entries.values_list("response_id", "rank")) == dict(zip(shown, [1, 2, 2, 3], strict=True))
    assert ranking.shown_order == shown and ranking.flags == ["unsafe"] and ranking.time_spent_s == 12.5
    assert Assignment.objects.get(pk=task["assignment_id"]).status == "submitted"


def test_a_different_second_submission_is_refused_and_the_first_kept(world):
    client = api_client(world.labeler)
    task = _next(client).json()
    shown = [r["id"] for r in task["responses"]]
    assert _submit(client, task["assignment_id"], ranks_body(shown)).status_code == 201

    response = _submit(client, task["assignment_id"], ranks_body(shown, [4, 3, 2, 1]))

    assert response.status_code == 400 and response.json()["errors"] == [SUBMIT_ALREADY]
    assert dict(Ranking.objects.get().entries.values_list("response_id", "rank")) == {
        rid: i + 1 for i, rid in enumerate(shown)
    }


def _bad_bodies(shown, foreign_id):
    a, b, c, d = shown
    rank = [{"response_id": rid, "rank": r} for rid, r in zip(shown, [1, 2, 3, 4], strict=True)]
    return {
        "not_dense": (
            ranks_body(shown, [1, 3, 3, 4]),
            RANK_NOT_DENSE.format(ranks=[1, 3, 3, 4], missing=2),
        ),
        "missing_response": (
            {"ranks": rank[:3]},
            RANK_MISSING.format(response_id=d),
        ),
        "foreign_response": (
            {"ranks": [*rank, {"response_id": foreign_id, "rank": 4}]},
            RANK_FOREIGN.format(response_id=foreign_id),
        ),
        "duplicate_ids": (
            {"ranks": [*rank, {"response_id": a, "rank": 2}]},
            "ranks: " + RANK_DUPLICATE.format(response_id=a),
        ),
        "unknown_flag": (
            ranks_body(shown, flags=["boring"]),
            SUBMIT_UNKNOWN_FLAG.format(flag="boring", known="unsafe, all_bad, cant_judge"),
        ),
        "rank_not_a_number": (
            {"ranks": [{"response_id": a, "rank": "best"}, *rank[1:]]},
            "ranks[0].rank: A valid integer is required.",
        ),
        "negative_time": (
            ranks_body(shown, time_spent_s=-3),
            "time_spent_s: Ensure this value is greater than or equal to 0.",
        ),
        "empty_ranks": ({"ranks": []}, "ranks: This list may not be empty."),
    }


BAD = [
    "not_dense",
    "missing_response",
    "foreign_response",
    "duplicate_ids",
    "unknown_flag",
    "rank_not_a_number",
    "negative_time",
    "empty_ranks",
]


@pytest.mark.parametrize("case", BAD)
def test_invalid_ranking_is_a_400_with_its_message_and_stores_nothing(world, case):
    client = api_client(world.labeler)
    task = _next(client).json()
    foreign = world.prompts[1].responses.first().id  # a real response, but of another prompt
    body, message = _bad_bodies([r["id"] for r in task["responses"]], foreign)[case]

    response = _submit(client, task["assignment_id"], body)

    assert response.status_code == 400
    assert message in response.json()["errors"]
    assert Ranking.objects.count() == 0
    assert Assignment.objects.get(pk=task["assignment_id"]).status == "active"


def test_ties_are_refused_when_the_project_forbids_them(world):
    world.project.allow_ties = False
    world.project.save()
    client = api_client(world.labeler)
    task = _next(client).json()

    response = _submit(client, task["assignment_id"], ranks_body([r["id"] for r in task["responses"]], [1, 2, 2, 3]))

    assert response.status_code == 400
    assert response.json()["errors"] == [RANK_TIES_FORBIDDEN.format(ranks=[1, 2, 2, 3])]
    assert Ranking.objects.count() == 0


def test_a_rationale_is_required_when_the_project_asks_for_one(world):
    world.project.rationale_required = True
    world.project.save()
    client = api_client(world.labeler)
    task = _next(client).json()
    shown = [r["id"] for r in task["responses"]]

    refused = _submit(client, task["assignment_id"], ranks_body(shown, rationale="   "))
    accepted = _submit(client, task["assignment_id"], ranks_body(shown, rationale="A answers the question."))

    assert refused.status_code == 400 and refused.json()["errors"] == [SUBMIT_RATIONALE_REQUIRED]
    assert accepted.status_code == 201 and Ranking.objects.get().rationale == "A answers the question."


def test_labeler_cannot_submit_skip_or_revise_another_labelers_work(labeled):
    intruder = labeler(labeled.project, username="ivy")
    client = api_client(intruder)
    shown = labeled.assignment.shown_order

    submit = _submit(client, labeled.assignment.id, ranks_body(shown))
    skip = client.post(f"/api/tasks/{labeled.assignment.id}/skip/")
    revise = client.post(f"/api/rankings/{labeled.ranking.id}/revise/", ranks_body(shown), format="json")

    assert [submit.status_code, skip.status_code, revise.status_code] == [404, 404, 404]
    assert submit.json()["errors"] == ["No such task."] and revise.json()["errors"] == ["No such ranking."]
    assert Ranking.objects.count() == 1 and Ranking.objects.get().version == 1
    labeled.assignment.refresh_from_db()
    assert labeled.assignment.status == "active"


def test_labeler_lists_only_their_own_rankings(labeled):
    other = labeler(labeled.project, username="ivy")
    other_client = api_client(other)
    task = _next(other_client).json()
    assert (
        _submit(other_client, task["assignment_id"], ranks_body([r["id"] for r in task["responses"]])).status_code
        == 201
    )

    mine = api_client(labeled.labeler).get("/api/rankings/mine/").json()
    theirs = other_client.get("/api/rankings/mine/?project=alpha").json()

    assert [r["id"] for r in mine["results"]] == [labeled.ranking.id]
    assert [r["id"] for r in theirs["results"]] == [Ranking.objects.get(labeler=other).id]
    assert api_client(labeled.labeler).get("/api/rankings/mine/?project=beta").status_code == 404


def test_next_returns_204_when_nothing_is_left_for_the_labeler(db):
    project = ProjectFactory(slug="tiny", overlap=1)
    PromptFactory(project=project, responses=2)
    first, second = labeler(project), labeler(project)
    client = api_client(first)
    task = _next(client, "tiny").json()
    assert _submit(client, task["assignment_id"], ranks_body([r["id"] for r in task["responses"]])).status_code == 201

    after_submit = _next(client, "tiny")
    other = _next(api_client(second), "tiny")

    assert after_submit.status_code == 204 and after_submit.content == b""
    assert other.status_code == 204


def test_next_resumes_the_unfinished_task_and_skip_moves_on(world):
    client = api_client(world.labeler)
    first = _next(client).json()
    assert _next(client).json()["assignment_id"] == first["assignment_id"]

    skipped = client.post(f"/api/tasks/{first['assignment_id']}/skip/")
    following = _next(client).json()
    late = _submit(client, first["assignment_id"], ranks_body([r["id"] for r in first["responses"]]))

    assert skipped.status_code == 200 and skipped.json()["status"] == "skipped"
    assert following["assignment_id"] != first["assignment_id"]
    assert following["prompt"]["id"] != first["prompt"]["id"]
    assert late.status_code == 400 and late.json()["errors"] == [SUBMIT_SKIPPED]


def test_next_shows_chat_messages_and_responses_in_the_assignments_order(db):
    project = ProjectFactory(slug="chat")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    PromptFactory(project=project, messages=messages, category="chat", responses=["Hello.", "Hi there!", "Hey."])
    user = labeler(project)

    task = _next(api_client(user), "chat").json()

    assert task["prompt"]["messages"] == messages and task["prompt"]["category"] == "chat"
    shown = Assignment.objects.get(pk=task["assignment_id"]).shown_order
    assert [r["id"] for r in task["responses"]] == shown
    assert {r["text"] for r in task["responses"]} == {"Hello.", "Hi there!", "Hey."}


def test_revise_keeps_the_old_version_and_refuses_an_invalid_correction(labeled):
    client = api_client(labeled.labeler)
    shown = labeled.ranking.shown_order
    url = f"/api/rankings/{labeled.ranking.id}/revise/"

    bad = client.post(url, ranks_body(shown, [1, 1, 3, 4]), format="json")
    good = client.post(url, ranks_body(shown, [2, 1, 1, 3], rationale="Second look."), format="json")
    stale = client.post(url, ranks_body(shown), format="json")

    assert bad.status_code == 400 and bad.json()["errors"] == [RANK_NOT_DENSE.format(ranks=[1, 1, 3, 4], missing=2)]
    assert good.status_code == 201 and good.json()["version"] == 2
    assert stale.status_code == 400 and stale.json()["errors"] == [
        "Only the current version of a ranking can be revised."
    ]
    versions = Ranking.objects.filter(labeler=labeled.labeler, prompt=labeled.ranking.prompt).order_by("version")
    assert [(r.version, r.is_current) for r in versions] == [(1, False), (2, True)]
    listed = client.get("/api/rankings/mine/").json()["results"]
    assert {r["id"] for r in listed} == {good.json()["ranking_id"]}


def test_no_labeler_facing_payload_contains_a_model_name(world):
    ResponseFactory(prompt=world.prompts[0], index=4, model_name="secret-model-stray")  # a 5th response, also hidden
    client = api_client(world.labeler)
    payloads = []
    for _ in range(2):
        task = _next(client)
        payloads.append(task)
        shown = [r["id"] for r in task.json()["responses"]]
        payloads.append(_submit(client, task.json()["assignment_id"], ranks_body(shown)))
    ranking_id = payloads[1].json()["ranking_id"]
    shown = Ranking.objects.get(pk=ranking_id).shown_order
    payloads.append(client.post(f"/api/rankings/{ranking_id}/revise/", ranks_body(shown[::-1]), format="json"))
    task = _next(client)
    payloads += [task, client.post(f"/api/tasks/{task.json()['assignment_id']}/skip/")]
    for url in ["/api/projects/", "/api/projects/alpha/", "/api/projects/alpha/guidelines/"]:
        payloads.append(client.get(url))
    payloads += [client.get("/api/projects/alpha/progress/mine/"), client.get("/api/rankings/mine/")]

    assert all(p.status_code < 300 for p in payloads), [p.status_code for p in payloads]
    names = set(Response.objects.values_list("model_name", flat=True))
    assert names >= set(SECRET_MODELS)
    for payload in payloads:
        text = payload.content.decode()
        assert not any(name in text for name in names), text
        assert "model" not in json.dumps(payload.json() if payload.content else {}).lower()
