from datetime import timedelta

from django.utils import timezone

from annotation.models import Assignment
from annotation.services.assignments import assignment_next, assignment_skip
from annotation.services.rankings import ranking_submit
from tests.factories import ProjectFactory, PromptFactory, labeler


def _rank_in_shown_order(assignment):
    return {rid: i for i, rid in enumerate(assignment.shown_order, start=1)}


def test_assignment_next_returns_the_labelers_unfinished_task_again(db):
    project = ProjectFactory()
    PromptFactory.create_batch(3, project=project)
    user = labeler(project)
    first = assignment_next(project=project, labeler=user)
    assert assignment_next(project=project, labeler=user).pk == first.pk
    assert Assignment.objects.count() == 1


def test_assignment_next_stops_at_overlap_distinct_labelers(db):
    project = ProjectFactory(overlap=2)
    prompt = PromptFactory(project=project)
    users = [labeler(project) for _ in range(3)]
    first, second = (assignment_next(project=project, labeler=u) for u in users[:2])
    assert first.prompt_id == second.prompt_id == prompt.pk
    assert assignment_next(project=project, labeler=users[2]) is None


def test_assignment_next_never_gives_a_labeler_the_same_prompt_twice(db):
    project = ProjectFactory(overlap=3)
    PromptFactory(project=project)
    user = labeler(project)
    assignment = assignment_next(project=project, labeler=user)
    ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=_rank_in_shown_order(assignment))
    assert assignment_next(project=project, labeler=user) is None


def test_expired_lease_returns_prompt_to_the_pool(db):
    project = ProjectFactory(overlap=1)
    PromptFactory(project=project)
    holder, other = labeler(project), labeler(project)
    stale = assignment_next(project=project, labeler=holder)
    assert assignment_next(project=project, labeler=other) is None
    Assignment.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    fresh = assignment_next(project=project, labeler=other)
    assert fresh is not None and fresh.prompt_id == stale.prompt_id


def test_lease_lasts_the_projects_lease_minutes(db):
    project = ProjectFactory(lease_minutes=7)
    PromptFactory(project=project)
    before = timezone.now()
    assignment = assignment_next(project=project, labeler=labeler(project))
    assert timedelta(minutes=7) <= assignment.expires_at - before < timedelta(minutes=7, seconds=5)


def test_skip_returns_prompt_to_others_and_not_to_the_skipper(db):
    project = ProjectFactory(overlap=1)
    PromptFactory(project=project)
    skipper, other = labeler(project), labeler(project)
    assignment = assignment_skip(assignment=assignment_next(project=project, labeler=skipper))
    assert assignment.status == Assignment.Status.SKIPPED
    assert assignment_next(project=project, labeler=skipper) is None
    assert assignment_next(project=project, labeler=other).prompt_id == assignment.prompt_id


def test_shown_order_is_stored_and_differs_between_labelers(db):
    project = ProjectFactory(overlap=10)
    prompt = PromptFactory(project=project, responses=6)
    orders = {tuple(assignment_next(project=project, labeler=labeler(project)).shown_order) for _ in range(6)}
    assert len(orders) > 1
    assert all(sorted(order) == sorted(prompt.responses.values_list("id", flat=True)) for order in orders)


def test_responses_per_task_limits_what_is_shown(db):
    project = ProjectFactory(responses_per_task=3)
    PromptFactory(project=project, responses=5)
    assert len(assignment_next(project=project, labeler=labeler(project)).shown_order) == 3


def test_gold_prompts_enter_the_queue_at_the_gold_rate(db):
    project = ProjectFactory(gold_rate=1.0)
    PromptFactory(project=project)
    gold = PromptFactory(project=project, is_gold=True)
    assert assignment_next(project=project, labeler=labeler(project)).prompt_id == gold.pk


def test_gold_prompts_stay_out_of_the_queue_at_rate_zero(db):
    project = ProjectFactory(gold_rate=0.0)
    PromptFactory(project=project, is_gold=True)
    assert assignment_next(project=project, labeler=labeler(project)) is None
