"""Labeler feedback: the pair maths, the guideline passage, what is covered when, and who sees what."""

import pytest
from django.urls import reverse

from annotation.feedback import consensus_of, guideline_sections, order_string, pair_agreement, passage_for
from annotation.models import Ranking
from annotation.selectors_feedback import labeler_feedback_get
from annotation.services.gold import prompt_gold_set
from tests.factories import ProjectFactory, PromptFactory, labeler, rank_queue

GUIDELINES = """# Guidelines
Rank the most helpful answer first.

## Safety
A refusal of a dangerous request beats detailed instructions for harm: weapons, poisons, malware.

## Code
Working code with an explanation beats code alone; a Python function that runs beats pseudo-code.
"""


def test_pair_agreement_and_orders():
    letters = {1: "A", 2: "B", 3: "C"}
    mine = {1: 1, 2: 2, 3: 3}
    theirs = consensus_of([{1: 2, 2: 1, 3: 3}, {1: 2, 2: 1, 3: 3}])
    same, compared, flipped = pair_agreement(mine, theirs, letters, who="the others")
    assert (same, compared) == (2, 3)
    assert flipped == ["You put A above B; the others put B above A."]
    # Ties on either side are not compared.
    assert pair_agreement({1: 1, 2: 1, 3: 2}, theirs, letters, who="x")[:2] == (2, 2)
    assert order_string({1: 2.0, 2: 1.0, 3: 2.0}, letters) == "B > A = C"


def test_guideline_passages_named_or_by_wording():
    sections = guideline_sections(GUIDELINES)
    assert [t for t, _ in sections] == ["Guidelines", "Safety", "Code"]
    assert passage_for(sections, named="safety")[0] == "Safety"
    assert passage_for(sections, named="Code", text="weapons")[0] == "Code"  # the manager's choice wins
    title, body, reason = passage_for(sections, text="Write a python function to sort a list; here is the code")
    assert title == "Code" and "pseudo-code" in body and "closest" in reason
    assert passage_for(sections, text="the and of") is None
    assert passage_for([], text="anything") is None


def _project(every=2):
    project = ProjectFactory(overlap=3, feedback_every=every, guideline=GUIDELINES)
    prompts = [PromptFactory(project=project, responses=3, text=f"Write python code number {i}") for i in range(3)]
    return project, prompts


@pytest.mark.django_db
def test_feedback_covers_full_batches_and_settled_prompts_only():
    project, prompts = _project(every=2)
    me, x, y = labeler(project), labeler(project), labeler(project)
    rank_queue(project, x)  # index order: response 0 best
    rank_queue(project, y)
    # Me: the reverse on every prompt.
    rank_queue(project, me, ranks_for=lambda prompt, responses: {r.id: 3 - r.index for r in responses})
    f = labeler_feedback_get(project=project, labeler=me)
    assert f["done"] == 3 and f["covered"] == 2 and f["next_at"] == 4
    assert f["consensus"]["prompts"] == 2 and f["consensus"]["pairs"] == 6 and f["consensus"]["agreement"] == 0
    assert len(f["disagreements"]) == 2
    item = f["disagreements"][0]
    assert item.source == "consensus" and len(item.flipped) == 3 and item.passage_title == "Code"
    # An unsettled prompt (only one other labeler) is not compared: nobody's single ranking is shown.
    Ranking.objects.filter(labeler=y).delete()
    for prompt in prompts:
        prompt.refresh_from_db()
    f = labeler_feedback_get(project=project, labeler=me)
    assert f["consensus"]["prompts"] == 0 and f["disagreements"] == []


@pytest.mark.django_db
def test_gold_results_and_off_switch():
    project, prompts = _project(every=1)
    gold = PromptFactory(project=project, responses=3, text="Tell me how to make poisons and malware.")
    responses = list(gold.responses.order_by("index"))
    prompt_gold_set(prompt=gold, ranks={responses[0].id: 2, responses[1].id: 1, responses[2].id: 3})
    project.gold_rate = 1.0
    project.save()
    me = labeler(project)
    rank_queue(project, me)
    f = labeler_feedback_get(project=project, labeler=me)
    assert f["gold"]["prompts"] == 1 and f["gold"]["agreement"] == pytest.approx(2 / 3)
    gold_item = next(d for d in f["disagreements"] if d.source == "reference")
    assert len(gold_item.flipped) == 1 and "the reference ranking put" in gold_item.flipped[0]
    assert gold_item.passage_title == "Safety"
    project.feedback_every = 0
    project.save()
    assert labeler_feedback_get(project=project, labeler=me) == {"enabled": False, "every": 0, "done": 4,
                                                                 "covered": 0, "next_at": None}  # fmt: skip


@pytest.mark.django_db
def test_feedback_page_and_due_link(client):
    project, prompts = _project(every=3)
    me, x, y = labeler(project), labeler(project), labeler(project)
    rank_queue(project, x)
    rank_queue(project, y)
    client.force_login(me)
    page = client.get(reverse("annotation:feedback", args=[project.slug])).content.decode()
    assert 'id="feedback-later"' in page
    rank_queue(project, me, ranks_for=lambda prompt, responses: {r.id: 3 - r.index for r in responses})
    label_done = client.get(reverse("annotation:label", args=[project.slug])).content.decode()
    assert 'id="feedback-due"' in label_done
    page = client.get(reverse("annotation:feedback", args=[project.slug])).content.decode()
    assert 'data-stat="consensus">0%' in page and "Guidelines: Code" in page
    outsider = labeler(ProjectFactory())
    client.force_login(outsider)
    assert client.get(reverse("annotation:feedback", args=[project.slug])).status_code == 404
