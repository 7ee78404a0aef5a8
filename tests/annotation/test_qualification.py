"""Qualification: new labelers rank the qualification prompts first with feedback per item, pass at the threshold
or wait for a manager, who may admit or refuse; ordinary prompts stay closed until then. Page, API and queue."""

import pytest
from django.urls import reverse

from annotation.models import Assignment, Membership
from annotation.services.assignments import assignment_next
from annotation.services.qualification import qualification_prompt_set, qualification_state
from annotation.services.rankings import ranking_submit
from tests.factories import ProjectFactory, PromptFactory, labeler, manager

GUIDELINES = "# Guidelines\nRank.\n\n## Accuracy\nA correct answer beats a fluent wrong one about capitals.\n"


def _project():
    project = ProjectFactory(overlap=1, qualification_required=True, qualification_threshold=0.7, guideline=GUIDELINES)
    quals = []
    for i in range(2):
        prompt = PromptFactory(project=project, responses=3, text=f"What is the capital of country {i}?")
        ids = list(prompt.responses.order_by("index").values_list("id", flat=True))
        qualification_prompt_set(prompt=prompt, ranks={ids[0]: 1, ids[1]: 2, ids[2]: 3})
        quals.append((prompt, ids))
    regular = PromptFactory(project=project, responses=3, text="An ordinary prompt")
    return project, quals, regular


def _rank(user, assignment, order_ids):
    return ranking_submit(
        labeler=user, assignment_id=assignment.pk, ranks={rid: order_ids.index(rid) + 1 for rid in order_ids}
    )


@pytest.mark.django_db
def test_pass_then_ordinary_prompts():
    project, quals, regular = _project()
    user = labeler(project)
    for prompt, ids in quals:
        lease = assignment_next(project=project, labeler=user)
        assert lease.prompt_id == prompt.pk  # qualification prompts first, in order
        _rank(user, lease, ids)  # exactly the reference
    state = qualification_state(project=project, labeler=user)
    assert state["status"] == "passed" and state["score"] == 1.0 and state["qualified"]
    assert assignment_next(project=project, labeler=user).prompt_id == regular.pk


@pytest.mark.django_db
def test_fail_waits_for_a_manager_who_admits_or_refuses(client):
    project, quals, regular = _project()
    user, boss = labeler(project), manager(project)
    for prompt, ids in quals:
        _rank(user, assignment_next(project=project, labeler=user), list(reversed(ids)))
    state = qualification_state(project=project, labeler=user)
    assert state["status"] == "failed" and state["score"] == 0.0 and not state["qualified"]
    assert assignment_next(project=project, labeler=user) is None
    assert not Assignment.objects.filter(labeler=user, prompt=regular).exists()
    # The labeler's page: the result and per-item feedback with the guideline section that decides.
    client.force_login(user)
    assert client.get(reverse("annotation:label", args=[project.slug])).status_code == 302
    page = client.get(reverse("annotation:qualification", args=[project.slug])).content.decode()
    assert 'data-status="failed"' in page and "Guidelines: Accuracy" in page and "the reference put" in page
    # The manager admits through the API; the labeler gets ordinary prompts.
    client.force_login(boss)
    attempts = client.get(reverse("api-qualification-attempts", args=[project.slug])).json()
    assert [(a["labeler"], a["status"], a["done"], a["total"]) for a in attempts] == [(user.username, "failed", 2, 2)]
    response = client.post(
        reverse("api-qualification-decide", args=[project.slug, user.username]), {"admit": True},
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 200 and response.json()["status"] == "admitted"
    assert assignment_next(project=project, labeler=user).prompt_id == regular.pk
    # Refused on the manager's page: no more prompts.
    client.post(reverse("annotation:qualification-manage", args=[project.slug]),
                {"user_id": user.pk, "decision": "refuse"})  # fmt: skip
    assert Membership.objects.get(project=project, user=user).qualification == "refused"
    Assignment.objects.filter(labeler=user, status="active").delete()
    assert assignment_next(project=project, labeler=user) is None


@pytest.mark.django_db
def test_labelers_cannot_decide_and_managers_skip_the_test(client):
    project, quals, regular = _project()
    user, other = labeler(project), labeler(project)
    client.force_login(user)
    assert client.post(reverse("api-qualification-decide", args=[project.slug, other.username]), {"admit": True},
                       content_type="application/json").status_code == 403  # fmt: skip
    assert client.get(reverse("annotation:qualification-manage", args=[project.slug])).status_code == 404
    assert client.get(reverse("api-qualification-mine", args=[project.slug])).json()["total"] == 2
    boss = manager(project)
    assert assignment_next(project=project, labeler=boss).prompt_id == regular.pk
    Assignment.objects.filter(labeler=boss).delete()
    # Qualification prompts never enter the ordinary gold rotation.
    project.qualification_required, project.gold_rate = False, 1.0
    project.save()
    assert assignment_next(project=project, labeler=other).prompt_id == regular.pk


@pytest.mark.django_db
def test_labeling_page_submit_shows_the_items_feedback(client):
    project, quals, regular = _project()
    user = labeler(project)
    client.force_login(user)
    client.get(reverse("annotation:label", args=[project.slug]))
    lease = Assignment.objects.get(labeler=user)
    ids = quals[0][1]
    data = {f"rank_{rid}": str(ids.index(rid) + 1) for rid in ids}
    response = client.post(reverse("annotation:label-submit", args=[project.slug, lease.pk]), data)
    assert response.status_code == 302 and response["Location"].endswith(f"/qualification/#item-{quals[0][0].pk}")
