"""Issue #15, sections 1 and 2 through the services and the API: the per-response form (score, yes/no labels,
free text) submitted with the ranking in one call, and the pairwise A/B kind with a strength. A bad part is a 400
naming the field, and nothing is stored."""

import pytest

from annotation.models import Assignment, Project, Ranking, RankingEntry, ResponseRating
from annotation.services.assignments import assignment_next
from annotation.services.projects import project_create, project_update
from annotation.services.rankings import STRENGTH_FOR_TIE, STRENGTH_NOT_PAIRWISE, STRENGTH_REQUIRED, ranking_submit
from tests.annotation.api._helpers import api_client, ranks_body
from tests.factories import AdminFactory, PromptFactory, labeler, manager

pytestmark = pytest.mark.django_db


def _form_project(**settings):
    project = project_create(name="Form", slug="form", response_form="instructgpt", overlap=3, **settings)
    PromptFactory(project=project)
    PromptFactory(project=project)
    return project


def _pairwise_project(**settings):
    project = project_create(name="AB", slug="ab", kind="pairwise", overlap=3, **settings)
    PromptFactory(project=project, responses=["Paris.", "Lyon.", "Marseille."])
    return project


def _ratings(shown, scores, extra=None):
    extra = extra or {}
    return [{"response_id": rid, "values": {"overall": s, **extra.get(rid, {})}} for rid, s in zip(shown, scores)]


def _next(client, slug):
    return client.post(f"/api/projects/{slug}/tasks/next/").json()


def _submit(client, assignment_id, body):
    return client.post(f"/api/tasks/{assignment_id}/submit/", body, format="json")


def _nothing_stored():
    return not Ranking.objects.exists() and not RankingEntry.objects.exists() and not ResponseRating.objects.exists()


# --- 1. per-response form ---------------------------------------------------------------------------------------


def test_task_carries_the_form_and_a_valid_submit_stores_ranking_and_ratings_together():
    project = _form_project()
    user = labeler(project)
    client = api_client(user)
    task = _next(client, "form")
    assert task["kind"] == "ranking" and task["strength_labels"] == []
    assert [f["key"] for f in task["response_form"]["fields"]][:3] == ["overall", "fails_instruction", "hallucination"]
    shown = [r["id"] for r in task["responses"]]
    body = ranks_body(shown, [1, 2, 3, 4])
    body["ratings"] = _ratings(shown, [7, 5, 3, 1], {shown[3]: {"hallucination": True, "comment": "Made up."}})

    first = _submit(client, task["assignment_id"], body)
    repeat = _submit(client, task["assignment_id"], body)

    assert first.status_code == 201, first.json()
    assert repeat.status_code == 200 and repeat.json()["created"] is False  # idempotent, ratings included
    ranking = Ranking.objects.get()
    stored = {r.response_id: r for r in ranking.ratings.all()}
    assert {rid: stored[rid].score for rid in shown} == dict(zip(shown, [7, 5, 3, 1]))
    assert stored[shown[3]].values == {"overall": 1, "fails_instruction": False, "hallucination": True,
                                       "harmful": False, "personal_info": False, "not_for_assistant": False,
                                       "comment": "Made up."}  # fmt: skip
    assert stored[shown[0]].values["hallucination"] is False  # unticked labels are stored as no
    mine = client.get("/api/rankings/mine/").json()["results"][0]
    assert {r["response_id"]: r["values"]["overall"] for r in mine["ratings"]} == dict(zip(shown, [7, 5, 3, 1]))


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda shown, b: b["ratings"].pop(), "ratings", "overall (Overall quality): required."),
        (lambda shown, b: b["ratings"][0]["values"].update(overall=8), "ratings", "8 is outside the scale 1..7."),
        (lambda shown, b: b["ratings"][0]["values"].update(overall=0), "ratings", "0 is outside the scale 1..7."),
        (lambda shown, b: b["ratings"][0]["values"].update(overall="7"), "ratings", "'7' is not a whole number."),
        (lambda shown, b: b["ratings"][0]["values"].update(sarcasm=True), "ratings", "unknown field 'sarcasm'"),
        (lambda shown, b: b["ratings"][0]["values"].update(harmful="no"), "ratings", "harmful (Harmful or inappropri"),
        (lambda shown, b: b["ratings"].append({"response_id": 999_999, "values": {"overall": 3}}), "ratings",
         "Response 999999 is not one of the responses shown"),
        (lambda shown, b: b["ratings"].append(dict(b["ratings"][0])), "ratings", "is rated more than once"),
        (lambda shown, b: b.update(strength=2), "strength", STRENGTH_NOT_PAIRWISE),
    ],
)  # fmt: skip
def test_a_bad_rating_is_a_400_naming_the_field_and_nothing_is_stored(change, field, message):
    project = _form_project()
    client = api_client(labeler(project))
    task = _next(client, "form")
    shown = [r["id"] for r in task["responses"]]
    body = ranks_body(shown) | {"ratings": _ratings(shown, [6, 5, 4, 3])}
    change(shown, body)

    response = _submit(client, task["assignment_id"], body)

    assert response.status_code == 400
    data = response.json()
    assert any(e.startswith(f"{field}") and message in e for e in data["errors"]), data
    assert field in data["fields"]
    assert _nothing_stored()
    assert Assignment.objects.get(pk=task["assignment_id"]).status == "active"


