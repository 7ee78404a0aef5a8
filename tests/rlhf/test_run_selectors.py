"""Hand-computed figures: the human agreement ceiling on held-out prompts, and model-vs-labeler disagreements."""

import pytest

from annotation.models import Membership
from rlhf.models import ResponseScore
from rlhf.selectors import disagreements_get, human_agreement_get, prompt_disagreements
from tests.factories import ProjectFactory, PromptFactory, labeler
from tests.rlhf.conftest import make_run, rank


@pytest.fixture
def world(db):
    """Prompt `three`: 3 labelers rank 3 responses (one tie); prompt `two`: 1 labeler, 2 responses (category b)."""
    project = ProjectFactory()
    a, b, c = (labeler(project) for _ in range(3))
    three = PromptFactory(project=project, responses=3, category="qa")
    two = PromptFactory(project=project, responses=2, category="b")
    rank(three, a, [1, 2, 3])
    rank(three, b, [1, 3, 2], guideline_version=2)
    rank(three, c, [1, 1, 2])
    rank(two, a, [1, 2])
    return project, three, two, (a, b, c)


def test_human_agreement_on_held_out_prompts_drops_ties(world):
    project, three, two, _ = world
    # (r1,r2): 2 prefer r1, 1 tie (dropped) -> 1/1; (r1,r3): 3/3; (r2,r3): 2 vs 1 -> 1/3.  Total 5/7.
    ceiling = human_agreement_get(project=project, prompt_ids=[three.id, two.id])
    assert ceiling["overall"] == pytest.approx(5 / 7, abs=1e-4)
    assert ceiling["compared_pairs"] == 7
    assert ceiling["by_category"] == {
        "b": {"agreement": None, "compared_pairs": 0},
        "qa": {"agreement": pytest.approx(5 / 7, abs=1e-4), "compared_pairs": 7},
    }
    # Per guideline version: v1 holds two labelers (a, c) on `three`: (r1,r2) c ties; (r1,r3) 1/1; (r2,r3) 1/1.
    assert ceiling["by_guideline"]["1"] == {"agreement": 1.0, "compared_pairs": 2}


def test_human_agreement_leaves_out_excluded_labelers_and_other_prompts(world):
    project, three, two, (a, b, c) = world
    Membership.objects.filter(project=project, user=b).update(excluded=True)
    ceiling = human_agreement_get(project=project, prompt_ids=[three.id])
    assert ceiling["overall"] == 1.0 and ceiling["compared_pairs"] == 2
    assert human_agreement_get(project=project, prompt_ids=[two.id])["overall"] is None
    assert human_agreement_get(project=project, prompt_ids=[])["overall"] is None


def test_prompt_disagreements_compares_the_model_order_with_the_majority():
    ranks = [{1: 1, 2: 2, 3: 3}, {1: 1, 2: 3, 3: 2}, {1: 1, 2: 1, 3: 2}]
    # majority: 1>2, 1>3, 2>3; the model puts 3 above 2.
    assert prompt_disagreements(ranks, {1: 0.9, 2: 0.1, 3: 0.5}) == (1, 3)
    assert prompt_disagreements(ranks, {1: 0.9, 2: 0.5, 3: 0.1}) == (0, 3)
    assert prompt_disagreements([{1: 1, 2: 2}, {1: 2, 2: 1}], {1: 1.0, 2: 0.0}) == (0, 0)  # even split: no majority


def test_disagreements_lists_the_worst_prompts_first_with_model_and_human_orders(world):
    project, three, two, _ = world
    run = make_run(project, status="succeeded")
    r1, r2, r3 = three.responses.order_by("index")
    t1, t2 = two.responses.order_by("index")
    for response, score in ((r1, 0.9), (r2, 0.1), (r3, 0.5), (t1, -1.0), (t2, 2.0)):
        ResponseScore.objects.create(run=run, response=response, score=score)

    report = disagreements_get(run=run, project=project)

    assert report["scored_responses"] == 5 and report["pairs_compared"] == 4
    assert report["disagreement_rate"] == pytest.approx(2 / 4)
    assert [(p["prompt_id"], p["disagree"], p["compared"]) for p in report["prompts"]] == [
        (two.id, 1, 1),
        (three.id, 1, 3),
    ]
    worst = report["prompts"][0]
    assert [r["id"] for r in worst["responses"]] == [t2.id, t1.id]  # the model's order
    assert [r["mean_rank"] for r in worst["responses"]] == [2.0, 1.0]
