"""Labeler feedback in real Chromium: after a full batch the progress bar links to the feedback page, which shows
the agreement with the others on settled prompts, the flipped pairs and the guideline section that decides."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import fits_width, log_in
from tests.factories import ProjectFactory, PromptFactory, labeler, rank_queue

pytestmark = pytest.mark.browser

GUIDELINES = "# Guidelines\nRank.\n\n## Code\nWorking python code beats pseudo-code; a function that runs wins.\n"


@pytest.mark.parametrize("page", ["desktop", "mobile"], indirect=True)
def test_feedback_after_a_batch(page):
    project = ProjectFactory(overlap=3, feedback_every=2, guideline=GUIDELINES)
    for i in range(2):
        PromptFactory(project=project, responses=3, text=f"Write python code for task {i}")
    rank_queue(project, labeler(project))
    rank_queue(project, labeler(project))
    me = labeler(project)
    rank_queue(project, me, ranks_for=lambda prompt, responses: {r.id: 3 - r.index for r in responses})
    log_in(page, me, next_url=f"/projects/{project.slug}/label/")
    page.get_by_role("link", name="New feedback on your 2 rankings").click()
    expect(page.locator('[data-stat="consensus"]')).to_have_text("0%")
    expect(page.locator(".feedback-item")).to_have_count(2)
    assert fits_width(page)
    expect(page.locator(".feedback-item").first.locator(".flipped li")).to_have_count(3)
    expect(page.locator(".feedback-item").first.locator("summary")).to_contain_text("Guidelines: Code")
