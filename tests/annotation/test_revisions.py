"""Review and revise in the browser (through Django's test client, real DB): the revision policies, closing a
project, filters on 'My rankings', version history for labelers and managers, and the API's 403 with the reason."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.models import Assignment, Ranking
from annotation.revision_rules import revision_window, version_changes
from annotation.services.assignments import assignment_next
from annotation.services.projects import project_update
from tests.factories import ProjectFactory, PromptFactory, labeler, manager, rank_queue

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def test_revision_window_rules():
    first = NOW - dt.timedelta(hours=5)
    assert revision_window(policy="until_closed", hours=24, closed_at=None, first_at=first, now=NOW).allowed
    closed = revision_window(policy="until_closed", hours=24, closed_at=NOW - dt.timedelta(minutes=1), first_at=first,
                             now=NOW)  # fmt: skip
    assert not closed.allowed and "closed" in closed.reason
    assert not revision_window(policy="never", hours=24, closed_at=None, first_at=first, now=NOW).allowed
    within = revision_window(policy="within_hours", hours=6, closed_at=None, first_at=first, now=NOW)
    assert within.allowed and within.until == first + dt.timedelta(hours=6)
    late = revision_window(policy="within_hours", hours=4, closed_at=None, first_at=first, now=NOW)
    assert not late.allowed and "4 hour(s)" in late.reason


def test_version_changes_lists_what_moved():
    before = {"ranks": {10: 1, 11: 2, 12: 3}, "flags": ["unsafe"], "rationale": "A is clear."}
    after = {"ranks": {10: 2, 11: 1, 12: 3}, "flags": ["cant_judge"], "rationale": "B is clearer."}
    letters = {10: "A", 11: "B", 12: "C"}
    assert version_changes(before, after, letters=letters) == [
        "A: rank 1 → 2", "B: rank 2 → 1", "flags: +cant_judge, −unsafe", "rationale edited"]  # fmt: skip
    assert version_changes({**before, "strength": 3, "ratings": {10: {"overall": 5}}},
                           {**before, "strength": 1, "ratings": {10: {"overall": 4}}}, letters=letters) == [
        "strength 3 → 1", "A: form edited"]  # fmt: skip
    assert version_changes(None, after) == ["first submission"]
    assert version_changes(after, after) == ["no change"]


def _ranked(policy="until_closed", hours=24, n=1):
    project = ProjectFactory(overlap=1, revision_policy=policy, revision_hours=hours)
    for i in range(n):
        PromptFactory(project=project, responses=3, text=f"Prompt {i}: about {'tides' if i == 0 else 'stars'}")
    user = labeler(project)
    rankings = rank_queue(project, user)  # index 0 best
    return project, user, rankings


def _revise_post(ranking, ranks_by_position, **extra):
    shown = ranking.shown_order
    data = {f"rank_{rid}": str(ranks_by_position[pos]) for pos, rid in enumerate(shown)}
    return data | extra


@pytest.mark.django_db
def test_labeler_revises_in_the_browser_and_history_shows_the_change(client):
    project, user, (ranking,) = _ranked()
    client.force_login(user)
    url = reverse("annotation:ranking-detail", args=[project.slug, ranking.pk])
    page = client.get(url)
    assert page.status_code == 200 and b'id="save-revision"' in page.content
    old_by_position = [e.rank for e in ranking.entries.order_by("shown_position")]
    new_by_position = [4 - r for r in old_by_position]  # reverse the order
    response = client.post(url, _revise_post(ranking, new_by_position, rationale="Changed my mind."))
    assert response.status_code == 302
    current = Ranking.objects.get(prompt=ranking.prompt, labeler=user, is_current=True)
    assert current.version == 2 and current.rationale == "Changed my mind."
    assert [e.rank for e in current.entries.order_by("shown_position")] == new_by_position
    assert Ranking.objects.filter(prompt=ranking.prompt, labeler=user).count() == 2  # the old version is kept
    page = client.get(reverse("annotation:ranking-detail", args=[project.slug, current.pk])).content.decode()
    assert "first submission" in page and "rank 1 → 3" in page and "rationale edited" in page
    assert "Revision saved as version 2" in page


@pytest.mark.django_db
def test_a_bad_revision_is_refused_and_stores_nothing(client):
    project, user, (ranking,) = _ranked()
    client.force_login(user)
    url = reverse("annotation:ranking-detail", args=[project.slug, ranking.pk])
    response = client.post(url, _revise_post(ranking, [1, 3, 3]))  # not dense: rank 2 missing
    assert response.status_code == 400 and b'id="revise-errors"' in response.content
    assert Ranking.objects.filter(labeler=user).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("policy,hours,age_h,allowed", [
    ("never", 24, 0, False), ("within_hours", 2, 1, True), ("within_hours", 2, 3, False),
    ("until_closed", 1, 500, True),
])  # fmt: skip
def test_policy_is_enforced_for_page_and_api(client, policy, hours, age_h, allowed):
    project, user, (ranking,) = _ranked(policy, hours)
    Ranking.objects.filter(pk=ranking.pk).update(created_at=timezone.now() - dt.timedelta(hours=age_h))
    client.force_login(user)
    url = reverse("annotation:ranking-detail", args=[project.slug, ranking.pk])
    assert (b'id="save-revision"' in client.get(url).content) is allowed
    body = _revise_post(ranking, [2, 1, 3])
    response = client.post(url, body)
    assert response.status_code == (302 if allowed else 403)
    if not allowed:  # the API refuses with the same reason, as a 403
        api = client.post(
            reverse("api-ranking-revise", args=[ranking.pk]),
            {"ranks": [{"response_id": rid, "rank": r} for rid, r in zip(ranking.shown_order, [2, 1, 3], strict=True)]},
            content_type="application/json",
        )
        assert api.status_code == 403 and ("revis" in api.json()["detail"] or "closed" in api.json()["detail"])
    assert Ranking.objects.filter(labeler=user).count() == (2 if allowed else 1)


@pytest.mark.django_db
def test_closing_a_project_stops_queue_submits_and_revisions(client):
    project, user, (ranking,) = _ranked(n=1)
    PromptFactory(project=project, responses=3)
    other = labeler(project)
    pending = assignment_next(project=project, labeler=other)
    project_update(project=project, closed_at=timezone.now())
    assert assignment_next(project=project, labeler=labeler(project)) is None
    client.force_login(other)
    response = client.post(
        reverse("api-task-submit", args=[pending.pk]),
        {"ranks": [{"response_id": rid, "rank": i + 1} for i, rid in enumerate(pending.shown_order)]},
        content_type="application/json",
    )
    assert response.status_code == 403 and "closed" in response.json()["detail"]
    assert Assignment.objects.get(pk=pending.pk).status == "active"
    client.force_login(user)
    url = reverse("annotation:ranking-detail", args=[project.slug, ranking.pk])
    assert client.post(url, _revise_post(ranking, [2, 1, 3])).status_code == 403


@pytest.mark.django_db
def test_my_rankings_filters(client):
    project, user, rankings = _ranked(n=3)
    Ranking.objects.filter(pk=rankings[0].pk).update(flags=["unsafe"])
    Ranking.objects.filter(pk=rankings[1].pk).update(created_at=timezone.now() - dt.timedelta(days=10))
    client.force_login(user)
    url = reverse("annotation:my-rankings", args=[project.slug])

    def shown(**query):
        body = client.get(url, query).content.decode()
        return sum(f"/my-rankings/{r.pk}/" in body for r in rankings), body

    assert shown()[0] == 3
    assert shown(q="tides")[0] == 1
    assert shown(flag="unsafe")[0] == 1
    old_day = (timezone.now() - dt.timedelta(days=10)).date().isoformat()
    assert shown(to=old_day)[0] == 1
    assert shown(**{"from": timezone.now().date().isoformat()})[0] == 2
    count, body = shown(q="no such prompt")
    assert count == 0 and "No ranking matches" in body
    assert client.get(url, {"from": "2026-02-31", "page": "x"}).status_code == 200  # bad input: ignored, no 500


@pytest.mark.django_db
def test_history_is_for_the_labeler_and_managers_only(client):
    project, user, (ranking,) = _ranked()
    boss, peer = manager(project), labeler(project)
    history = reverse("annotation:ranking-history", args=[project.slug, ranking.pk])
    detail = reverse("annotation:ranking-detail", args=[project.slug, ranking.pk])
    client.force_login(peer)
    assert client.get(history).status_code == 404 and client.get(detail).status_code == 404
    client.force_login(user)
    assert client.get(history).status_code == 404  # the manager page; the labeler has the detail page
    client.force_login(boss)
    page = client.get(history)
    assert page.status_code == 200 and user.username in page.content.decode()
    assert b'id="save-revision"' not in page.content  # only the labeler revises
    assert client.post(detail, _revise_post(ranking, [2, 1, 3])).status_code in (403, 404)
    assert Ranking.objects.filter(prompt=ranking.prompt).count() == 1


# --- revising with the per-response form and the pairwise strength ----------------------------------------------


def _submitted(project, ratings_for=None, strength=None):
    """One labeler's ranking of the project's only prompt (index order), through assignment_next + ranking_submit."""
    from annotation.services.rankings import ranking_submit

    user = labeler(project)
    assignment = assignment_next(project=project, labeler=user)
    shown = list(assignment.shown_order)
    ranks = {rid: i + 1 for i, rid in enumerate(shown)}
    ratings = ratings_for(shown) if ratings_for else None
    ranking, _ = ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=ranks, ratings=ratings,
                                strength=strength)  # fmt: skip
    return user, ranking, shown


@pytest.mark.django_db
def test_revision_page_shows_and_takes_the_per_response_form(client):
    from annotation.services.projects import project_create

    project = project_create(name="Form", slug="form", response_form="instructgpt", overlap=1)
    PromptFactory(project=project, responses=2, text="Name a planet.")
    user, ranking, shown = _submitted(
        project,
        lambda shown: {
            shown[0]: {"overall": 6},
            shown[1]: {"overall": 2, "hallucination": True, "comment": "Made <b>up</b>."},
        },
    )
    client.force_login(user)
    url = reverse("annotation:ranking-detail", args=[project.slug, ranking.pk])

    page = client.get(url).content.decode()
    assert f'name="rating_{shown[0]}_overall" value="6" checked' in page  # the stored form, filled in again
    assert f'name="rating_{shown[1]}_hallucination" value="1" data-shortcut' in page
    assert "Made &lt;b&gt;up&lt;/b&gt;.</textarea>" in page

    missing = client.post(url, _revise_post(ranking, [2, 1]))  # the form left out: the overall score is required
    assert missing.status_code == 400 and "required" in missing.content.decode()
    assert Ranking.objects.get(pk=ranking.pk).is_current

    ratings = {f"rating_{shown[0]}_overall": "3", f"rating_{shown[1]}_overall": "5",
               f"rating_{shown[1]}_comment": "Better on a second look."}  # fmt: skip
    assert client.post(url, _revise_post(ranking, [2, 1], **ratings)).status_code == 302
    current = Ranking.objects.get(prompt=ranking.prompt, labeler=user, is_current=True)
    stored = dict(current.ratings.values_list("response_id", "values"))
    assert current.version == 2 and stored[shown[0]]["overall"] == 3 and stored[shown[1]]["overall"] == 5
    assert stored[shown[1]]["comment"] == "Better on a second look." and not stored[shown[1]]["hallucination"]
    old = dict(Ranking.objects.get(pk=ranking.pk).ratings.values_list("response_id", "values"))
    assert old[shown[0]]["overall"] == 6  # the old version keeps its form
    history = client.get(reverse("annotation:ranking-detail", args=[project.slug, current.pk])).content.decode()
    assert "A: rank 1 → 2; B: rank 2 → 1; A: form edited; B: form edited" in history


@pytest.mark.django_db
def test_revision_page_of_a_pairwise_ranking_takes_the_strength_and_a_tie(client):
    from annotation.services.projects import project_create

    project = project_create(name="AB", slug="ab", kind="pairwise", overlap=1, allow_ties=True)
    PromptFactory(project=project, responses=["Paris.", "Lyon."])
    user, ranking, shown = _submitted(project, strength=3)
    client.force_login(user)
    url = reverse("annotation:ranking-detail", args=[project.slug, ranking.pk])

    page = client.get(url).content.decode()
    assert 'name="strength" value="3" checked' in page

    assert client.post(url, _revise_post(ranking, [2, 1], strength="1")).status_code == 302
    second = Ranking.objects.get(prompt=ranking.prompt, labeler=user, is_current=True)
    assert (second.version, second.strength) == (2, 1)
    assert [e.rank for e in second.entries.order_by("shown_position")] == [2, 1]

    url = reverse("annotation:ranking-detail", args=[project.slug, second.pk])
    refused = client.post(url, _revise_post(second, [1, 1], strength="2"))  # a tie has no strength
    assert refused.status_code == 400 and Ranking.objects.get(pk=second.pk).is_current
    assert client.post(url, _revise_post(second, [1, 1], strength="")).status_code == 302
    third = Ranking.objects.get(prompt=ranking.prompt, labeler=user, is_current=True)
    assert (third.version, third.strength) == (3, None)
    history = client.get(reverse("annotation:ranking-detail", args=[project.slug, third.pk])).content.decode()
    assert "strength 3 → 1" in history and "A: rank 2 → 1; strength 1 → —" in history