def test_rank_and_rating_problems_are_reported_together():
    project = _form_project()
    client = api_client(labeler(project))
    task = _next(client, "form")
    shown = [r["id"] for r in task["responses"]]
    body = ranks_body(shown, [1, 3, 3, 4]) | {"ratings": _ratings(shown[:3], [6, 5, 4])}
    data = _submit(client, task["assignment_id"], body).json()
    assert any("Ranks must be dense" in e for e in data["errors"])
    assert any(e.startswith("ratings: ") and "required" in e for e in data["errors"])
    assert _nothing_stored()


def test_a_project_without_a_form_refuses_ratings():
    project = project_create(name="Plain", slug="plain")
    PromptFactory(project=project)
    client = api_client(labeler(project))
    task = _next(client, "plain")
    assert task["response_form"] == {}
    shown = [r["id"] for r in task["responses"]]
    body = ranks_body(shown) | {"ratings": _ratings(shown, [1, 1, 1, 1])}
    data = _submit(client, task["assignment_id"], body).json()
    assert data["errors"] == ["ratings: This project has no per-response form: ratings are not accepted."]
    assert _nothing_stored()


def test_revising_a_ranking_carries_new_ratings_and_keeps_the_old_ones():
    project = _form_project()
    user = labeler(project)
    assignment = assignment_next(project=project, labeler=user)
    shown = assignment.shown_order
    ranks = {rid: i + 1 for i, rid in enumerate(shown)}
    ranking, _ = ranking_submit(
        labeler=user, assignment_id=assignment.id, ranks=ranks, ratings={rid: {"overall": 4} for rid in shown}
    )
    client = api_client(user)
    bad = ranks_body(shown) | {"ratings": _ratings(shown, [9, 4, 4, 4])}
    assert client.post(f"/api/rankings/{ranking.id}/revise/", bad, format="json").status_code == 400
    good = ranks_body(shown) | {"ratings": _ratings(shown, [7, 4, 4, 4])}
    revised = client.post(f"/api/rankings/{ranking.id}/revise/", good, format="json").json()
    assert revised["version"] == 2
    assert ResponseRating.objects.filter(ranking_id=ranking.id).count() == 4  # the old version keeps its ratings
    assert ResponseRating.objects.get(ranking_id=revised["ranking_id"], response_id=shown[0]).score == 7


def test_the_labeling_page_posts_the_form_in_the_same_request(client):
    project = _form_project()
    user = labeler(project)
    client.force_login(user)
    page = client.get("/projects/form/label/")
    assert page.status_code == 200
    assignment = Assignment.objects.get(labeler=user)
    shown = assignment.shown_order
    data = {f"rank_{rid}": str(i + 1) for i, rid in enumerate(shown)}
    data |= {f"rating_{rid}_overall": str(7 - i) for i, rid in enumerate(shown)}
    data |= {f"rating_{shown[1]}_harmful": "1", f"rating_{shown[2]}_comment": "Too long."}
    missing = dict(data)
    del missing[f"rating_{shown[0]}_overall"]

    refused = client.post(f"/projects/form/label/{assignment.id}/submit/", missing)
    assert refused.status_code == 400 and _nothing_stored()
    assert f"Response {shown[0]}, overall (Overall quality): required." in refused.content.decode()
    assert 'value="6" checked' in refused.content.decode()  # what the labeler entered is shown again

    assert client.post(f"/projects/form/label/{assignment.id}/submit/", data).status_code == 302
    stored = {r.response_id: r.values for r in ResponseRating.objects.all()}
    assert [stored[rid]["overall"] for rid in shown] == [7, 6, 5, 4]
    assert stored[shown[1]]["harmful"] is True and stored[shown[0]]["harmful"] is False
    assert stored[shown[2]]["comment"] == "Too long."


