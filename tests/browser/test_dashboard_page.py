"""The progress dashboard in a real browser: a manager follows the link, the chart draws the day's rankings, the
idle labeler is named and untrusted prompt text stays text."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from annotation.models import Assignment
from annotation.services.assignments import assignment_next
from tests.browser.conftest import log_in, page_value, screenshot
from tests.factories import ProjectFactory, PromptFactory, labeler, manager, rank_queue

pytestmark = pytest.mark.browser


def test_manager_reads_the_dashboard(page):
    project = ProjectFactory(overlap=2)
    for _ in range(4):
        PromptFactory(project=project, responses=3)
    PromptFactory(project=project, responses=3, text='<img src=x onerror="window.pwned=1"> untrusted')
    alice, bob = labeler(project, username="alice"), labeler(project, username="bob")
    done = rank_queue(project, alice)
    lease = assignment_next(project=project, labeler=bob)
    Assignment.objects.filter(pk=lease.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))

    log_in(page, manager(project), next_url=f"/projects/{project.slug}/")
    page.get_by_role("link", name="Progress dashboard").click()
    expect(page.locator("h1")).to_have_text("Progress dashboard")
    expect(page.locator('[data-stat="remaining"]')).to_have_text("5")
    expect(page.locator('[data-stat="short_prompts"]')).to_have_text("5")
    expect(page.locator("#idle-warning")).to_contain_text("bob")
    expect(page.locator('#labeler-table tr[data-labeler="alice"] td').nth(1)).to_have_text(str(len(done)))
    expect(page.locator("canvas#chart-per-day")).to_be_visible()
    drawn = page_value(page, "Chart.getChart('chart-per-day').data.datasets[0].data")
    assert len(drawn) == 30 and drawn[-1] == len(done) and sum(drawn) == len(done)
    expect(page.locator("#short-table")).to_contain_text("<img src=x")
    assert page.evaluate("window.pwned") is None
    screenshot(page, "dashboard")
    assert problems == []
