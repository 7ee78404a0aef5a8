"""The labeling page in a real browser: keyboard-only and drag-and-drop ranking, validation, XSS, access."""

import re

import pytest
from playwright.sync_api import expect

from annotation.models import Assignment, Guideline, Ranking
from tests.browser.conftest import log_in, screenshot
from tests.factories import ProjectFactory, PromptFactory, labeler

pytestmark = pytest.mark.browser

XSS_RESPONSES = [
    "<script>alert('response')</script>",
    "<img src=x onerror=alert('img')>",
    "<a href=\"javascript:alert('link')\">x</a>",
    "<svg onload=alert('svg')></svg> plain text",
    # The same through markdown syntax: the page renders responses as markdown (sanitised on the server).
    "[md link](javascript:alert('md'))",
    "![md image](x) <details open ontoggle=alert('details')>",
    "```html\n<script>alert('code')</script><iframe src=javascript:alert('frame')></iframe>\n```",
    "<style>body { display: none }</style> **bold**",
]
# Any element with an event-handler attribute, a javascript: URL, or a tag markdown never produces, inside <main>.
INJECTED_JS = """() => [...document.querySelectorAll('main *')].filter(el =>
    [...el.attributes].some(a => a.name.startsWith('on') || /^\\s*javascript:/i.test(a.value))
    || ['SCRIPT', 'IMG', 'SVG', 'IFRAME', 'STYLE', 'DETAILS', 'OBJECT', 'EMBED'].includes(el.tagName.toUpperCase())
).map(el => el.outerHTML)"""


def make_project(**settings):
    project = ProjectFactory(overlap=1, **settings)
    first = PromptFactory(project=project, text="First prompt:\nexplain tides.")
    second = PromptFactory(project=project, text="Second prompt: explain rainbows.")
    return project, first, second, labeler(project)


def label_url(project) -> str:
    return f"/projects/{project.slug}/label/"


def stored_ranks_by_position(ranking: Ranking) -> list[int]:
    return [entry.rank for entry in ranking.entries.order_by("shown_position")]


def test_keyboard_only_ranking_with_tie_is_stored_and_next_task_shown(page):
    project, first, second, user = make_project()
    log_in(page, user, next_url=label_url(project))
    expect(page.locator("#prompt-text")).to_have_text("First prompt:\nexplain tides.")
    assignment = Assignment.objects.get(labeler=user)

    for key, rank in [("a", "1"), ("b", "2"), ("c", "2"), ("d", "3")]:
        page.keyboard.press(key)
        page.keyboard.press(rank)
    expect(page.locator("#response-B [data-rank-display]")).to_have_text("Rank 2")
    expect(page.locator("#response-C [data-rank-display]")).to_have_text("Rank 2 (tie)")
    expect(page.locator("#response-C [data-tie]")).to_be_checked()
    screenshot(page, "labeling", full_page=False)
    page.keyboard.press("Enter")

    expect(page.locator("#prompt-text")).to_have_text("Second prompt: explain rainbows.")
    expect(page.locator(".messages")).to_contain_text("Ranking saved")
    ranking = Ranking.objects.get(labeler=user)
    assert ranking.prompt_id == first.pk and ranking.shown_order == assignment.shown_order
    assert stored_ranks_by_position(ranking) == [1, 2, 2, 3]
    assert ranking.time_spent_s is not None and ranking.time_spent_s > 0
    assert Assignment.objects.get(labeler=user, status="active").prompt_id == second.pk
    expect(page.locator("[data-progress=done]")).to_have_text("1")