# --- the form's schema on the project -----------------------------------------------------------------------------


def test_a_bad_schema_is_refused_on_save_with_a_clear_error():
    project = _form_project()
    client = api_client(manager(project))
    bad = {"fields": [{"key": "overall", "type": "likert", "label": "Overall", "min": 1, "max": 12}]}
    response = client.patch("/api/projects/form/", {"response_form": bad}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        "response_form: Field 1 (overall): the scale 1..12 must satisfy 0 <= min < max <= 10 with at most 10 "
        "points (every point gets a digit key)."
    ]
    project.refresh_from_db()
    assert project.response_form["fields"][0]["max"] == 7  # unchanged


def test_a_schema_saved_through_the_api_is_stored_in_full_and_the_preset_expands():
    project = project_create(name="Later", slug="later")
    client = api_client(manager(project))
    partial = {"fields": [{"key": "helpful", "type": "likert", "label": "Helpfulness", "min": 1, "max": 5},
                          {"key": "toxic", "type": "label", "label": "Toxic"}]}  # fmt: skip
    data = client.patch("/api/projects/later/", {"response_form": partial}, format="json").json()
    assert data["response_form"]["fields"][0]["required"] is True
    assert data["response_form"]["fields"][1]["shortcut"] == "l"
    data = client.patch("/api/projects/later/", {"response_form": "instructgpt"}, format="json").json()
    assert len(data["response_form"]["fields"]) == 7
    data = client.patch("/api/projects/later/", {"response_form": {}}, format="json").json()
    assert data["response_form"] == {}


def test_a_stored_broken_schema_never_breaks_the_page_or_a_submit(client):
    project = _form_project()
    Project.objects.filter(pk=project.pk).update(response_form={"fields": [{"key": 5}]})
    user = labeler(project)
    client.force_login(user)
    assert client.get("/projects/form/label/").status_code == 200
    assignment = Assignment.objects.get(labeler=user)
    data = {f"rank_{rid}": str(i + 1) for i, rid in enumerate(assignment.shown_order)}
    assert client.post(f"/projects/form/label/{assignment.id}/submit/", data).status_code == 302


# --- 2. pairwise A/B with a strength ------------------------------------------------------------------------------


def test_pairwise_tasks_show_the_same_two_responses_to_every_labeler_in_their_own_order():
    project = _pairwise_project()
    users = [labeler(project) for _ in range(3)]
    orders = [assignment_next(project=project, labeler=u).shown_order for u in users]
    assert all(len(order) == 2 for order in orders)
    assert len({tuple(sorted(order)) for order in orders}) == 1


def test_pairwise_submit_stores_a_ranking_of_two_with_its_strength():
    project = _pairwise_project()
    client = api_client(labeler(project))
    task = _next(client, "ab")
    assert task["kind"] == "pairwise" and len(task["responses"]) == 2
    assert task["strength_labels"] == [
        "Significantly better", "Better", "Slightly better", "Negligibly better / unsure"
    ]  # fmt: skip
    a, b = [r["id"] for r in task["responses"]]
    response = _submit(client, task["assignment_id"], ranks_body([a, b], [2, 1], strength=3))  # B slightly better
    assert response.status_code == 201, response.json()
    ranking = Ranking.objects.get()
    assert ranking.strength == 3 and ranking.num_responses == 2
    assert dict(ranking.entries.values_list("response_id", "rank")) == {a: 2, b: 1}


def test_my_rankings_page_names_the_strength(client):
    project = _pairwise_project()
    user = labeler(project)
    assignment = assignment_next(project=project, labeler=user)
    a, b = assignment.shown_order
    ranking_submit(labeler=user, assignment_id=assignment.id, ranks={a: 1, b: 2}, strength=3)
    client.force_login(user)
    html = client.get("/projects/ab/my-rankings/").content.decode()
    assert "How much better" in html and "<td>Slightly better</td>" in html


