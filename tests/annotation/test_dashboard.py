"""The manager's progress dashboard: the pure maths, the selector on real rows, the page and the API, and roles."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.dashboard import ETA_MIN_RANKINGS, completion_eta, daily_series, median_or_none
from annotation.models import Assignment, Prompt, Ranking
from annotation.selectors_dashboard import project_dashboard_get
from annotation.services.assignments import assignment_next
from tests.factories import AdminFactory, ProjectFactory, PromptFactory, labeler, manager, rank_queue

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def test_daily_series_is_zero_filled_and_ends_today():
    day = dt.date(2026, 12, 2)
    series = daily_series({day: 3, day - dt.timedelta(days=2): 1, day - dt.timedelta(days=40): 9}, end=day, days=5)
    assert [row["day"] for row in series] == ["2026-11-28", "2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02"]
    assert [row["rankings"] for row in series] == [0, 0, 1, 0, 3]


def test_median_ignores_missing_times():
    assert median_or_none([None, 10.0, 30.0, None, 20.0]) == 20.0
    assert median_or_none([None]) is None


def test_eta_from_the_window_rate():
    # 36 rankings in the last 3 days (a project older than the window) → 0.5 per hour → 100 remaining = 200 h.
    eta = completion_eta(remaining=100, in_window=36, first_in_window=NOW - dt.timedelta(days=5), now=NOW)
    assert eta.rate_per_hour == pytest.approx(0.5)
    assert eta.hours == pytest.approx(200)
    assert eta.finish_at == NOW + dt.timedelta(hours=200)


def test_eta_young_project_is_not_diluted_and_never_under_an_hour():
    two_hours = completion_eta(remaining=10, in_window=20, first_in_window=NOW - dt.timedelta(hours=2), now=NOW)
    assert two_hours.rate_per_hour == pytest.approx(10)
    minutes = completion_eta(remaining=10, in_window=20, first_in_window=NOW - dt.timedelta(minutes=5), now=NOW)
    assert minutes.rate_per_hour == pytest.approx(20)  # 20 rankings over at least one hour, not over 5 minutes


def test_eta_refuses_to_guess_with_too_little_work_and_is_zero_when_done():
    few = completion_eta(remaining=10, in_window=ETA_MIN_RANKINGS - 1, first_in_window=NOW, now=NOW)
    assert few.hours is None and few.finish_at is None and "Not enough recent work" in few.reason
    done = completion_eta(remaining=0, in_window=0, first_in_window=None, now=NOW)
    assert done.hours == 0 and done.remaining == 0


@pytest.mark.django_db
def test_dashboard_counts_real_work_and_flags_idle_leases():
    project = ProjectFactory(overlap=2)
    prompts = [PromptFactory(project=project, responses=3) for _ in range(6)]
    PromptFactory(project=project, responses=3, is_gold=True)  # gold prompts are not "short of overlap"
    alice, bob, carol = labeler(project), labeler(project), labeler(project)
    done = rank_queue(project, alice)
    Ranking.objects.filter(pk__in=[r.pk for r in done]).update(time_spent_s=40.0)
    # Bob takes a prompt and walks away: his lease is 30 minutes old and he never submitted.
    lease = assignment_next(project=project, labeler=bob)
    Assignment.objects.filter(pk=lease.pk).update(created_at=timezone.now() - dt.timedelta(minutes=30))
    # Carol took one a minute ago: working, not idle.
    assignment_next(project=project, labeler=carol)

    d = project_dashboard_get(project=project)
    rows = {row["labeler"]: row for row in d["labelers"]}
    assert rows[alice.username]["rankings"] == len(done) >= 6
    assert rows[alice.username]["median_s"] == 40.0
    assert rows[bob.username]["leases_held"] == 1 and rows[bob.username]["idle"] is True
    assert rows[carol.username]["idle"] is False
    assert d["idle_labelers"] == [bob.username]
    assert d["per_day"][-1]["rankings"] == len(done)
    assert sum(row["rankings"] for row in d["per_day"]) == len(done)
    # Every non-gold prompt has one of its two rankings: 6 short prompts, 6 rankings missing.
    assert d["short_prompts"] == 6 and d["eta"]["remaining"] == 6
    assert {p["id"] for p in d["short_sample"]} == {p.pk for p in prompts}
    assert d["eta"]["rate_per_hour"] is not None and d["eta"]["hours"] > 0


@pytest.mark.django_db
def test_revisions_are_not_new_work():
    project = ProjectFactory(overlap=1)
    PromptFactory(project=project, responses=2)
    alice = labeler(project)
    (ranking,) = rank_queue(project, alice)
    Ranking.objects.filter(pk=ranking.pk).update(is_current=False)
    Ranking.objects.create(
        project=project, prompt=ranking.prompt, labeler=alice, num_responses=2, shown_order=ranking.shown_order,
        version=2,
    )  # fmt: skip
    d = project_dashboard_get(project=project)
    assert d["labelers"][0]["rankings"] == 1
    assert sum(row["rankings"] for row in d["per_day"]) == 1


@pytest.mark.django_db
def test_page_and_api_for_managers_only(client):
    project = ProjectFactory(overlap=1)
    PromptFactory(project=project, responses=2, text="<script>alert(1)</script> short prompt")
    boss, worker, outsider = manager(project), labeler(project), AdminFactory()
    page = reverse("annotation:progress", args=[project.slug])
    api = reverse("api-project-dashboard", args=[project.slug])
    client.force_login(worker)
    assert client.get(page).status_code == 404
    assert client.get(api).status_code in (403, 404)
    client.force_login(boss)
    response = client.get(page)
    body = response.content.decode()
    assert response.status_code == 200
    assert "Progress dashboard" in body and "&lt;script&gt;alert(1)&lt;/script&gt; short prompt" in body
    assert "<script>alert(1)" not in body
    data = client.get(api).json()
    assert data["short_prompts"] == 1 and len(data["per_day"]) == 30 and data["eta"]["remaining"] == 1
    client.force_login(outsider)  # an admin sees every project
    assert client.get(page).status_code == 200
    assert Prompt.objects.count() == 1