def test_drag_and_drop_order_is_stored(page):
    project, first, _, user = make_project()
    log_in(page, user, next_url=label_url(project))
    cards = page.locator("#response-list > .response-card")
    expect(cards).to_have_count(4)

    drag(page, "#response-D .drag-handle", "#response-A .drag-handle")  # D to the top: D, A, B, C
    expect(cards.first).to_have_attribute("data-letter", "D")
    page.locator("#response-B [data-tie]").check()  # B ties with A, the card above it: D1, A2, B2, C3
    expect(page.locator("#response-B [data-rank-display]")).to_have_text("Rank 2 (tie)")
    page.get_by_role("button", name=re.compile("Submit ranking")).click()

    expect(page.locator("#prompt-text")).to_have_text("Second prompt: explain rainbows.")
    ranking = Ranking.objects.get(labeler=user, prompt=first)
    assert stored_ranks_by_position(ranking) == [2, 2, 3, 1]  # A, B, C, D in shown order


def drag(page, source: str, target: str) -> None:
    """Drag with real mouse events (SortableJS runs in fallback mode, which follows the mouse)."""
    start, end = page.locator(source).bounding_box(), page.locator(target).bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2 - 10, steps=3)
    glide(page, start["x"] + start["width"] / 2, start["y"] + start["height"] / 2 - 10, end["x"] + end["width"] / 2,
          end["y"] + 5)  # fmt: skip
    page.mouse.up()


def glide(page, x0: float, y0: float, x1: float, y1: float, steps: int = 15) -> None:
    """Move the pressed mouse as a hand does, about 60 events a second: SortableJS animates each reorder (120 ms)
    and reads the cards' edges, so a burst of events with no time between them is not what a person produces."""
    for i in range(1, steps + 1):
        page.mouse.move(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps)
        page.wait_for_timeout(16)
    for dy in (1, -1, 0):  # and settles on the target before letting go (Sortable ignores moves mid-animation)
        page.wait_for_timeout(60)
        page.mouse.move(x1, y1 + dy)


def test_page_side_validation_blocks_non_dense_ranking(page):
    project, _, _, user = make_project()
    log_in(page, user, next_url=label_url(project))
    for key, rank in [("a", "1"), ("b", "3"), ("c", "3"), ("d", "4")]:
        page.keyboard.press(key)
        page.keyboard.press(rank)
    page.get_by_role("button", name=re.compile("Submit ranking")).click()

    errors = page.locator("#client-errors")
    expect(errors).to_be_visible()
    expect(errors).to_contain_text("Ranks must be dense: [1, 3, 3, 4] skips rank 2")
    expect(page.locator("#submit-button")).to_be_enabled()
    assert page.url.endswith(label_url(project))
    assert Ranking.objects.count() == 0

    page.keyboard.press("b")
    page.keyboard.press("Backspace")
    expect(errors).to_contain_text("Response B has no rank: every response must be ranked.")
    page.keyboard.press("2")  # now 1, 2, 3, 4: valid, and the messages go away
    expect(errors).to_be_hidden()


def test_untrusted_text_runs_nothing_and_shows_as_text(page):
    project = ProjectFactory(overlap=1)
    Guideline.objects.create(
        project=project, version=2, text="# Rules\n<script>alert('g')</script><img src=x onerror=alert(2)>"
    )
    PromptFactory(project=project, text="<script>alert('prompt')</script>", responses=XSS_RESPONSES)
    user = labeler(project)
    log_in(page, user, next_url=label_url(project))

    page.keyboard.press("g")  # the guidelines panel (sanitised markdown) opens too
    expect(page.locator("#guidelines-panel")).to_be_visible()
    expect(page.locator("#guidelines-panel h1")).to_have_text("Rules")
    page.wait_for_timeout(300)  # time for an onerror/onload handler to have fired, if anything had been injected

    assert page.dialogs == []
    assert (
        page.locator("#response-list script, #response-list img, #response-list svg, main a[href^=javascript]").count()
        == 0
    )
    assert page.locator("#guidelines-panel script, #guidelines-panel img[onerror]").count() == 0
    assert page.evaluate(INJECTED_JS) == []
    expect(page.locator("#prompt-text")).to_have_text("<script>alert('prompt')</script>")
    for text in XSS_RESPONSES[:4]:  # raw HTML is shown as the text it is
        expect(page.locator(".response-text", has_text=text)).to_have_count(1)
    expect(page.locator(".response-text", has_text="[md link](javascript:alert('md'))")).to_have_count(1)
    expect(page.locator(".response-text pre", has_text="<script>alert('code')</script>")).to_have_count(1)
    expect(page.locator(".response-text strong")).to_have_text("bold")