def test_pairwise_tie_has_no_strength():
    project = _pairwise_project()
    client = api_client(labeler(project))
    task = _next(client, "ab")
    a, b = [r["id"] for r in task["responses"]]
    assert _submit(client, task["assignment_id"], ranks_body([a, b], [1, 1])).status_code == 201
    assert Ranking.objects.get().strength is None


@pytest.mark.parametrize(
    ("ranks", "extra", "message"),
    [
        ([1, 2], {}, STRENGTH_REQUIRED.format(levels=4)),
        ([1, 2], {"strength": None}, STRENGTH_REQUIRED.format(levels=4)),
        ([1, 2], {"strength": 5}, "strength must be a whole number from 1 (strongest) to 4, got 5."),
        ([1, 2], {"strength": 0}, "strength must be a whole number from 1 (strongest) to 4, got 0."),
        ([1, 1], {"strength": 2}, STRENGTH_FOR_TIE),
    ],
)
def test_pairwise_bad_strength_is_a_400_naming_strength_and_nothing_is_stored(ranks, extra, message):
    project = _pairwise_project()
    client = api_client(labeler(project))
    task = _next(client, "ab")
    shown = [r["id"] for r in task["responses"]]
    data = _submit(client, task["assignment_id"], ranks_body(shown, ranks, **extra)).json()
    assert data["errors"] == [f"strength: {message}"]
    assert _nothing_stored()


def test_pairwise_without_ties_refuses_a_tie():
    project = _pairwise_project(allow_ties=False)
    client = api_client(labeler(project))
    task = _next(client, "ab")
    shown = [r["id"] for r in task["responses"]]
    data = _submit(client, task["assignment_id"], ranks_body(shown, [1, 1])).json()
    assert data["errors"] == ["This project does not allow ties: ranks [1, 1] repeat a rank."]


def test_strength_names_and_margins_are_editable_and_checked():
    project = _pairwise_project()
    client = api_client(manager(project))
    names = ["Much better", "Better", "A bit better", "Same / unsure"]
    data = client.patch("/api/projects/ab/", {"strength_labels": names, "strength_margins": [1, 0.5, 0.25, 0]},
                        format="json").json()  # fmt: skip
    assert data["strength_labels"] == names and data["strength_margins"] == [1, 0.5, 0.25, 0]
    bad = client.patch("/api/projects/ab/", {"strength_labels": ["a", "b"]}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0].startswith("strength_labels:")
    bad = client.patch("/api/projects/ab/", {"strength_margins": [1, 2, 3, -1]}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0].startswith("strength_margins[3]:")


def test_kind_is_fixed_once_the_project_has_rankings():
    project = _pairwise_project()
    user = labeler(project)
    assignment = assignment_next(project=project, labeler=user)
    a, b = assignment.shown_order
    ranking_submit(labeler=user, assignment_id=assignment.id, ranks={a: 1, b: 2}, strength=1)
    client = api_client(AdminFactory())
    response = client.patch("/api/projects/ab/", {"kind": "ranking"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("kind: The project already has rankings or tasks")
    fresh = project_create(name="Fresh", slug="fresh")
    assert project_update(project=fresh, kind="pairwise").kind == "pairwise"
    with pytest.raises(Exception, match="responses per task"):
        project_update(project=fresh, responses_per_task=4)
    PromptFactory(project=fresh)
    assignment_next(project=fresh, labeler=labeler(fresh))  # a task handed out, not yet ranked
    with pytest.raises(Exception, match="rankings or tasks handed out"):
        project_update(project=fresh, kind="ranking")


def test_admin_refuses_a_bad_schema_with_its_message_and_expands_the_preset(client):
    from tests.annotation.api.test_bad_input_cases import _admin_project_form

    project = project_create(name="Admin", slug="admin-form")
    client.force_login(AdminFactory())
    url = f"/admin/annotation/project/{project.pk}/change/"
    bad = '{"fields": [{"key": "overall", "type": "likert", "label": "Overall", "anchors": {"9": "Top"}}]}'
    response = client.post(url, _admin_project_form(project, response_form=bad))
    assert response.status_code == 200
    assert "anchor &#x27;9&#x27; is not a point of the scale 1..7" in response.content.decode()
    project.refresh_from_db()
    assert project.response_form == {}
    assert client.post(url, _admin_project_form(project, response_form='"instructgpt"')).status_code == 302
    project.refresh_from_db()
    assert len(project.response_fields) == 7 and project.response_form["fields"][0]["key"] == "overall"
