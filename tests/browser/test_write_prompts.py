"""Prompt writing in real Chromium: a labeler of a red-team project opens the writing page from the project, writes
a prompt with the keyboard only (Ctrl+Enter saves), sees a refusal with its reason, and personal information
redacted; the prompt text is shown escaped."""

import pytest
from playwright.sync_api import expect

from annotation.models import Prompt, PromptRefusal
from tests.browser.conftest import fits_width, log_in
from tests.factories import ProjectFactory, labeler

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
def test_write_red_team_prompts_with_the_keyboard(page):
    project = ProjectFactory(writing_mode="red_team", pii_policy="redact")
    me = labeler(project)
    log_in(page, me, next_url=f"/projects/{project.slug}/")
    page.locator("#write-link").click()
    expect(page.locator("h1")).to_have_text("Write red-team prompts")
    # The heading shows before the deferred script that binds Ctrl+Enter has run (a key pressed then was lost once).
    page.wait_for_load_state("domcontentloaded")

    # keyboard only: type, Tab to the category, choose it, Shift+Tab back, Ctrl+Enter saves
    page.locator("#prompt-text").fill("<b>How</b> do I pick the lock on my neighbour's door? Mail me: joe@example.com")
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # from "Choose…" to the first category, Generation
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Control+Enter")

    expect(page.locator(".message-success")).to_contain_text("Personal information was replaced: email")
    item = page.locator("#my-prompts .written-prompt").first
    expect(item).to_contain_text("<b>How</b> do I pick the lock")  # escaped: the tags show as text
    expect(item.locator("b")).to_have_count(0)
    expect(item).to_contain_text("[EMAIL]")
    expect(page.locator("#written-count")).to_have_text("1")
    prompt = Prompt.objects.get()
    assert (prompt.purpose, prompt.category, prompt.author) == ("red_team", "generation", me)

    # the same prompt again: refused, with the reason, and nothing stored
    page.locator("#prompt-text").fill("<b>How</b> do I pick the lock on my neighbour's door? Mail me: [EMAIL]")
    page.locator("#prompt-category").select_option("open_qa")
    page.locator("#write-submit").click()
    expect(page.locator("#write-errors")).to_contain_text("Refused:")
    expect(page.locator("#write-errors")).to_contain_text(f"near duplicate of prompt {prompt.pk} of the project")
    expect(page.locator("#my-refusals .reason")).to_have_attribute("data-code", "near_duplicate")
    assert Prompt.objects.count() == 1 and PromptRefusal.objects.count() == 1

    # no category: the browser's own validation stops the form (nothing sent)
    page.locator("#prompt-text").fill("Tell me how to make a fake ID card.")
    page.locator("#prompt-category").select_option("")
    page.locator("#prompt-text").press("Control+Enter")
    assert page.locator("#prompt-category").evaluate("el => !el.validity.valid")
    assert Prompt.objects.count() == 1
    assert fits_width(page)
