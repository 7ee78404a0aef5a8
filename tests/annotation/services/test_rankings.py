from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.utils import timezone

from annotation.models import Assignment, Prompt, Ranking, RankingEntry
from annotation.services.assignments import assignment_next, assignment_skip
from annotation.services.projects import guideline_publish
from annotation.services.rankings import ranking_revise, ranking_submit
from tests.factories import ProjectFactory, PromptFactory, labeler


@pytest.fixture
def task(db):
    project = ProjectFactory(overlap=2)
    PromptFactory(project=project)
    user = labeler(project)
    return user, assignment_next(project=project, labeler=user)


def _ranks(assignment, *values):
    return dict(zip(assignment.shown_order, values, strict=True))


def test_ranking_submit_stores_ranks_order_flags_and_guideline_version(task):
    user, assignment = task
    guideline_publish(project=assignment.project, text="v2 guidelines")
    ranks = _ranks(assignment, 1, 2, 2, 3)
    ranking, created = ranking_submit(
        labeler=user, assignment_id=assignment.pk, ranks=ranks, flags=["unsafe"], rationale="B and C equal",
        time_spent_s=12.5,
    )  # fmt: skip
    assert created
    ranking.refresh_from_db()
    assert (ranking.guideline_version, ranking.flags, ranking.time_spent_s) == (2, ["unsafe"], 12.5)
    assert ranking.shown_order == assignment.shown_order
    assert dict(ranking.entries.values_list("response_id", "rank")) == ranks
    assert list(ranking.entries.order_by("shown_position").values_list("response_id", flat=True)) == ranking.shown_order
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SUBMITTED
    assert Prompt.objects.get(pk=assignment.prompt_id).ranking_count == 1


def test_ranking_submit_twice_with_same_ranks_stores_one_ranking(task):
    user, assignment = task
    ranks = _ranks(assignment, 1, 2, 3, 4)
    first, _ = ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=ranks)
    second, created = ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=ranks)
    assert (second.pk, created) == (first.pk, False)
    assert Ranking.objects.count() == 1
    assert Prompt.objects.get(pk=assignment.prompt_id).ranking_count == 1


def test_ranking_submit_with_different_ranks_after_submit_is_refused(task):
    user, assignment = task
    ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=_ranks(assignment, 1, 2, 3, 4))
    with pytest.raises(ValidationError, match="already submitted"):
        ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=_ranks(assignment, 4, 3, 2, 1))
    assert Ranking.objects.count() == 1


@pytest.mark.parametrize(
    ("values", "message"),
    [((1, 3, 3, 4), "skips rank 2"), ((1, 2, 3, 5), "outside 1..4"), ((1, 2, 3), "has no rank")],
)
def test_ranking_submit_rejects_invalid_rankings_and_stores_nothing(task, values, message):
    user, assignment = task
    ranks = dict(zip(assignment.shown_order, values, strict=False))
    with pytest.raises(ValidationError, match=message):
        ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=ranks)
    assert Ranking.objects.count() == RankingEntry.objects.count() == 0
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.ACTIVE


def test_ranking_submit_rejects_response_of_another_prompt(task):
    user, assignment = task
    stray = PromptFactory(project=assignment.project).responses.first()
    ranks = _ranks(assignment, 1, 2, 3, 4) | {stray.pk: 1}
    with pytest.raises(ValidationError, match=f"Response {stray.pk} is not one of the responses shown"):
        ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=ranks)
    assert Ranking.objects.count() == 0


def test_ranking_submit_rejects_unknown_flag_and_missing_required_rationale(task):
    user, assignment = task
    assignment.project.rationale_required = True
    assignment.project.save()
    with pytest.raises(ValidationError) as excinfo:
        ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=_ranks(assignment, 1, 2, 3, 4), flags=["odd"])
    assert "Unknown flag 'odd'" in excinfo.value.messages[0]
    assert "rationale" in excinfo.value.messages[1]
    assert Ranking.objects.count() == 0


def test_ranking_submit_of_someone_elses_assignment_is_denied(task):
    _, assignment = task
    intruder = labeler(assignment.project)
    with pytest.raises(PermissionDenied):
        ranking_submit(labeler=intruder, assignment_id=assignment.pk, ranks=_ranks(assignment, 1, 2, 3, 4))
    assert Ranking.objects.count() == 0


def test_ranking_submit_after_skip_is_refused(task):
    user, assignment = task
    assignment_skip(assignment=assignment)
    with pytest.raises(ValidationError, match="skipped"):
        ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=_ranks(assignment, 1, 2, 3, 4))


def test_late_submit_is_accepted_while_the_prompt_has_room(task):
    user, assignment = task
    Assignment.objects.filter(pk=assignment.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    _, created = ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=_ranks(assignment, 1, 2, 3, 4))
    assert created


def test_late_submit_is_refused_once_others_filled_the_prompt(db):
    project = ProjectFactory(overlap=1)
    PromptFactory(project=project)
    late, other = labeler(project), labeler(project)
    stale = assignment_next(project=project, labeler=late)
    Assignment.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    fresh = assignment_next(project=project, labeler=other)
    ranking_submit(labeler=other, assignment_id=fresh.pk, ranks=_ranks(fresh, 1, 2, 3, 4))
    with pytest.raises(ValidationError, match="lease on this prompt expired"):
        ranking_submit(labeler=late, assignment_id=stale.pk, ranks=_ranks(stale, 1, 2, 3, 4))
    assert Ranking.objects.count() == 1
    assert Prompt.objects.get().is_complete


def test_ranking_revise_keeps_the_old_version(task):
    user, assignment = task
    first, _ = ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=_ranks(assignment, 1, 2, 3, 4))
    revised = ranking_revise(labeler=user, ranking_id=first.pk, ranks=_ranks(assignment, 2, 1, 3, 3))
    first.refresh_from_db()
    assert (first.is_current, revised.is_current, revised.version) == (False, True, 2)
    assert dict(first.entries.values_list("response_id", "rank")) == _ranks(assignment, 1, 2, 3, 4)
    assert Ranking.objects.filter(is_current=True).count() == 1
    assert Prompt.objects.get(pk=assignment.prompt_id).ranking_count == 1


def test_database_refuses_rank_above_k(task):
    user, assignment = task
    ranking, _ = ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=_ranks(assignment, 1, 2, 3, 4))
    entry = ranking.entries.first()
    with pytest.raises(IntegrityError):
        RankingEntry.objects.filter(pk=entry.pk).update(rank=5)


def test_database_refuses_two_current_rankings_per_labeler_and_prompt(task):
    user, assignment = task
    ranking, _ = ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=_ranks(assignment, 1, 2, 3, 4))
    with pytest.raises(IntegrityError):
        Ranking.objects.create(
            project=ranking.project, prompt=ranking.prompt, labeler=user, version=2, num_responses=4, shown_order=[]
        )
