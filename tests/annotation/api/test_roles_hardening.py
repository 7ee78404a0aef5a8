"""Issue #12, items 1, 2, 4 and 5b: roles hold at every door."""

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from annotation.models import Assignment, Membership, Project, Prompt, Ranking
from annotation.services.assignments import assignment_next
from annotation.services.gold import prompt_gold_set
from annotation.services.imports import prompts_import
from annotation.services.rankings import ranking_submit
from rlhf.models import TrainingRun
from tests.annotation.api._helpers import api_client, ranks_body
from tests.factories import AdminFactory, ProjectFactory, PromptFactory, labeler, manager


@pytest.fixture
def removed(db):
    """A labeler with one submitted ranking and one live lease, then removed from the project through the API."""
    project = ProjectFactory(slug="p", overlap=1)
    for _ in range(3):
        PromptFactory(project=project)
    lab, mgr = labeler(project, username="lab"), manager(project, username="mgr")
    first = assignment_next(project=project, labeler=lab)
    ranking, _ = ranking_submit(labeler=lab, assignment_id=first.id, ranks={r: 1 for r in first.shown_order})
    held = assignment_next(project=project, labeler=lab)
    assert api_client(mgr).delete(f"/api/projects/p/members/{lab.username}/").status_code == 204
    return project, lab, mgr, ranking, held