def test_markdown_and_code_render_in_prompt_chat_turns_and_responses(page):
    project = ProjectFactory(overlap=1)
    messages = [
        {"role": "user", "content": "Sort this:\n\n- b\n- a"},
        {"role": "assistant", "content": "Which order?"},
        {"role": "user", "content": "Alphabetical, in `python`."},
    ]
    answers = [
        "```python\nprint(sorted(['b', 'a']))\n```",
        "| before | after |\n|---|---|\n| b, a | a, b |",
        "See [the docs](https://docs.python.org/3/howto/sorting.html).",
    ]
    PromptFactory(project=project, text="", messages=messages, responses=answers)
    log_in(page, labeler(project), next_url=label_url(project))

    turns = page.locator(".chat .turn")
    expect(turns).to_have_count(3)
    expect(turns.nth(0).locator(".turn-text li")).to_have_text(["b", "a"])
    expect(turns.nth(2).locator(".turn-text code")).to_have_text("python")
    expect(page.locator(".response-text pre.highlight span.nb", has_text="print")).to_have_count(1)
    expect(page.locator(".response-text table th")).to_have_text(["before", "after"])
    link = page.locator(".response-text a", has_text="the docs")
    expect(link).to_have_attribute("rel", "noopener nofollow")
    expect(link).to_have_attribute("href", "https://docs.python.org/3/howto/sorting.html")
    page.keyboard.press("a")  # the ranking keys still work with rendered cards
    page.keyboard.press("1")
    expect(page.locator("#response-A [data-rank-display]")).to_have_text("Rank 1")


def test_labeler_of_another_project_gets_404_on_its_label_page(page):
    project, _, _, _ = make_project()
    other, _, _, outsider = make_project()
    log_in(page, outsider)
    response = page.goto(label_url(project))
    assert response.status == 404
    assert Assignment.objects.filter(project=project).count() == 0


def test_s_key_pressed_twice_skips_to_the_next_prompt(page):
    project, first, second, user = make_project()
    log_in(page, user, next_url=label_url(project))
    page.keyboard.press("s")
    expect(page.locator("#rank-status")).to_contain_text("Press s again")
    assert Assignment.objects.get(labeler=user, prompt=first).status == Assignment.Status.ACTIVE
    page.keyboard.press("s")
    expect(page.locator("#prompt-text")).to_have_text("Second prompt: explain rainbows.")
    assert Assignment.objects.get(labeler=user, prompt=first).status == Assignment.Status.SKIPPED


def test_double_clicked_submit_stores_one_ranking(page):
    project, first, _, user = make_project()
    log_in(page, user, next_url=label_url(project))
    for key, rank in [("a", "4"), ("b", "3"), ("c", "2"), ("d", "1")]:
        page.keyboard.press(key)
        page.keyboard.press(rank)
    page.locator("#submit-button").dblclick()
    expect(page.locator("#prompt-text")).to_have_text("Second prompt: explain rainbows.")
    assert Ranking.objects.filter(labeler=user).count() == 1
    assert stored_ranks_by_position(Ranking.objects.get(prompt=first)) == [4, 3, 2, 1]


def test_help_dialog_and_guidelines_toggle_by_keyboard(page):
    project, _, _, user = make_project()
    log_in(page, user, next_url=label_url(project))
    expect(page.locator("#shortcut-bar")).to_contain_text("set rank")
    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#help-dialog")).to_be_hidden()
    page.keyboard.press("g")
    expect(page.locator("#guidelines-toggle")).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("g")
    expect(page.locator("#guidelines-panel")).to_be_hidden()
