"""Review and revise in a real browser: a labeler finds a ranking in 'My rankings', opens it as they saw it,
changes the ranks with the keyboard and saves; the history shows both versions."""

import pytest
from playwright.sync_api import expect

from annotation.models import Ranking
from tests.browser.conftest import fits_width, log_in
from tests.factories import ProjectFactory, PromptFactory, labeler, rank_queue

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("page", ["desktop", "mobile"], indirect=True)
def test_labeler_reviews_and_revises_a_ranking(page):
    project = ProjectFactory(overlap=1)
    PromptFactory(project=project, responses=3, text="Explain **tides**")
    PromptFactory(project=project, responses=3, text="Explain rainbows")
    user = labeler(project)
    rank_queue(project, user)
    log_in(page, user, next_url=f"/projects/{project.slug}/my-rankings/")
    expect(page.locator("#my-rankings tbody tr")).to_have_count(2)
    assert fits_width(page)
    page.get_by_label("Prompt contains").fill("tides")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#my-rankings tbody tr")).to_have_count(1)
    page.locator("#my-rankings a").first.click()
    expect(page.locator("#prompt-text strong")).to_have_text("tides")  # rendered markdown, as on the labeling page
    ranking = Ranking.objects.get(labeler=user, prompt__text="Explain **tides**")
    old = [e.rank for e in ranking.entries.order_by("shown_position")]
    inputs = page.locator("#revise-form input[type=number]")
    for i, rank in enumerate(old):
        inputs.nth(i).fill(str(4 - rank))
    page.get_by_label("Rationale").fill("On second thought.")
    page.get_by_role("button", name="Save revision").click()
    expect(page.locator("#history tbody tr")).to_have_count(2)
    expect(page.locator("#history")).to_contain_text("rationale edited")
    expect(page.get_by_text("Revision saved as version 2")).to_be_visible()
    current = Ranking.objects.get(labeler=user, prompt=ranking.prompt, is_current=True)
    assert current.version == 2 and [e.rank for e in current.entries.order_by("shown_position")] == [4 - r for r in old]
