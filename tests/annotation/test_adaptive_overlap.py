"""Adaptive overlap: the settling rule, and the queue asking for k labelers first and one more at a time, up to the
maximum, only while they disagree; leases never exceed a prompt's current target."""

import pytest

from annotation.agreement.adaptive import mean_pairwise_agreement, needs_more_labels, top_choice
from annotation.models import Assignment, Prompt
from annotation.selectors_dashboard import project_dashboard_get
from annotation.services.assignments import assignment_next
from annotation.services.rankings import ranking_submit
from tests.factories import ProjectFactory, PromptFactory, labeler


def test_settling_rule():
    same = [{1: 1, 2: 2, 3: 3}, {1: 1, 2: 2, 3: 3}]
    assert mean_pairwise_agreement(same) == 1.0 and top_choice(same) == 1
    assert needs_more_labels(same, min_agreement=0.8) == (False, "settled: pairwise agreement 1.00, top choice decided")
    split = [{1: 1, 2: 2, 3: 3}, {1: 2, 2: 1, 3: 3}]  # agree on 2 of 3 pairs, top choice split
    assert mean_pairwise_agreement(split) == pytest.approx(2 / 3)
    assert needs_more_labels(split, min_agreement=0.6) == (True, "top choice undecided")
    assert needs_more_labels(split, min_agreement=0.8)[0] is True
    tied = [{1: 1, 2: 1}, {1: 1, 2: 1}]
    assert needs_more_labels(tied, min_agreement=0.5) == (True, "no comparable pairs (all tied)")
    assert needs_more_labels([{1: 1, 2: 2}], min_agreement=0.5)[0] is True
    # The top choice must lead by two first places: 2-1 of three is undecided, 3-1 of four is decided.
    assert top_choice([{1: 1, 2: 2}, {1: 1, 2: 2}, {1: 2, 2: 1}]) is None
    assert top_choice([{1: 1, 2: 2}] * 3 + [{1: 2, 2: 1}]) == 1


def _submit(user, assignment, best_first_ids):
    ranks = {rid: best_first_ids.index(rid) + 1 for rid in assignment.shown_order}
    return ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=ranks)


@pytest.mark.django_db
def test_agreeing_labelers_settle_a_prompt_at_k():
    project = ProjectFactory(overlap=4, overlap_mode="adaptive", overlap_min=2, adaptive_agreement=0.6)
    first, second = PromptFactory(project=project, responses=3), PromptFactory(project=project, responses=3)
    order = list(first.responses.order_by("index").values_list("id", flat=True))
    a, b, c = labeler(project), labeler(project), labeler(project)
    la, lb = assignment_next(project=project, labeler=a), assignment_next(project=project, labeler=b)
    assert la.prompt_id == lb.prompt_id == first.pk
    assert assignment_next(project=project, labeler=c).prompt_id == second.pk  # k = 2 leases: the prompt is full
    _submit(a, la, order)
    _submit(b, lb, order)
    first.refresh_from_db()
    assert first.is_complete and first.ranking_count == 2 and first.wanted == 2


@pytest.mark.django_db
def test_disagreement_asks_one_more_at_a_time_up_to_the_maximum():
    project = ProjectFactory(overlap=4, overlap_mode="adaptive", overlap_min=2, adaptive_agreement=0.8)
    prompt = PromptFactory(project=project, responses=3)
    x, y, z = prompt.responses.order_by("index").values_list("id", flat=True)
    orders = [[x, y, z], [y, x, z], [z, y, x], [x, z, y], [y, z, x]]
    users = [labeler(project) for _ in orders]
    for i, (user, order) in enumerate(zip(users, orders, strict=True)):
        lease = assignment_next(project=project, labeler=user)
        if i == 4:
            assert lease is None  # the maximum (4) was reached: complete even without agreement
            break
        assert lease.prompt_id == prompt.pk
        if i < 1:  # one lease open, target 2: one more labeler may still take it (then gives it back)
            assert assignment_next(project=project, labeler=users[-1]) is not None
            Assignment.objects.filter(labeler=users[-1]).delete()
        _submit(user, lease, order)
        prompt.refresh_from_db()
        if i >= 1:
            assert prompt.wanted == min(i + 2, 4) or prompt.is_complete
    prompt.refresh_from_db()
    assert prompt.is_complete and prompt.ranking_count == 4
    assert Prompt.objects.get(pk=prompt.pk).ranking_count <= project.overlap


@pytest.mark.django_db
def test_dashboard_counts_each_prompts_own_target():
    project = ProjectFactory(overlap=5, overlap_mode="adaptive", overlap_min=2)
    PromptFactory(project=project, responses=3)
    PromptFactory(project=project, responses=3, wanted=4, ranking_count=3)
    d = project_dashboard_get(project=project)
    assert d["short_prompts"] == 2 and d["eta"]["remaining"] == 2 + 1