def test_removed_member_cannot_submit_a_held_task_403(removed):
    project, lab, _, _, held = removed
    response = api_client(lab).post(f"/api/tasks/{held.id}/submit/", ranks_body(held.shown_order), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "no longer a member" in response.json()["errors"][0]
    assert Ranking.objects.filter(prompt=held.prompt).count() == 0


def test_removed_member_cannot_revise_403(removed):
    _, lab, _, ranking, _ = removed
    body = ranks_body(ranking.shown_order)
    response = api_client(lab).post(f"/api/rankings/{ranking.id}/revise/", body, format="json")
    assert response.status_code == 403
    assert Ranking.objects.filter(labeler=lab).count() == 1


def test_removed_members_leases_are_released_at_once(removed):
    project, lab, _, _, held = removed
    assert not Assignment.objects.filter(labeler=lab, status="active", expires_at__gt=timezone.now()).exists()
    other = labeler(project, username="next")
    taken = set()
    while (assignment := assignment_next(project=project, labeler=other)) is not None:
        taken.add(assignment.prompt_id)
        ranking_submit(labeler=other, assignment_id=assignment.id, ranks={r: 1 for r in assignment.shown_order})
    assert held.prompt_id in taken  # overlap 1: the prompt the removed labeler held went to someone else


def test_removed_members_rankings_are_kept_and_marked(removed):
    project, lab, mgr, ranking, _ = removed
    assert Ranking.objects.filter(pk=ranking.pk, is_current=True).exists()
    meta = api_client(mgr).get("/api/projects/p/export/meta/", {"strategy": "all"}).json()
    rows = {row["username"]: row for row in meta["labelers"]}
    assert rows["lab"]["removed"] is True
    labelers = api_client(mgr).get("/api/projects/p/agreement/labelers/").json()
    rows = {row["username"]: row for row in labelers["labelers"]}
    assert rows["lab"]["removed"] is True


def test_labeling_page_of_a_removed_member_refuses_the_submit(removed, client):
    project, lab, _, _, held = removed
    client.force_login(lab)
    data = {f"rank_{rid}": "1" for rid in held.shown_order}
    assert client.post(f"/projects/p/label/{held.id}/submit/", data).status_code in (403, 404)
    assert Ranking.objects.filter(prompt=held.prompt).count() == 0


def test_a_removed_member_gets_a_clear_403_page_and_an_outsider_still_a_404(removed, client):
    """Issue #12: the labeling page of a project one was removed from says so (403), and names no other project."""
    project, lab, _, _, held = removed
    other = ProjectFactory(slug="elsewhere", name="Secret elsewhere")
    labeler(other, username="someone")
    client.force_login(lab)
    for url in ("/projects/p/label/", "/projects/p/", "/projects/p/my-rankings/", f"/projects/p/label/{held.id}/skip/"):
        response = client.post(url) if url.endswith("skip/") else client.get(url)
        assert response.status_code == 403, url
        assert "You are no longer a member of this project" in response.content.decode()
        assert "Secret elsewhere" not in response.content.decode()
    assert client.get("/projects/elsewhere/label/").status_code == 404  # never a member there: nothing to learn
    assert client.get("/projects/no-such-project/label/").status_code == 404
    stranger = labeler(other, username="stranger")
    client.force_login(stranger)
    assert client.get("/projects/p/label/").status_code == 404


def test_deactivated_user_loses_leases_and_tokens(db, client):
    project = ProjectFactory()
    PromptFactory(project=project)
    lab = labeler(project)
    Token.objects.create(user=lab)
    assignment_next(project=project, labeler=lab)
    admin = AdminFactory()
    client.force_login(admin)
    response = client.get(f"/admin/auth/user/{lab.pk}/change/")
    form = response.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k not in ("password", "groups",
            "user_permissions", "is_active", "last_login", "date_joined")}  # fmt: skip
    data |= {"date_joined_0": "2024-01-01", "date_joined_1": "00:00:00", "initial-date_joined_0": "2024-01-01",
             "initial-date_joined_1": "00:00:00"}  # fmt: skip
    response = client.post(f"/admin/auth/user/{lab.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    lab.refresh_from_db()
    assert lab.is_active is False
    assert not Token.objects.filter(user=lab).exists()
    assert not Assignment.objects.filter(labeler=lab, expires_at__gt=timezone.now()).exists()


# --- item 2: managers in the admin ------------------------------------------------------------------------------


@pytest.fixture
def staff_manager(db, client):
    mine, theirs = ProjectFactory(name="Mine"), ProjectFactory(name="Secret other project")
    boss = manager(mine, is_staff=True)
    PromptFactory(project=mine)
    PromptFactory(project=theirs)
    TrainingRun.objects.create(project=mine, kind="reward_model", created_by=boss)
    TrainingRun.objects.create(project=theirs, kind="reward_model")
    client.force_login(boss)
    return mine, theirs, boss


def test_manager_cannot_create_a_project_in_the_admin(staff_manager, client):
    assert client.get("/admin/annotation/project/add/").status_code == 403
    response = client.post("/admin/annotation/project/add/", {"name": "Mine too", "slug": "mine-too"})
    assert response.status_code == 403
    assert not Project.objects.filter(slug="mine-too").exists()


def test_admin_can_still_create_a_project(db, client):
    client.force_login(AdminFactory())
    assert client.get("/admin/annotation/project/add/").status_code == 200


@pytest.mark.parametrize(
    "url",
    ["/admin/annotation/project/", "/admin/annotation/prompt/", "/admin/annotation/membership/",
     "/admin/annotation/guideline/", "/admin/annotation/ranking/", "/admin/annotation/assignment/",
     "/admin/annotation/response/", "/admin/rlhf/trainingrun/", "/admin/rlhf/runmetric/"],
)  # fmt: skip
def test_managers_admin_lists_and_filters_name_only_their_projects(staff_manager, client, url):
    response = client.get(url)
    assert response.status_code == 200
    assert "Secret other project" not in response.content.decode()


# --- item 4: gold prompts look like any other to a labeler ------------------------------------------------------


def test_gold_and_ordinary_submits_move_the_labelers_progress_alike(db):
    project = ProjectFactory(gold_rate=0.0, overlap=3)
    gold, plain = PromptFactory(project=project), PromptFactory(project=project)
    prompt_gold_set(prompt=gold, ranks={r.id: 1 for r in gold.responses.all()})
    lab = labeler(project)
    client = api_client(lab)

    def progress():
        from django.core.cache import cache

        cache.clear()
        return client.get(f"/api/projects/{project.slug}/progress/mine/").json()

    deltas = {}
    for name, prompt in (("gold", gold), ("plain", plain)):
        before = progress()
        assignment = Assignment.objects.create(
            project=project, prompt=prompt, labeler=lab, expires_at=timezone.now() + timezone.timedelta(minutes=5),
            shown_order=list(prompt.responses.values_list("id", flat=True)),
        )  # fmt: skip
        body = ranks_body(assignment.shown_order, [1] * len(assignment.shown_order))
        assert client.post(f"/api/tasks/{assignment.id}/submit/", body, format="json").status_code == 201
        after = progress()
        deltas[name] = {key: after[key] - before[key] for key in before}
    assert deltas["gold"] == deltas["plain"] == {"done": 1, "assigned": 0, "project_rankings": 1, "project_target": 0}


def test_task_payload_of_a_gold_prompt_has_the_same_keys_as_any_other(db):
    project = ProjectFactory(gold_rate=1.0)
    gold = PromptFactory(project=project)
    PromptFactory(project=project)
    prompt_gold_set(prompt=gold, ranks={r.id: 1 for r in gold.responses.all()})
    client = api_client(labeler(project))
    first = client.post(f"/api/projects/{project.slug}/tasks/next/").json()
    assert first["prompt"]["id"] == gold.id
    assert "gold" not in str(first).lower()
    assert set(first) == {
        "assignment_id", "kind", "prompt", "responses", "response_form", "strength_labels", "expires_at", "progress"
    }  # fmt: skip
    assert set(first["prompt"]) == {"id", "text", "messages", "category"}


# --- item 5b: the project form saves when the project holds imported pairs ---------------------------------------


def test_admin_project_form_saves_with_the_inactive_imported_member(db, client):
    from tests.annotation.api.test_bad_input_cases import _admin_project_form

    project = ProjectFactory(slug="hh")
    data = b'{"prompt": "Q?", "chosen": "good", "rejected": "bad"}\n'
    prompts_import(project=project, data=data, filename="pairs.jsonl")
    imported = Membership.objects.get(project=project, user__username="imported")
    assert imported.user.is_active is False
    client.force_login(AdminFactory())
    form = _admin_project_form(project, overlap=2)
    form |= {"memberships-TOTAL_FORMS": 1, "memberships-INITIAL_FORMS": 1, "memberships-0-id": imported.pk,
             "memberships-0-project": project.pk, "memberships-0-user": imported.user_id,
             "memberships-0-role": "labeler"}  # fmt: skip
    response = client.post(f"/admin/annotation/project/{project.pk}/change/", form)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    project.refresh_from_db()
    assert project.overlap == 2
    assert Prompt.objects.filter(project=project).count() == 1
