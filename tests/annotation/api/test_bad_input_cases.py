"""Issue #12, items 6 and 7: each input that once gave a 500 now gives a 400 naming the line or field, stores
nothing, and an API error is JSON with a stable `code`, whatever raised it."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError

from annotation.models import Assignment, Project, Prompt, Ranking, Response
from annotation.services.assignments import assignment_next
from tests.annotation.api._helpers import api_client, ranks_body
from tests.factories import AdminFactory, ProjectFactory, PromptFactory, labeler, manager

DEEP = 100_000


def _import(client, slug: str, content: bytes, name: str = "bad.jsonl"):
    upload = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    return client.post(f"/api/projects/{slug}/import/", {"file": upload}, format="multipart")


def _counts() -> tuple[int, int, int]:
    return Prompt.objects.count(), Response.objects.count(), Ranking.objects.count()


@pytest.fixture
def setup(db):
    project = ProjectFactory(slug="p")
    PromptFactory(project=project)
    return project, manager(project, username="mgr"), labeler(project, username="lab")


GOOD = b'{"prompt": "Q?", "responses": ["a", "b"]}\n'

IMPORT_CASES = {
    "lone surrogate": (b'{"prompt": "bad \\ud800 text", "responses": ["a", "b"]}\n', "line 2: 'prompt'"),
    "lone surrogate in metadata": (
        b'{"prompt": "Q2?", "responses": ["a", "b"], "metadata": {"k": "\\udfff"}}\n',
        "line 2: ",
    ),
    "deep nesting": (b'{"prompt": "Q", "responses": ["a", "b"], "x": ' + b"[" * DEEP + b"]" * DEEP + b"}\n", "line 2"),
    "NaN": (b'{"prompt": "Q2?", "responses": ["a", "b"], "score": NaN}\n', "line 2: "),
    "Infinity": (b'{"prompt": "Q2?", "responses": ["a", "b"], "metadata": {"s": -Infinity}}\n', "line 2: "),
    "5000-digit integer": (b'{"prompt": "Q2?", "responses": ["a", "b"], "n": ' + b"9" * 5000 + b"}\n", "line 2: "),
    "response metadata a list": (
        b'{"prompt": "Q2?", "responses": [{"text": "a", "metadata": [1, 2]}, "b"]}\n',
        "line 2: response 1 'metadata' must be an object",
    ),
    "response metadata a string": (
        b'{"prompt": "Q2?", "responses": [{"text": "a", "metadata": "abc"}, "b"]}\n',
        "line 2: response 1 'metadata' must be an object",
    ),
    "metadata a list": (b'{"prompt": "Q2?", "responses": ["a", "b"], "metadata": [1]}\n', "line 2: 'metadata'"),
    "model an object": (b'{"prompt": "Q2?", "responses": [{"text": "a", "model": {"x": 1}}, "b"]}\n', "line 2: "),
    "category a list": (b'{"prompt": "Q2?", "responses": ["a", "b"], "category": [1, 2]}\n', "line 2: 'category'"),
}


@pytest.mark.parametrize("content, message", IMPORT_CASES.values(), ids=IMPORT_CASES.keys())
def test_bad_import_is_a_400_naming_the_line_and_stores_nothing(setup, content, message):
    project, mgr, _ = setup
    before = _counts()
    response = _import(api_client(mgr), project.slug, GOOD + content)
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert any(message in error for error in response.json()["errors"]), response.json()
    assert _counts() == before


@pytest.fixture
def task(setup):
    project, _, lab = setup
    return project, lab, assignment_next(project=project, labeler=lab)


def test_submit_body_nested_100000_deep_is_a_400(task):
    project, lab, assignment = task
    body = '{"ranks": ' + "[" * DEEP + "]" * DEEP + "}"
    response = api_client(lab).post(f"/api/tasks/{assignment.id}/submit/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert Ranking.objects.count() == 0


@pytest.mark.parametrize("number", ["NaN", "Infinity", "9" * 5000])
def test_submit_body_with_nan_or_a_huge_number_is_a_400(task, number):
    project, lab, assignment = task
    body = f'{{"ranks": [{{"response_id": {assignment.shown_order[0]}, "rank": {number}}}]}}'
    response = api_client(lab).post(f"/api/tasks/{assignment.id}/submit/", body, content_type="application/json")
    assert response.status_code == 400
    assert Ranking.objects.count() == 0


@pytest.mark.parametrize("rank", ["²", "①", "9" * 5000, "٣", "-1", "1.5", "1e3"])
def test_labeling_page_rank_that_is_not_a_plain_number_is_a_400(task, client, rank):
    project, lab, assignment = task
    client.force_login(lab)
    data = {f"rank_{rid}": str(i + 1) for i, rid in enumerate(assignment.shown_order)}
    data[f"rank_{assignment.shown_order[0]}"] = rank
    response = client.post(f"/projects/{project.slug}/label/{assignment.id}/submit/", data)
    assert response.status_code == 400
    assert "is not a whole number" in response.content.decode()
    assert Ranking.objects.count() == 0


def test_lease_minutes_of_10_to_the_12_is_a_400(setup):
    project, mgr, _ = setup
    response = api_client(mgr).patch(f"/api/projects/{project.slug}/", {"lease_minutes": 10**12}, format="json")
    assert response.status_code == 400
    assert any(e.startswith("lease_minutes:") for e in response.json()["errors"])
    project.refresh_from_db()
    assert project.lease_minutes == 30


BAD_FLAG_OPTIONS = [
    '"unsafe"', "[1, 2]", '[{"key": "a"}]', '[{"key": "", "label": "x"}]', '{"key": "a"}',
    '[{"key": "a", "label": "x"}, {"key": "a", "label": "y"}]', '[{"key": 5, "label": "x"}]',
]  # fmt: skip


@pytest.mark.parametrize("flag_options", BAD_FLAG_OPTIONS)
def test_admin_refuses_malformed_flag_options(setup, client, flag_options):
    project, _, _ = setup
    client.force_login(AdminFactory())
    form = _admin_project_form(project, flag_options=flag_options)
    response = client.post(f"/admin/annotation/project/{project.pk}/change/", form)
    assert response.status_code == 200  # the form again, with its error
    assert "flag" in response.content.decode().lower()
    project.refresh_from_db()
    assert project.flag_keys == ["unsafe", "all_bad", "cant_judge"]


def test_stored_malformed_flag_options_never_break_the_labeling_page(task, client):
    project, lab, assignment = task
    Project.objects.filter(pk=project.pk).update(flag_options=[1, {"key": 2}, "x", {"label": "no key"}])
    client.force_login(lab)
    assert client.get(f"/projects/{project.slug}/label/").status_code == 200
    data = {f"rank_{rid}": str(i + 1) for i, rid in enumerate(assignment.shown_order)}
    response = client.post(f"/projects/{project.slug}/label/{assignment.id}/submit/", data)
    assert response.status_code == 302
    body = ranks_body(assignment.shown_order)
    assert api_client(lab).post(f"/api/tasks/{assignment.id}/submit/", body, format="json").status_code == 200


def _admin_project_form(project, **overrides) -> dict:
    form = {
        "name": project.name, "description": "", "responses_per_task": "", "allow_ties": "on",
        "flag_options": '[{"key": "unsafe", "label": "Unsafe / harmful"}, {"key": "all_bad", "label": "All responses '
        'bad"}, {"key": "cant_judge", "label": "Can\'t judge"}]',
        "overlap": project.overlap, "lease_minutes": project.lease_minutes, "gold_rate": project.gold_rate,
        "revision_policy": project.revision_policy, "revision_hours": project.revision_hours,
        "feedback_every": project.feedback_every, "overlap_mode": project.overlap_mode,
        "overlap_min": project.overlap_min, "adaptive_agreement": project.adaptive_agreement,
        "qualification_threshold": project.qualification_threshold,
        "writing_mode": project.writing_mode, "prompt_cap": project.prompt_cap, "pii_policy": project.pii_policy,
        "near_dup_threshold": project.near_dup_threshold, "import_refusals": project.import_refusals,
        "kind": project.kind,
        "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0,
        "guidelines-TOTAL_FORMS": 0, "guidelines-INITIAL_FORMS": 0,
    }  # fmt: skip
    return {**form, **overrides}


def test_admin_refuses_lease_minutes_of_10_to_the_12(setup, client):
    project, _, _ = setup
    client.force_login(AdminFactory())
    form = _admin_project_form(project, lease_minutes=10**12)
    response = client.post(f"/admin/annotation/project/{project.pk}/change/", form)
    assert response.status_code == 200
    project.refresh_from_db()
    assert project.lease_minutes == 30


@pytest.mark.parametrize("version", ["9" * 40, "1," + "9" * 40, "-1", "x"])
def test_export_guideline_version_out_of_range_is_a_400(setup, version):
    project, mgr, _ = setup
    response = api_client(mgr).get(f"/api/projects/{project.slug}/export/", {"guideline_version": version})
    assert response.status_code == 400
    assert any(e.startswith("guideline_version") for e in response.json()["errors"]), response.json()


def test_unknown_field_posted_to_a_runs_generate_endpoint_is_a_400(setup):
    from rlhf.models import TrainingRun

    project, mgr, _ = setup
    run = TrainingRun.objects.create(project=project, kind=TrainingRun.Kind.PPO, created_by=mgr)
    response = api_client(mgr).post(f"/api/runs/{run.id}/generate/", {"k": 2, "bogus": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == ["Unknown field: bogus."]


# --- item 7: API errors are JSON, with a stable code, and the traceback is logged -------------------------------


def test_unexpected_exception_under_api_is_json_500_with_a_code_and_logged(setup, monkeypatch, caplog):
    project, mgr, _ = setup

    def boom(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("annotation.api.views.projects.project_progress_get", boom)
    client = api_client(mgr)
    client.raise_request_exception = False
    response = client.get(f"/api/projects/{project.slug}/progress/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "server_error"
    assert "secret internals" not in response.content.decode()
    assert "secret internals" in caplog.text and "Traceback" in caplog.text


def test_database_lock_timeout_under_api_is_json_503(setup, monkeypatch):
    project, mgr, _ = setup

    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr("annotation.api.views.projects.project_progress_get", locked)
    client = api_client(mgr)
    client.raise_request_exception = False
    response = client.get(f"/api/projects/{project.slug}/progress/")
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response["Retry-After"]


def test_unknown_api_url_is_a_json_404(setup):
    response = api_client(setup[1]).get("/api/no/such/thing/")
    assert response.status_code == 404
    assert response.json() == {"errors": ["Not found."], "code": "not_found", "detail": "Not found."}


@pytest.mark.parametrize(
    "status, code",
    [(400, "invalid"), (401, "not_authenticated"), (403, "permission_denied"), (404, "not_found"),
     (405, "method_not_allowed")],
)  # fmt: skip
def test_api_errors_carry_a_stable_code(setup, status, code):
    project, mgr, lab = setup
    if status == 400:
        response = api_client(mgr).patch(f"/api/projects/{project.slug}/", {"overlap": 0}, format="json")
    elif status == 401:
        response = api_client().get("/api/projects/")
    elif status == 403:
        response = api_client(lab).get(f"/api/projects/{project.slug}/progress/")
    elif status == 404:
        response = api_client(lab).get("/api/projects/nope/")
    else:
        response = api_client(lab).delete("/api/projects/")
    assert response.status_code == status
    assert response.json()["code"] == code


def test_upload_over_the_size_limit_is_a_json_400(setup, settings):
    project, mgr, _ = setup
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api_client(mgr).post(
        f"/api/projects/{project.slug}/", "{" + '"name": "' + "x" * 5000 + '"}', content_type="application/json"
    )
    assert response.status_code in (400, 405, 413)
    assert response["Content-Type"].startswith("application/json")


def test_assignment_lease_overflow_from_stored_settings_does_not_break_next(setup):
    """A lease stored before validation existed (or written around it) is capped, not an OverflowError."""
    project, _, lab = setup
    Project.objects.filter(pk=project.pk).update(lease_minutes=10**12)
    project.refresh_from_db()
    assert assignment_next(project=project, labeler=lab) is not None
    assert Assignment.objects.count() == 1
