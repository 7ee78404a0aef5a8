"""The two labeling modes of issue #15 in a real browser, keyboard only: the per-response form beside the ranking
(scores with Shift+digit, labels with their letter keys, a comment with `n`) and the pairwise A/B page (a / b / t,
then 1-4 for the strength). Manager-written labels and anchors are shown as text, never run."""

import pytest
from playwright.sync_api import expect

from annotation.models import Assignment, Guideline, Ranking, ResponseRating
from annotation.services.projects import project_create
from tests.browser.conftest import log_in
from tests.factories import PromptFactory, labeler

pytestmark = pytest.mark.browser

GUIDELINES = """# Guidelines

Rank best first.

## Overall quality

Score the response on its own.

## Hallucination / makes up facts

Tick it when the response states something false as a fact.
"""


def _form_project():
    project = project_create(name="Form", slug="form", response_form="instructgpt", overlap=1, guidelines=GUIDELINES)
    PromptFactory(project=project, text="Explain tides.", responses=["A text", "B text", "C text"])
    PromptFactory(project=project, text="Explain rainbows.", responses=3)
    return project


def _by_position(ranking: Ranking, attribute: str) -> list:
    ratings = {r.response_id: r for r in ranking.ratings.all()}
    return [getattr(ratings[rid], attribute) for rid in ranking.shown_order]


def test_form_mode_keyboard_only_stores_ranks_scores_labels_and_comment(page):
    project = _form_project()
    user = labeler(project)
    log_in(page, user, next_url="/projects/form/label/")
    expect(page.locator("#prompt-text")).to_have_text("Explain tides.")
    expect(page.locator("#response-A [data-rating-form]")).to_be_visible()
    expect(page.locator("#shortcut-bar")).to_contain_text("score the focused response")

    for letter, rank, score in [("a", "1", "7"), ("b", "2", "5")]:
        page.keyboard.press(letter)
        page.keyboard.press(rank)
        page.keyboard.press(f"Shift+Digit{score}")
    page.keyboard.press("m")  # B: hallucination / makes up facts
    page.keyboard.press("c")
    page.keyboard.press("3")
    page.keyboard.press("x")  # C: harmful; but no score yet
    expect(page.locator("#response-B [data-shortcut=m]")).to_be_checked()
    expect(page.locator("#response-C [data-shortcut=x]")).to_be_checked()
    page.keyboard.press("Enter")

    errors = page.locator("#client-errors")
    expect(errors).to_contain_text("Response C: Overall quality is required.")
    expect(page.locator("#response-C")).to_have_class(lambda_has("has-error"))
    assert Ranking.objects.count() == 0

    page.keyboard.press("c")
    page.keyboard.press("Shift+Digit2")
    expect(errors).to_be_hidden()
    page.keyboard.press("n")  # C's comment
    page.keyboard.type("Talks about <b>moons</b> & tides.")
    page.keyboard.press("Escape")  # back to the card: shortcuts work again
    page.keyboard.press("Shift+Digit9")  # outside the scale: ignored, with a message
    expect(page.locator("#rank-status")).to_contain_text("runs from 1 to 7")
    page.keyboard.press("Enter")

    expect(page.locator("#prompt-text")).to_have_text("Explain rainbows.")
    ranking = Ranking.objects.get(labeler=user)
    assert [e.rank for e in ranking.entries.order_by("shown_position")] == [1, 2, 3]
    assert _by_position(ranking, "score") == [7, 5, 2]
    values = _by_position(ranking, "values")
    assert [v["hallucination"] for v in values] == [False, True, False]
    assert [v["harmful"] for v in values] == [False, False, True]
    assert values[2]["comment"] == "Talks about <b>moons</b> & tides."
    assert ResponseRating.objects.count() == 3


def lambda_has(name):
    import re

    return re.compile(rf"\b{name}\b")


def test_guideline_link_next_to_a_field_opens_the_guidelines_at_its_heading(page):
    project = _form_project()
    log_in(page, labeler(project), next_url="/projects/form/label/")
    link = page.locator('#response-B .rating-label[data-field="hallucination"] .guideline-link')
    expect(link).to_have_attribute("data-guideline-anchor", "hallucination-makes-up-facts")
    link.click()
    expect(page.locator("#guidelines-panel")).to_be_visible()
    expect(page.locator("#guidelines-panel .guideline-target")).to_have_text("Hallucination / makes up facts")


