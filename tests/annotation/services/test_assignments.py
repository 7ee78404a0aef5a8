import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from annotation.models import Assignment, Prompt
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


# --- PostgreSQL: FOR UPDATE SKIP LOCKED (run with DATABASE_URL=postgres://...; SQLite has no row locks) --------------


# `make test` deselects these in the SQLite run and runs this file again on a throwaway PostgreSQL server
# (scripts/pg_tests.sh); the skip only guards a hand-run `pytest -m postgresql` without DATABASE_URL.
def postgresql_only(test):
    skip = pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL only")
    return pytest.mark.postgresql(skip(test))


class RowHolder(threading.Thread):
    """Another labeler's request in flight: holds the prompt's row lock in its own transaction until `release`."""

    def __init__(self, prompt_id: int):
        super().__init__(daemon=True)
        self.prompt_id, self.locked, self.release = prompt_id, threading.Event(), threading.Event()

    def run(self):
        try:
            with transaction.atomic():
                Prompt.objects.select_for_update().get(pk=self.prompt_id)
                self.locked.set()
                self.release.wait(10)
        finally:
            connection.close()

    def __enter__(self):
        self.start()
        assert self.locked.wait(10)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.join(10)


def _next_within(seconds: int, **kwargs):
    """assignment_next that fails (lock timeout) instead of waiting longer than `seconds` for a row lock."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = '{seconds}s'")
    try:
        return assignment_next(**kwargs)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")


@postgresql_only
def test_postgresql_next_skips_the_prompt_another_transaction_holds(transactional_db):
    project = ProjectFactory(overlap=1)
    head, second = PromptFactory(project=project), PromptFactory(project=project)

    with RowHolder(head.pk):
        assignment = _next_within(2, project=project, labeler=labeler(project))

    assert assignment.prompt_id == second.pk  # not queued behind the head of the queue
    assert list(Assignment.objects.values_list("prompt_id", flat=True)) == [second.pk]


@postgresql_only
def test_postgresql_next_waits_for_a_held_prompt_when_it_is_the_only_one_left(transactional_db):
    project = ProjectFactory(overlap=2)
    only = PromptFactory(project=project)
    holder = RowHolder(only.pk)

    with holder:
        threading.Timer(0.3, holder.release.set).start()  # the holder commits while this request waits
        assignment = _next_within(5, project=project, labeler=labeler(project))

    assert assignment is not None and assignment.prompt_id == only.pk  # skipped at first, never "nothing left"


@postgresql_only
def test_postgresql_concurrent_labelers_fill_every_slot_and_never_exceed_the_overlap(transactional_db):
    project = ProjectFactory(overlap=2)
    prompts = PromptFactory.create_batch(3, project=project)
    users = [labeler(project) for _ in range(10)]
    start, results, errors = threading.Barrier(len(users)), [], []

    def request_next(user):
        try:
            start.wait(10)
            results.append(assignment_next(project=project, labeler=user))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request_next, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == [] and len(results) == 10
    taken = sorted(a.prompt_id for a in results if a is not None)
    assert taken == sorted([p.pk for p in prompts] * 2)  # 6 slots, each taken once: none skipped, none doubled
    assert sorted(Assignment.objects.values_list("prompt_id", flat=True)) == taken
