"""The labeling page's compare view in real Chromium: two responses side by side with word-level differences,
picked with keys, synchronised scrolling, lengths; long cards capped with "Show all"; untrusted text stays text."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import fits_width, log_in, page_value, screenshot
from tests.factories import ProjectFactory, PromptFactory, labeler

pytestmark = pytest.mark.browser

LONG = "\n\n".join(f"Paragraph {i}: the tide rises twice a day because of the moon." for i in range(60))


@pytest.mark.parametrize("page", ["desktop", "mobile"], indirect=True)
def test_compare_two_responses_with_keys(page):
    project = ProjectFactory(overlap=1)
    PromptFactory(
        project=project,
        responses=[
            "The moon pulls the sea and makes tides.",
            "The moon pulls the ocean and makes tides <img src=x onerror=window.pwned=1>.",
            LONG,
            LONG.replace("moon", "sun"),
        ],
    )
    log_in(page, labeler(project), next_url=f"/projects/{project.slug}/label/")
    texts = page_value(page, "window.compareView.texts")
    by_text = {text: letter for letter, text in texts.items()}
    first, second = by_text["The moon pulls the sea and makes tides."], by_text[
        "The moon pulls the ocean and makes tides <img src=x onerror=window.pwned=1>."]  # fmt: skip
    long_a, long_b = by_text[LONG], by_text[LONG.replace("moon", "sun")]

    page.keyboard.press(first.lower())  # focus the first short answer, then open the view on it
    page.keyboard.press("v")
    dialog = page.locator("#compare-dialog")
    expect(dialog).to_be_visible()
    assert fits_width(page)
    page.keyboard.press(second.lower())  # a letter sets the right side
    expect(page.locator("#compare-left-title")).to_have_text(f"Response {first}")
    expect(page.locator("#compare-right-title")).to_have_text(f"Response {second}")
    expect(page.locator("#compare-left-text del")).to_have_text(["sea"])
    expect(page.locator("#compare-right-text ins").first).to_have_text("ocean")
    expect(page.locator("#compare-right-text")).to_contain_text("<img src=x")
    expect(page.locator("#compare-left-length")).to_have_text("8 words, 39 characters")
    assert page.evaluate("window.pwned") is None
    # The keys stayed in the view: the card behind did not get focus or a rank.
    expect(page.locator(f"#response-{second} [data-rank-display]")).to_have_text("Unranked")

    # Shift+letter sets the left side; the long answers scroll together.
    page.keyboard.press(f"Shift+{long_a}")
    page.keyboard.press(long_b.lower())
    left, right = page.locator("#compare-left-text"), page.locator("#compare-right-text")
    expect(left.locator("del").first).to_have_text("moon")
    left.evaluate("el => { el.scrollTop = (el.scrollHeight - el.clientHeight) / 2; }")
    page.wait_for_timeout(200)
    share = right.evaluate("el => el.scrollTop / (el.scrollHeight - el.clientHeight)")
    assert 0.4 < share < 0.6
    screenshot(page, "compare", full_page=False)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # Long cards are capped with a "Show all" that expands them.
    card_text = page.locator(f"#response-{long_a} .response-text")
    height = card_text.evaluate("el => el.clientHeight")
    page.locator(f"#response-{long_a}").get_by_role("button", name="Show all").click()
    assert card_text.evaluate("el => el.clientHeight") > height * 2
    expect(page.locator(f"#response-{first} .card-length")).to_have_text("8 words")


@pytest.mark.parametrize("page", ["desktop", "mobile"], indirect=True)
def test_latex_in_a_prompt_is_drawn_as_mathml(page):
    project = ProjectFactory(overlap=1)
    PromptFactory(project=project, text=r"Solve $x^2 + 1 = 0$ over $\mathbb{C}$.", responses=["$x = \\pm i$", "No."])
    log_in(page, labeler(project), next_url=f"/projects/{project.slug}/label/")
    formula = page.locator("#prompt-text math").first
    expect(formula).to_be_visible()
    box = formula.bounding_box()
    assert box["width"] > 20 and box["height"] > 8  # drawn by Chromium's MathML layout, no script involved
    expect(page.locator(".response-text math")).to_have_count(1)
