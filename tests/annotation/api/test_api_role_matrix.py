"""Every API endpoint against every kind of caller: anonymous, the project's labeler, a labeler of another project
(an outsider), the project's manager and an admin. Status codes, bodies, and no change in the database when refused.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Assignment, EvalSet, Guideline, Membership, Project, Prompt, PromptRefusal, Ranking
from annotation.services.gold import prompt_gold_set
from rlhf.models import RunMetric, TrainingRun
from rlhf.services.prepare import run_inputs_prepare
from tests.annotation.api._helpers import SECRET_MODELS, api_client, ranks_body
from tests.factories import PromptFactory

ROLES = ["anonymous", "labeler", "outsider", "manager", "admin"]

IMPORT_LINE = b'{"prompt": "Imported question?", "responses": ["first answer", "second answer"]}\n'


def _import_body(world):
    return {"file": SimpleUploadedFile("new.jsonl", IMPORT_LINE), "kind": "auto"}


def _eval_set_body(world):
    return {"name": "held-out", "file": SimpleUploadedFile("eval.txt", b"What is the capital of Peru?\n")}


MULTIPART = ("prompts_import", "eval_set_upload")


# endpoint: (method, url, body builder or None, multipart?)
ENDPOINTS = {
    "project_list": ("get", "/api/projects/", None),
    "project_create": ("post", "/api/projects/", lambda w: {"name": "Gamma", "slug": "gamma", "overlap": 2}),
    "project_detail": ("get", "/api/projects/alpha/", None),
    "project_update": (
        "patch",
        "/api/projects/alpha/",
        lambda w: {"overlap": 5, "allow_ties": False, "render_markdown": False},
    ),
    "guideline_list": ("get", "/api/projects/alpha/guidelines/", None),
    "guideline_publish": ("post", "/api/projects/alpha/guidelines/", lambda w: {"text": "# v2\nBe kind."}),
    "membership_list": ("get", "/api/projects/alpha/members/", None),
    "membership_set": ("post", "/api/projects/alpha/members/", lambda w: {"username": "nina", "role": "labeler"}),
    "membership_remove": ("delete", "/api/projects/alpha/members/lea/", None),
    "prompts_import": ("post", "/api/projects/alpha/import/", _import_body),
    "task_next": ("post", "/api/projects/alpha/tasks/next/", None),
    "project_progress": ("get", "/api/projects/alpha/progress/", None),
    "project_dashboard": ("get", "/api/projects/alpha/progress/dashboard/", None),
    "qualification_mine": ("get", "/api/projects/alpha/qualification/", None),
    "qualification_attempts": ("get", "/api/projects/alpha/qualification/attempts/", None),
    "qualification_decide": ("post", "/api/projects/alpha/qualification/decisions/lea/", lambda w: {"admit": True}),
    "labeler_progress": ("get", "/api/projects/alpha/progress/mine/", None),
    "written_prompts_mine": ("get", "/api/projects/alpha/prompts/written/", None),
    "written_prompt_create": (
        "post",
        "/api/projects/alpha/prompts/written/",
        lambda w: {"text": "Explain the tides to a ten-year-old.", "category": "open_qa"},
    ),
    "eval_set_list": ("get", "/api/projects/alpha/eval-sets/", None),
    "eval_set_upload": ("post", "/api/projects/alpha/eval-sets/", _eval_set_body),
    "task_submit": ("post", "/api/tasks/{assignment}/submit/", lambda w: ranks_body(w.assignment.shown_order)),
    "task_skip": ("post", "/api/tasks/{assignment}/skip/", None),
    "ranking_mine_list": ("get", "/api/rankings/mine/?project=alpha", None),
    "ranking_revise": (
        "post",
        "/api/rankings/{ranking}/revise/",
        lambda w: ranks_body(w.ranking.shown_order, [1, 1, 2, 3]),
    ),
    "agreement_report": ("get", "/api/projects/alpha/agreement/?n_boot=10", None),
    "agreement_labelers": ("get", "/api/projects/alpha/agreement/labelers/", None),
    "agreement_leaderboard": ("get", "/api/projects/alpha/agreement/leaderboard/?n_boot=10", None),
    "gold_list": ("get", "/api/projects/alpha/gold/", None),
    "prompt_gold_set": (
        "post",
        "/api/projects/alpha/prompts/{new_gold}/gold/",
        lambda w: ranks_body(sorted(w.prompts[2].responses.values_list("id", flat=True)), [1, 2, 2, 3]),
    ),
    "prompt_gold_unset": ("delete", "/api/projects/alpha/prompts/{gold}/gold/", None),
    "membership_exclusion_set": ("post", "/api/projects/alpha/members/lea/exclusion/", lambda w: {"excluded": True}),
    "preference_export": ("get", "/api/projects/alpha/export/?format=jsonl&test_ratio=0", None),
    "preference_export_meta": ("get", "/api/projects/alpha/export/meta/?format=jsonl&test_ratio=0", None),
    "run_list": ("get", "/api/runs/", None),
    "run_create": (
        "post",
        "/api/runs/",
        lambda w: {"project": "alpha", "config": {"base_model": "tiny", "max_steps": 2}, "export": {"test_ratio": 0}},
    ),
    "run_detail": ("get", "/api/runs/{run}/", None),
    "run_metrics": ("get", "/api/runs/{run}/metrics/?after=0", None),
    "run_cancel": ("post", "/api/runs/{run}/cancel/", None),
    "run_score": ("post", "/api/runs/{done_run}/score/", None),
    "run_disagreements": ("get", "/api/runs/{done_run}/disagreements/", None),
    "run_generate": ("post", "/api/runs/{policy_run}/generate/", lambda w: {"k": 2, "max_new_tokens": 8}),
    "run_comparison_list": ("get", "/api/runs/{policy_run}/comparisons/", None),
    "run_comparison_create": ("post", "/api/runs/{policy_run}/comparisons/", lambda w: {"k": 1, "limit": 2}),
    "auth_token_mine": ("get", "/api/auth/token/mine/", None),
    "auth_token_rotate_mine": ("post", "/api/auth/token/mine/rotate/", None),
    "auth_token_revoke_mine": ("delete", "/api/auth/token/mine/", None),
    "auth_token_info": ("get", "/api/auth/tokens/lea/", None),
    "auth_token_rotate": ("post", "/api/auth/tokens/lea/rotate/", None),
    "auth_token_revoke": ("delete", "/api/auth/tokens/lea/", None),
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
    "project_dashboard": (401, 403, 404, 200, 200),
    "qualification_mine": (401, 200, 404, 200, 200),
    "qualification_attempts": (401, 403, 404, 200, 200),
    "qualification_decide": (401, 403, 404, 200, 200),
    "labeler_progress": (401, 200, 404, 200, 200),
    # Writing prompts: every member of a project with a writing task; evaluation sets: managers and admins.
    "written_prompts_mine": (401, 200, 404, 200, 200),
    "written_prompt_create": (401, 201, 404, 201, 201),
    "eval_set_list": (401, 403, 404, 200, 200),
    "eval_set_upload": (401, 403, 404, 201, 201),
    # Tasks and rankings are the labeler's own: nobody else, not even an admin, may act on them.
    "task_submit": (401, 201, 404, 404, 404),
    "task_skip": (401, 200, 404, 404, 404),
    "ranking_mine_list": (401, 200, 404, 200, 200),
    "ranking_revise": (401, 201, 404, 404, 404),
    # Agreement figures show everyone's rankings, and gold prompts must stay secret: managers and admins only.
    "agreement_report": (401, 403, 404, 200, 200),
    "agreement_labelers": (401, 403, 404, 200, 200),
    "agreement_leaderboard": (401, 403, 404, 200, 200),
    "gold_list": (401, 403, 404, 200, 200),
    "prompt_gold_set": (401, 403, 404, 200, 200),
    "prompt_gold_unset": (401, 403, 404, 204, 204),
    "membership_exclusion_set": (401, 403, 404, 200, 200),
    # Exports hold everyone's rankings: managers and admins only.
    "preference_export": (401, 403, 404, 200, 200),
    "preference_export_meta": (401, 403, 404, 200, 200),
    # Training runs: the managers of the run's project and admins; to anyone else a run does not exist.
    "run_list": (401, 200, 200, 200, 200),
    "run_create": (401, 403, 404, 201, 201),
    "run_detail": (401, 404, 404, 200, 200),
    "run_metrics": (401, 404, 404, 200, 200),
    "run_cancel": (401, 404, 404, 200, 200),
    "run_score": (401, 404, 404, 202, 202),
    "run_disagreements": (401, 404, 404, 200, 200),
    "run_generate": (401, 404, 404, 202, 202),
    "run_comparison_list": (401, 404, 404, 200, 200),
    "run_comparison_create": (401, 404, 404, 202, 202),
    # Tokens: everyone manages their own; only admins see, rotate or revoke someone else's.
    "auth_token_mine": (401, 200, 200, 200, 200),
    "auth_token_rotate_mine": (401, 200, 200, 200, 200),
    "auth_token_revoke_mine": (401, 204, 204, 204, 204),
    "auth_token_info": (401, 403, 403, 403, 200),
    "auth_token_rotate": (401, 403, 403, 403, 200),
    "auth_token_revoke": (401, 403, 403, 403, 204),
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
        "memberships": sorted(Membership.objects.values_list("project__slug", "user__username", "role", "excluded")),
        "gold": sorted(Prompt.objects.values_list("id", "is_gold", "gold_ranks")),
        "prompts": Prompt.objects.count(),
        "eval_sets": EvalSet.objects.count(),
        "refusals": PromptRefusal.objects.count(),
        "assignments": sorted(Assignment.objects.values_list("id", "labeler__username", "status")),
        "rankings": sorted(Ranking.objects.values_list("id", "is_current")),
        "runs": sorted(
            TrainingRun.objects.values_list("id", "status", "cancel_requested", "scoring", "generation", "comparison")
        ),
    }


def _request(world, endpoint: str, role: str):
    method, url, body = ENDPOINTS[endpoint]
    url = url.format(
        run=getattr(world, "run", None) and world.run.id,
        done_run=getattr(world, "done_run", None) and world.done_run.id,
        policy_run=getattr(world, "policy_run", None) and world.policy_run.id,
        assignment=world.assignment.id,
        ranking=world.ranking.id,
        gold=world.gold.id,
        new_gold=world.prompts[2].id,
    )
    client = api_client(None if role == "anonymous" else getattr(world, role))
    data = body(world) if body else None
    fmt = "multipart" if endpoint in MULTIPART else "json"
    return getattr(client, method)(url, data, format=fmt)


def test_role_matrix_covers_every_api_operation_in_the_schema(db):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert operations - {"auth_token"} == set(ENDPOINTS)  # signing in has its own tests (throttling, lockout)


@pytest.fixture
def matrix_world(labeled, settings, tmp_path):
    """`labeled`, plus a fourth prompt of alpha that is gold (`gold`), with a reference ranking."""
    labeled.gold = PromptFactory(project=labeled.project)
    reference = sorted(labeled.gold.responses.values_list("id", flat=True))
    prompt_gold_set(prompt=labeled.gold, ranks={rid: rank for rank, rid in enumerate(reference, start=1)})
    # Training runs of alpha: one queued (`run`, with a logged loss) and one succeeded (`done_run`).
    settings.RLHF_RUNS_DIR = str(tmp_path / "runs")
    labeled.run = TrainingRun.objects.create(project=labeled.project, name="queued run", config={"base_model": "tiny"})
    RunMetric.objects.create(run=labeled.run, step=1, name="train/loss", value=0.69)
    labeled.done_run = TrainingRun.objects.create(
        project=labeled.project, name="done run", status="succeeded", output_dir=str(tmp_path / "model")
    )
    labeled.policy_run = TrainingRun.objects.create(
        project=labeled.project, kind="ppo", name="policy run", status="succeeded", output_dir=str(tmp_path / "ppo")
    )
    Project.objects.filter(slug="alpha").update(writing_mode="prompts")
    EvalSet.objects.create(project=labeled.project, name="mmlu-dev", prompts=["Name the largest ocean."])
    return labeled


@pytest.mark.parametrize(("endpoint", "role", "expected"), CASES)
def test_role_matrix_status_and_body(matrix_world, endpoint, role, expected):
    before = _snapshot()
    response = _request(matrix_world, endpoint, role)

    assert response.status_code == expected, response.content
    if expected >= 400:
        body = response.json()
        assert body["errors"] and all(isinstance(message, str) for message in body["errors"])
        assert _snapshot() == before, "a refused request changed the database"
    if expected == 401:
        assert response["WWW-Authenticate"] == "Token"
    if expected < 300:
        CHECKS[endpoint](matrix_world, role, response)


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
    body = response.json()
    assert body["overlap"] == 5 and body["allow_ties"] is False and body["render_markdown"] is False
    project = Project.objects.get(slug="alpha")
    assert (project.overlap, project.allow_ties, project.render_markdown) == (5, False, False)


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


def check_qualification_mine(world, role, response):
    body = response.json()
    assert body["required"] is False and body["qualified"] is True and body["items"] == []


def check_qualification_attempts(world, role, response):
    assert "lea" in [row["labeler"] for row in response.json()]


def check_qualification_decide(world, role, response):
    assert response.json()["status"] == "admitted"
    assert Membership.objects.get(project__slug="alpha", user__username="lea").qualification == "admitted"


def check_written_prompts_mine(world, role, response):
    assert response.json() == {"count": 0, "cap": 200, "prompts": [], "refusals": []}


def check_written_prompt_create(world, role, response):
    prompt = Prompt.objects.get(pk=response.json()["id"])
    assert (prompt.author, prompt.category, prompt.source) == (getattr(world, role), "open_qa", "written")
    assert response.json()["responses"] == 0


def check_eval_set_list(world, role, response):
    assert [(s["name"], s["prompts"]) for s in response.json()] == [("mmlu-dev", 1)]


def check_eval_set_upload(world, role, response):
    assert response.json()["prompts"] == 1
    assert EvalSet.objects.get(name="held-out").prompts == ["What is the capital of Peru?"]


def check_project_dashboard(world, role, response):
    body = response.json()
    assert body["eta"]["remaining"] == 8 and [row["labeler"] for row in body["labelers"]] == ["lea"]


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


def check_agreement_report(world, role, response):
    body = response.json()
    assert (body["project"], body["n_rankings"], body["n_prompts"], body["n_labelers"]) == ("alpha", 1, 1, 1)
    assert body["alpha_ordinal"] is None  # one labeler: nothing to agree with
    assert [row["username"] for row in body["labelers"]] == ["lea"]
    assert body["n_boot"] == 10 and set(body["intervals"]) >= {"alpha_ordinal", "kendall_w_mean"}


def check_agreement_labelers(world, role, response):
    rows = response.json()["labelers"]
    assert [(row["username"], row["n_rankings"], row["excluded"]) for row in rows] == [("lea", 1, False)]


def check_agreement_leaderboard(world, role, response):
    body = response.json()
    assert body["project"] == "alpha" and body["n_boot"] == 10
    # lea ranked the first prompt in shown order: the leaderboard names the (secret) models behind the responses.
    assert {row["model"] for row in body["leaderboard"]} == set(
        world.ranking.prompt.responses.values_list("model_name", flat=True)
    )


def check_gold_list(world, role, response):
    body = response.json()
    assert body["count"] == 1 and [p["prompt_id"] for p in body["results"]] == [world.gold.id]
    assert [r["rank"] for r in body["results"][0]["responses"]] == [1, 2, 3, 4]


def check_prompt_gold_set(world, role, response):
    ids = sorted(world.prompts[2].responses.values_list("id", flat=True))
    assert response.json()["is_gold"] is True
    prompt = Prompt.objects.get(pk=world.prompts[2].id)
    assert prompt.is_gold and prompt.gold_ranks == {str(rid): rank for rid, rank in zip(ids, [1, 2, 2, 3])}


def check_prompt_gold_unset(world, role, response):
    prompt = Prompt.objects.get(pk=world.gold.id)
    assert (prompt.is_gold, prompt.gold_ranks) == (False, None)


def check_membership_exclusion_set(world, role, response):
    assert response.json()["username"] == "lea" and response.json()["excluded"] is True
    assert Membership.objects.get(project=world.project, user=world.labeler).excluded is True
    assert Ranking.objects.filter(labeler=world.labeler).count() == 1  # nothing deleted


def check_preference_export(world, role, response):
    import orjson

    rows = [orjson.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    # lea's one strict ranking of 4 responses: 6 pairs, all from that prompt (never the gold one), no model names
    assert len(rows) == 6 and {row["prompt_id"] for row in rows} == {world.ranking.prompt_id}
    assert {row["ranking_id"] for row in rows} == {world.ranking.id}
    assert response["Content-Type"] == "application/x-ndjson"
    assert not any(name in response_text for response_text in map(str, rows) for name in SECRET_MODELS)


def check_preference_export_meta(world, role, response):
    body = response.json()
    # the same export as preference_export: lea's one strict ranking, 6 pairs, all in train; the gold prompt left out
    assert body["project"]["slug"] == "alpha" and body["format"] == "jsonl" and body["options"]["test_ratio"] == 0
    assert (body["counts"]["prompts"], body["counts"]["rankings"], body["counts"]["pairs"]) == (1, 1, 6)
    assert body["counts"]["splits"]["train"]["pairs"] == 6 and body["left_out"]["gold_prompts"] == 1
    assert body["labelers"] == [{"id": world.labeler.id, "username": "lea", "removed": False}]
    assert set(body["files"]) == {"train.jsonl", "test.jsonl"}


def check_run_list(world, role, response):
    ids = {run["id"] for run in response.json()["results"]}
    expected = {world.run.id, world.done_run.id, world.policy_run.id}
    assert ids == (expected if role in ("manager", "admin") else set())


def check_run_create(world, role, response):
    body = response.json()
    run = TrainingRun.objects.get(pk=body["id"])
    assert body["status"] == run.status == "queued" and body["project"] == "alpha"
    assert run.created_by == getattr(world, role) and run.config["base_model"] == "tiny"
    assert run.export["pending"] is True and body["page_url"] == f"/runs/{run.pk}/"  # the worker exports
    run_inputs_prepare(run)
    assert TrainingRun.objects.get(pk=run.pk).export["train_pairs"] == 6


def check_run_detail(world, role, response):
    body = response.json()
    assert (body["id"], body["status"], body["name"]) == (world.run.id, "queued", "queued run")


def check_run_metrics(world, role, response):
    assert [(p["step"], p["name"], p["value"]) for p in response.json()["points"]] == [(1, "train/loss", 0.69)]


def check_run_cancel(world, role, response):
    assert response.json()["status"] == "cancelled"
    assert TrainingRun.objects.get(pk=world.run.id).status == "cancelled"


def check_run_score(world, role, response):
    assert response.json()["scoring"]["status"] == "queued" and response.json()["scoring"]["project"] == "alpha"


def check_run_disagreements(world, role, response):
    assert response.json()["scored_responses"] == 0 and response.json()["prompts"] == []


def check_run_generate(world, role, response):
    generation = response.json()["generation"]
    assert (generation["status"], generation["project"]) == ("queued", "alpha")
    assert generation["options"]["k"] == 2 and generation["options"]["max_new_tokens"] == 8
    assert TrainingRun.objects.get(pk=world.policy_run.id).generation["status"] == "queued"


def check_run_comparison_list(world, role, response):
    assert response.json() == []  # no batch yet


def check_run_comparison_create(world, role, response):
    comparison = response.json()["comparison"]
    assert (comparison["status"], comparison["project"], comparison["options"]["limit"]) == ("queued", "alpha", 2)
    assert TrainingRun.objects.get(pk=world.policy_run.id).comparison["status"] == "queued"


def _token_key(user) -> str | None:
    from rest_framework.authtoken.models import Token

    return Token.objects.filter(user=user).values_list("key", flat=True).first()


def check_auth_token_mine(world, role, response):
    assert "key" not in response.json() and "token" not in response.json()


def check_auth_token_rotate_mine(world, role, response):
    assert response.json()["token"] == _token_key(getattr(world, role))


def check_auth_token_revoke_mine(world, role, response):
    assert _token_key(getattr(world, role)) is None


def check_auth_token_info(world, role, response):
    assert "key" not in response.json() and "token" not in response.json()


def check_auth_token_rotate(world, role, response):
    assert response.json()["token"] == _token_key(world.labeler)


def check_auth_token_revoke(world, role, response):
    assert _token_key(world.labeler) is None


CHECKS = {name.removeprefix("check_"): fn for name, fn in globals().items() if name.startswith("check_")}
