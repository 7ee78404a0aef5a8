"""Every API endpoint against every kind of caller: anonymous, the project's labeler, a labeler of another project
(an outsider), the project's manager and an admin. Status codes, bodies, and no change in the database when refused.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Assignment, Guideline, Membership, Project, Prompt, Ranking
from tests.annotation.api._helpers import api_client, ranks_body

ROLES = ["anonymous", "labeler", "outsider", "manager", "admin"]

IMPORT_LINE = b'{"prompt": "Imported question?", "responses": ["first answer", "second answer"]}\n'


def _import_body(world):
    return {"file": SimpleUploadedFile("new.jsonl", IMPORT_LINE), "kind": "auto"}


# endpoint: (method, url, body builder or None, multipart?)
ENDPOINTS = {
    "project_list": ("get", "/api/projects/", None),
    "project_create": ("post", "/api/projects/", lambda w: {"name": "Gamma", "slug": "gamma", "overlap": 2}),
    "project_detail": ("get", "/api/projects/alpha/", None),
    "project_update": ("patch", "/api/projects/alpha/", lambda w: {"overlap": 5, "allow_ties": False}),
    "guideline_list": ("get", "/api/projects/alpha/guidelines/", None),
    "guideline_publish": ("post", "/api/projects/alpha/guidelines/", lambda w: {"text": "# v2\nBe kind."}),
    "membership_list": ("get", "/api/projects/alpha/members/", None),
    "membership_set": ("post", "/api/projects/alpha/members/", lambda w: {"username": "nina", "role": "labeler"}),
    "membership_remove": ("delete", "/api/projects/alpha/members/lea/", None),
    "prompts_import": ("post", "/api/projects/alpha/import/", _import_body),
    "task_next": ("post", "/api/projects/alpha/tasks/next/", None),
    "project_progress": ("get", "/api/projects/alpha/progress/", None),
    "labeler_progress": ("get", "/api/projects/alpha/progress/mine/", None),
    "task_submit": ("post", "/api/tasks/{assignment}/submit/", lambda w: ranks_body(w.assignment.shown_order)),
    "task_skip": ("post", "/api/tasks/{assignment}/skip/", None),
    "ranking_mine_list": ("get", "/api/rankings/mine/?project=alpha", None),
    "ranking_revise": (
        "post",
        "/api/rankings/{ranking}/revise/",
        lambda w: ranks_body(w.ranking.shown_order, [1, 1, 2, 3]),
    ),
}

#                     anonymous labeler outsider manager admin
EXPECTED = {
    "project_list": (401, 200, 200, 200, 200),
    "project_create": (401, 403, 403, 403, 201),
    "project_detail": (401, 200, 404, 200, 200),
    "project_update": (401, 403, 404, 200, 200),
    "guideline_list": (401, 200, 404, 200, 200),
    "guideline_publish": (401, 403, 404, 201, 201),
    "membership_list": (401, 403, 404, 200, 200),
    "membership_set": (401, 403, 404, 200, 200),
    "membership_remove": (401, 403, 404, 204, 204),
    "prompts_import": (401, 403, 404, 201, 201),
    "task_next": (401, 200, 404, 200, 200),
    "project_progress": (401, 403, 404, 200, 200),
    "labeler_progress": (401, 200, 404, 200, 200),
    # Tasks and rankings are the labeler's own: nobody else, not even an admin, may act on them.
    "task_submit": (401, 201, 404, 404, 404),
    "task_skip": (401, 200, 404, 404, 404),
    "ranking_mine_list": (401, 200, 404, 200, 200),
    "ranking_revise": (401, 201, 404, 404, 404),
}

CASES = [
    pytest.param(endpoint, role, EXPECTED[endpoint][i], id=f"{endpoint}-{role}")
    for endpoint in ENDPOINTS
    for i, role in enumerate(ROLES)
]


def _snapshot() -> dict:
    """What a refused request must leave untouched."""
    alpha = Project.objects.get(slug="alpha")
    return {
        "projects": list(Project.objects.values_list("slug", flat=True)),
        "alpha_settings": (alpha.overlap, alpha.allow_ties),
        "guidelines": Guideline.objects.count(),
        "memberships": sorted(Membership.objects.values_list("project__slug", "user__username", "role")),
        "prompts": Prompt.objects.count(),
        "assignments": sorted(Assignment.objects.values_list("id", "labeler__username", "status")),
        "rankings": sorted(Ranking.objects.values_list("id", "is_current")),
    }


def _request(world, endpoint: str, role: str):
    method, url, body = ENDPOINTS[endpoint]
    url = url.format(assignment=world.assignment.id, ranking=world.ranking.id)
    client = api_client(None if role == "anonymous" else getattr(world, role))
    data = body(world) if body else None
    fmt = "multipart" if endpoint == "prompts_import" else "json"
    return getattr(client, method)(url, data, format=fmt)


def test_role_matrix_covers_every_api_operation_in_the_schema(db):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert operations - {"auth_token_create"} == set(ENDPOINTS)


@pytest.mark.parametrize(("endpoint", "role", "expected"), CASES)
def test_role_matrix_status_and_body(labeled, endpoint, role, expected):
    before = _snapshot()
    response = _request(labeled, endpoint, role)

    assert response.status_code == expected, response.content
    if expected >= 400:
        body = response.json()
        assert body["errors"] and all(isinstance(message, str) for message in body["errors"])
        assert _snapshot() == before, "a refused request changed the database"
    if expected == 401:
        assert response["WWW-Authenticate"] == "Token"
    if expected < 300:
        CHECKS[endpoint](labeled, role, response)


def check_project_list(world, role, response):
    slugs = {p["slug"]: p["role"] for p in response.json()["results"]}
    assert {
        "labeler": {"alpha": "labeler"},
        "outsider": {"beta": "labeler"},
        "manager": {"alpha": "manager"},
        "admin": {"alpha": "admin", "beta": "admin"},
    }[role] == slugs
    assert response.json()["count"] == len(slugs)


def check_project_create(world, role, response):
    assert response.json()["slug"] == "gamma" and response.json()["overlap"] == 2
    project = Project.objects.get(slug="gamma")
    assert project.guidelines.count() == 1


def check_project_detail(world, role, response):
    body = response.json()
    assert body["slug"] == "alpha" and body["role"] == role
    assert [o["key"] for o in body["flag_options"]] == world.project.flag_keys


def check_project_update(world, role, response):
    assert response.json()["overlap"] == 5 and response.json()["allow_ties"] is False
    project = Project.objects.get(slug="alpha")
    assert (project.overlap, project.allow_ties) == (5, False)


def check_guideline_list(world, role, response):
    assert [g["version"] for g in response.json()["results"]] == [1]


def check_guideline_publish(world, role, response):
    assert response.json()["version"] == 2 and response.json()["created_by"] == getattr(world, role).username
    assert list(world.project.guidelines.values_list("version", flat=True)) == [2, 1]


def check_membership_list(world, role, response):
    members = {m["username"]: m["role"] for m in response.json()["results"]}
    assert members == {"lea": "labeler", "max": "manager"}


def check_membership_set(world, role, response):
    assert response.json()["username"] == "nina" and response.json()["role"] == "labeler"
    assert Membership.objects.filter(project=world.project, user__username="nina", role="labeler").exists()


def check_membership_remove(world, role, response):
    assert response.content == b""
    assert not Membership.objects.filter(project=world.project, user__username="lea").exists()
    assert Ranking.objects.filter(labeler=world.labeler).count() == 1  # the rankings stay


def check_prompts_import(world, role, response):
    assert response.json()["prompts_created"] == 1 and response.json()["responses_created"] == 2
    assert world.project.prompts.filter(text="Imported question?").exists()


def check_task_next(world, role, response):
    body = response.json()
    assignment = Assignment.objects.get(pk=body["assignment_id"])
    assert assignment.labeler == getattr(world, role)
    assert [r["id"] for r in body["responses"]] == assignment.shown_order
    if role == "labeler":  # the unfinished task comes back first
        assert body["assignment_id"] == world.assignment.id


def check_project_progress(world, role, response):
    body = response.json()
    assert body["prompts"] == 3 and body["rankings"] == 1 and body["target_rankings"] == 9
    assert body["per_labeler"] == [{"labeler": "lea", "rankings": 1}]


def check_labeler_progress(world, role, response):
    done = 1 if role == "labeler" else 0
    assert response.json() == {
        "done": done,
        "assigned": 1 if role == "labeler" else 0,
        "project_rankings": 1,
        "project_target": 9,
    }


def check_task_submit(world, role, response):
    assert response.json()["created"] is True
    assert Ranking.objects.filter(assignment=world.assignment, labeler=world.labeler).count() == 1


def check_task_skip(world, role, response):
    assert response.json() == {"assignment_id": world.assignment.id, "status": "skipped"}
    world.assignment.refresh_from_db()
    assert world.assignment.status == "skipped"


def check_ranking_mine_list(world, role, response):
    results = response.json()["results"]
    if role != "labeler":
        assert results == []
        return
    assert [r["id"] for r in results] == [world.ranking.id]
    assert {r["response_id"]: r["rank"] for r in results[0]["ranks"]} == dict(
        world.ranking.entries.values_list("response_id", "rank")
    )


def check_ranking_revise(world, role, response):
    assert response.json()["version"] == 2
    current = Ranking.objects.get(labeler=world.labeler, prompt=world.ranking.prompt, is_current=True)
    assert current.pk == response.json()["ranking_id"] and current.version == 2
    assert Ranking.objects.filter(pk=world.ranking.pk, is_current=False).exists()


CHECKS = {name.removeprefix("check_"): fn for name, fn in globals().items() if name.startswith("check_")}
