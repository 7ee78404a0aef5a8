"""The labeling page's ties and small screens in real Chromium: dropping a card onto another ties them (with a
visible band), dropping between orders them, ranks update during the drag, every action is announced in the
aria-live region; at 390 px (mobile emulation, touch) cards stack, rank buttons set ranks and the guidelines open
as a bottom sheet."""

import re

import pytest
from playwright.sync_api import expect

from annotation.models import Ranking
from tests.browser.conftest import log_in, screenshot
from tests.browser.test_labeling_page import glide, label_url, make_project, stored_ranks_by_position

pytestmark = pytest.mark.browser


def _center(page, selector):
    box = page.locator(selector).bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box


def test_drop_onto_a_card_ties_and_between_cards_orders(page):
    project, first, _, user = make_project()
    log_in(page, user, next_url=label_url(project))
    cards = page.locator("#response-list > .response-card")
    expect(cards).to_have_count(4)
    page.keyboard.press("a")  # rank everything in shown order first: A1 B2 C3 D4
    for key, rank in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]:
        page.keyboard.press(key)
        page.keyboard.press(rank)

    # Drag D by its grip onto the middle of B's card: the band shows while hovering, the drop ties D with B.
    x, y, _ = _center(page, "#response-D .drag-handle")
    bx, by, _ = _center(page, "#response-B .card-body")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y - 10, steps=3)
    glide(page, x, y - 10, bx, by, steps=20)
    expect(page.locator("#response-B")).to_have_class(re.compile("tie-target"))
    page.mouse.up()
    expect(page.locator("#response-D [data-rank-display]")).to_have_text("Rank 2 (tie)")
    expect(page.locator("#response-D")).to_have_class(re.compile("tied-above"))
    expect(page.locator("#rank-status")).to_have_text("Response D: rank 2, tied with B.")
    assert page.locator("#rank-status").get_attribute("aria-live") == "polite"
    expect(page.locator("#response-C [data-rank-display]")).to_have_text("Rank 3")

    # Drag C between A and B (near the top edge of B): it orders, no tie; the ranks follow while dragging.
    x, y, _ = _center(page, "#response-C .drag-handle")
    b_box = page.locator("#response-B").bounding_box()
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y - 10, steps=3)
    glide(page, x, y - 10, b_box["x"] + b_box["width"] / 2, b_box["y"] + 4, steps=20)
    live_c = page.locator("#response-list > #response-C:not(.sortable-fallback) [data-rank-display]")
    expect(live_c).to_have_text("Rank 2")  # before the drop
    page.mouse.up()
    expect(page.locator("#rank-status")).to_have_text("Response C: rank 2.")
    order = page.eval_on_selector_all("#response-list > .response-card", "els => els.map(e => e.dataset.letter)")
    assert order == ["A", "C", "B", "D"]
    page.get_by_role("button", name=re.compile("Submit ranking")).click()
    expect(page.locator("#prompt-text")).to_have_text("Second prompt: explain rainbows.")
    ranking = Ranking.objects.get(labeler=user, prompt=first)
    assert stored_ranks_by_position(ranking) == [1, 3, 2, 3]  # A, B, C, D in shown order


@pytest.mark.parametrize("page", ["mobile"], indirect=True)
def test_phone_width_taps_rank_buttons_and_opens_guidelines_as_a_sheet(page):
    project, first, _, user = make_project()
    log_in(page, user, next_url=label_url(project))
    cards = page.locator("#response-list > .response-card")
    expect(cards).to_have_count(4)
    boxes = [cards.nth(i).bounding_box() for i in range(4)]
    assert all(box["width"] <= 390 for box in boxes)
    assert all(boxes[i]["y"] < boxes[i + 1]["y"] for i in range(3))  # stacked, one per row
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    for letter, rank in [("A", 2), ("B", 1), ("C", 3), ("D", 3)]:
        page.locator(f"#response-{letter} [data-set-rank='{rank}']").tap()
    expect(page.locator("#response-D [data-rank-display]")).to_have_text("Rank 3 (tie)")
    expect(page.locator("#response-B [data-set-rank='1']")).to_have_attribute("aria-pressed", "true")
    page.locator("#guidelines-toggle").tap()
    sheet = page.locator("#guidelines-panel")
    expect(sheet).to_be_visible()
    box = sheet.bounding_box()
    assert box["width"] >= 385 and box["y"] > 150 and abs(box["y"] + box["height"] - 844) < 2  # a bottom sheet
    screenshot(page, "labeling-mobile", full_page=False)
    page.keyboard.press("Escape")
    page.locator("#submit-button").tap()
    expect(page.locator("#prompt-text")).to_have_text("Second prompt: explain rainbows.")
    ranking = Ranking.objects.get(labeler=user, prompt=first)
    assert stored_ranks_by_position(ranking) == [2, 1, 3, 3]