def test_manager_written_labels_and_anchors_are_shown_as_text(page):
    evil = "<img src=x onerror=alert('label')>"
    form = {"fields": [
        {"key": "q", "type": "likert", "label": f"Quality {evil}", "min": 1, "max": 3,
         "anchors": {"1": "<script>alert('anchor')</script>", "3": "<b>great</b>"},
         "guideline": "https://example.com/guide?part=1&section=2"},
        {"key": "bad", "type": "label", "label": f"Bad {evil}", "guideline": "#x"},
        {"key": "why", "type": "text", "label": f"<i>Why</i> {evil}"},
    ]}  # fmt: skip
    project = project_create(name="Evil", slug="evil", response_form=form, overlap=1)
    PromptFactory(project=project, responses=2)
    log_in(page, labeler(project), next_url="/projects/evil/label/")
    expect(page.locator("#response-A legend")).to_contain_text(f"Quality {evil}")
    expect(page.locator("#response-A .likert-anchor").first).to_have_text("<script>alert('anchor')</script>")
    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_contain_text(f"Toggle “Bad {evil}”")
    page.keyboard.press("?")
    page.wait_for_timeout(300)
    assert page.dialogs == []
    assert page.locator("main img, main script:not([src]), main svg, main b, main i").count() == 0
    href = page.locator("#response-A .rating-likert .guideline-link").get_attribute("href")
    assert href == "https://example.com/guide?part=1&section=2"  # only http(s) addresses pass the schema check
    assert page.locator("#response-A .rating-likert .guideline-link").get_attribute("rel") == (
        "noopener noreferrer nofollow"
    )


def _pairwise_project(**settings):
    project = project_create(name="AB", slug="ab", kind="pairwise", overlap=1, **settings)
    PromptFactory(project=project, text="Capital of France?", responses=["Paris.", "Lyon.", "Nice."])
    PromptFactory(project=project, text="Capital of Italy?", responses=["Rome.", "Milan."])
    return project


def test_pairwise_keyboard_choice_and_strength_are_stored(page):
    project = _pairwise_project()
    user = labeler(project)
    log_in(page, user, next_url="/projects/ab/label/")
    expect(page.locator(".label-head h1")).to_have_text("Which response is better?")
    expect(page.locator("#response-list > .response-card")).to_have_count(2)
    expect(page.locator("#pair-strength")).to_contain_text("Negligibly better / unsure")

    page.keyboard.press("Enter")
    expect(page.locator("#client-errors")).to_contain_text("Choose A, B or a tie.")
    page.keyboard.press("b")
    expect(page.locator("#client-errors")).to_contain_text("Choose how much better it is (1–4).")
    page.keyboard.press("2")
    expect(page.locator("#client-errors")).to_be_hidden()
    expect(page.locator("#response-B [data-rank-display]")).to_have_text("Better")
    expect(page.locator("#rank-status")).to_have_text("B is better (Better)")
    page.keyboard.press("Enter")

    expect(page.locator("#prompt-text")).to_have_text("Capital of Italy?")
    ranking = Ranking.objects.get(labeler=user)
    a, b = ranking.shown_order
    assert dict(ranking.entries.values_list("response_id", "rank")) == {a: 2, b: 1}
    assert ranking.strength == 2


def test_pairwise_tie_clears_and_disables_the_strength(page):
    project = _pairwise_project()
    user = labeler(project)
    log_in(page, user, next_url="/projects/ab/label/")
    page.keyboard.press("a")
    page.keyboard.press("1")
    page.keyboard.press("t")
    expect(page.locator("[data-strength]").first).to_be_disabled()
    expect(page.locator("[data-strength]:checked")).to_have_count(0)
    page.keyboard.press("3")
    expect(page.locator("#rank-status")).to_have_text("A tie has no strength.")
    page.keyboard.press("Enter")

    expect(page.locator("#prompt-text")).to_have_text("Capital of Italy?")
    ranking = Ranking.objects.get(labeler=user)
    assert set(ranking.entries.values_list("rank", flat=True)) == {1} and ranking.strength is None
    assert Assignment.objects.get(labeler=user, status="active").prompt.text == "Capital of Italy?"


def test_pairwise_with_a_form_scores_each_side_and_edited_strength_names_show(page):
    project = _pairwise_project(allow_ties=False, strength_labels=["Far", "Clearly", "A bit", "Unsure"])
    project.response_form = {"fields": [{"key": "ok", "type": "likert", "label": "OK?", "min": 1, "max": 3}]}
    project.full_clean()
    project.save()
    Guideline.objects.filter(project=project).update(text="# Rules")
    user = labeler(project)
    log_in(page, user, next_url="/projects/ab/label/")
    expect(page.locator("#pair-choice [value=tie]")).to_have_count(0)
    expect(page.locator("#pair-strength")).to_contain_text("A bit")
    page.keyboard.press("j")  # focus A
    page.keyboard.press("Shift+Digit3")
    page.keyboard.press("j")  # focus B
    page.keyboard.press("Shift+Digit1")
    page.keyboard.press("t")
    expect(page.locator("#rank-status")).to_have_text("This project does not allow ties.")
    page.keyboard.press("a")
    page.keyboard.press("4")
    page.keyboard.press("Enter")

    expect(page.locator("#prompt-text")).to_have_text("Capital of Italy?")
    ranking = Ranking.objects.get(labeler=user)
    assert ranking.strength == 4
    assert _by_position(ranking, "score") == [3, 1]
