"""Handing out work: each prompt to `overlap` distinct labelers, with leases that expire back into the pool.

Concurrency: on SQLite every atomic block takes the write lock first (settings: transaction_mode IMMEDIATE), so
check-then-write is serialised. On PostgreSQL the prompt row is locked (SELECT ... FOR UPDATE) and its open slots
are counted again under the lock before a lease is written; a candidate another labeler's transaction holds is
skipped (SKIP LOCKED) instead of waited for, so concurrent labelers spread over the head of the queue instead of
queueing on its first prompt (see `_take_open`).
"""

import random
from datetime import timedelta

from django.contrib.auth.models import AbstractUser
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from annotation.hot_sql import active_assignment_id, insert, responses_of, row_by_pk
from annotation.models import MAX_LEASE_MINUTES, Assignment, Project, Prompt, Response
from annotation.services.qualification import is_qualified, qualification_prompts

CANDIDATES_PER_TRY = 8
MAX_TRIES = 5


def shown_order_for(
    prompt: Prompt, labeler: AbstractUser, limit: int | None, ids: list[int] | None = None, *, pairwise: bool = False
) -> list[int]:
    """Response ids in a random order, seeded per labeler and prompt (reproducible, different for each labeler).

    Pairwise: two responses, the same two for every labeler of the prompt (seeded per prompt, so their judgments
    can be compared), in an order seeded per labeler (so A is not always the same response)."""
    ids = sorted(prompt.responses.values_list("id", flat=True) if ids is None else ids)
    if pairwise and len(ids) > 2:
        ids = sorted(random.Random(f"pair:{prompt.pk}").sample(ids, 2))
    rng = random.Random(f"{prompt.pk}:{labeler.pk}")
    rng.shuffle(ids)
    return ids[:limit] if limit and not pairwise else ids


def active_leases(*, prompt_id: int, now, exclude_labeler_id: int | None = None) -> int:
    leases = Assignment.objects.filter(prompt_id=prompt_id, status=Assignment.Status.ACTIVE, expires_at__gt=now)
    if exclude_labeler_id is not None:
        leases = leases.exclude(labeler_id=exclude_labeler_id)
    return leases.count()


def open_slots(*, prompt: Prompt, overlap: int, now, exclude_labeler_id: int | None = None) -> int:
    """How many more labelers may take this prompt now: overlap minus rankings minus live leases."""
    leases = active_leases(prompt_id=prompt.pk, now=now, exclude_labeler_id=exclude_labeler_id)
    return overlap - prompt.ranking_count - leases


def _candidates(project: Project, labeler: AbstractUser, now, gold: bool, limit: int = CANDIDATES_PER_TRY) -> list[int]:
    """Prompt ids this labeler may take, in id order so prompts fill up to their overlap one after another."""
    if gold:
        mine = Assignment.objects.filter(prompt=OuterRef("pk"), labeler=labeler)
        prompts = Prompt.objects.filter(project=project, is_gold=True, is_qualification=False).exclude(Exists(mine))
        return list(prompts.order_by("?").values_list("id", flat=True)[:limit])
    # Written as SQL because it runs on every "next" and compiling the equivalent ORM query (two correlated
    # subqueries) cost more than running it. Portable SQL; the queue index (project, is_complete, is_gold, id) lets
    # the database walk prompts in id order and stop after `limit` rows.
    prompt, assignment, response = Prompt._meta.db_table, Assignment._meta.db_table, Response._meta.db_table
    # Adaptive overlap: each prompt's own target (raised while its labelers disagree), capped by `overlap`.
    if project.overlap_mode == "adaptive":
        target, target_params = "MIN(COALESCE(p.wanted, %s), %s)", [project.base_target, project.overlap]
        if connection.vendor == "postgresql":
            target = "LEAST(COALESCE(p.wanted, %s), %s)"
    else:
        target, target_params = "%s", [project.overlap]
    # Only the models' own table names are interpolated; every value is a parameter.
    sql = (
        f"SELECT p.id FROM {prompt} p WHERE p.project_id = %s AND p.is_complete = %s AND p.is_gold = %s"  # noqa: S608
        f" AND p.staged = %s"  # an import still being written is nobody's work yet (see Prompt.staged)
        # a prompt that matched an evaluation set is not trained on, so not labeled; nor is a later round's copy of
        # it (the same content hash; the (project, content_hash, round) unique index answers this)
        f" AND NOT EXISTS (SELECT 1 FROM {prompt} h WHERE h.project_id = p.project_id"
        f" AND h.content_hash = p.content_hash AND h.eval_matched = %s)"
        # a written prompt has nothing to rank until a policy generates its responses (services/hygiene.py)
        f" AND EXISTS (SELECT 1 FROM {response} r WHERE r.prompt_id = p.id)"
        f" AND NOT EXISTS (SELECT 1 FROM {assignment} a WHERE a.prompt_id = p.id AND a.labeler_id = %s)"
        f" AND p.ranking_count + (SELECT COUNT(*) FROM {assignment} l WHERE l.prompt_id = p.id AND l.status = %s"
        f" AND l.expires_at > %s) < {target} ORDER BY p.id LIMIT %s"
    )
    params = [project.pk, False, False, False, True, labeler.pk, Assignment.Status.ACTIVE]
    params += [connection.ops.adapt_datetimefield_value(now), *target_params, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _lease(project: Project, labeler: AbstractUser, prompt: Prompt, now) -> Assignment:
    responses = responses_of(prompt_id=prompt.pk)  # hand-written reads on the hot path: annotation/hot_sql.py
    assignment = Assignment(
        project=project,
        prompt=prompt,
        labeler=labeler,
        shown_order=shown_order_for(
            prompt, labeler, project.responses_per_task, [r.id for r in responses], pairwise=project.is_pairwise
        ),
        expires_at=now + timedelta(minutes=min(project.lease_minutes, MAX_LEASE_MINUTES)),
    )
    insert([assignment])  # Assignment.objects.create, without the ORM's insert compiler (hot_sql.py says why)
    assignment.fetched_responses = responses  # the page or API shows them next: spare it a second query
    return assignment


def _resume(project: Project, labeler: AbstractUser, now) -> Assignment | None:
    """The labeler's own unfinished assignment: returned as is while its lease runs, renewed if the slot is free."""
    # usually there is none: ask for the id alone first (no join, no model to build while the write lock is held)
    assignment_id = active_assignment_id(project_id=project.pk, labeler_id=labeler.pk)
    if assignment_id is None:
        return None
    assignment = Assignment.objects.select_related("prompt").get(pk=assignment_id)
    if assignment.expires_at > now:
        return assignment
    prompt = Prompt.objects.select_for_update().get(pk=assignment.prompt_id)
    if (
        prompt.is_gold
        or open_slots(prompt=prompt, overlap=project.target_for(prompt), now=now, exclude_labeler_id=labeler.pk) > 0
    ):
        assignment.expires_at = now + timedelta(minutes=min(project.lease_minutes, MAX_LEASE_MINUTES))
        assignment.save(update_fields=["expires_at"])
        return assignment
    return None


def _take_qualification(project: Project, labeler: AbstractUser, now) -> Assignment | None:
    """The labeler's next qualification prompt (in order), or None when they ranked them all (then they wait for
    the result or a manager's decision)."""
    mine = Assignment.objects.filter(prompt=OuterRef("pk"), labeler=labeler)
    prompt = qualification_prompts(project).exclude(Exists(mine)).first()
    return _lease(project, labeler, prompt, now) if prompt is not None else None


def _take_gold(project: Project, labeler: AbstractUser, now) -> Assignment | None:
    if project.gold_rate <= 0 or random.random() >= project.gold_rate:
        return None
    prompt_ids = _candidates(project, labeler, now, gold=True, limit=1)
    if not prompt_ids:
        return None
    return _lease(project, labeler, Prompt.objects.get(pk=prompt_ids[0]), now)


def _still_open(prompt: Prompt, project: Project, now) -> bool:
    # SQLite has no row locks: the IMMEDIATE transaction already holds the write lock, so the candidate query's
    # count cannot have changed since and counting again would only cost a query (see bench/labeling_load.py).
    if not connection.features.has_select_for_update:
        return True
    return open_slots(prompt=prompt, overlap=project.target_for(prompt), now=now) > 0


def _try_lease(
    prompt_id: int, project: Project, labeler: AbstractUser, now, *, skip_locked: bool
) -> tuple[Assignment | None, bool]:
    """(a lease of the prompt if this labeler may still take it, else None; whether its row was skipped because
    another transaction holds it). The row lock is taken in a savepoint and released at once (rolled back) unless
    the prompt is leased, so the caller never keeps a lock on a prompt it did not take."""
    savepoint = transaction.savepoint()
    prompt = Prompt.objects.select_for_update(skip_locked=skip_locked).filter(pk=prompt_id).first()
    if prompt is not None and _may_take(prompt, project, labeler, now):
        transaction.savepoint_commit(savepoint)
        return _lease(project, labeler, prompt, now), False
    transaction.savepoint_rollback(savepoint)
    return None, prompt is None


def _may_take(prompt: Prompt, project: Project, labeler: AbstractUser, now) -> bool:
    """Under the prompt's lock: it has an open slot and is not already this labeler's (a concurrent request of the
    same labeler, e.g. a double click, may have leased it since the candidate query)."""
    if open_slots(prompt=prompt, overlap=project.target_for(prompt), now=now) <= 0:
        return False
    return not Assignment.objects.filter(prompt_id=prompt.pk, labeler=labeler).exists()


def _take_open(project: Project, labeler: AbstractUser, now) -> Assignment | None:
    """The candidate loop with row locks that skip (PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED).

    Why skipping keeps the overlap guarantee: a lease is only ever written for a prompt whose row lock this
    transaction holds, after its open slots were counted again under that lock (`_try_lease`). Every other writer of
    a prompt's slots takes the same lock first (this function, `_resume`, `ranking_submit`, which turns a lease into
    a ranking or refuses a late one, and the gold services), and holds it until commit; in READ COMMITTED each count
    is a new statement that sees everything committed before the lock was granted. So no two transactions can both
    take a prompt's last slot. SKIP LOCKED only changes what happens while another transaction holds the row: this
    one leaves that prompt alone instead of waiting, i.e. writes nothing for it, and writing nothing can never push
    a prompt past `overlap`. No duplicate either: whether this labeler already has the prompt is checked under the
    same lock, and the (prompt, labeler) unique constraint stays as the last guard.

    What skipping could cost is a false "nothing left": a prompt whose holder is leasing one of several free slots
    still has room once it commits. So each candidate query asks for CANDIDATES_PER_TRY more than the prompts
    skipped so far, and when no candidate could be taken, the skipped ones are tried again, this time waiting for
    the lock as before. That wait cannot close a cycle through the candidates: `_try_lease` keeps no lock on a
    candidate it did not lease, so this transaction holds none of them while it waits."""
    tried: set[int] = set()
    skipped: list[int] = []
    for _ in range(MAX_TRIES):
        candidate_ids = _candidates(project, labeler, now, gold=False, limit=CANDIDATES_PER_TRY + len(skipped))
        fresh = [prompt_id for prompt_id in candidate_ids if prompt_id not in tried]
        if not fresh:
            break
        for prompt_id in fresh:
            tried.add(prompt_id)
            assignment, was_locked = _try_lease(prompt_id, project, labeler, now, skip_locked=True)
            if assignment is not None:
                return assignment
            if was_locked:
                skipped.append(prompt_id)
    for prompt_id in skipped:
        assignment, _ = _try_lease(prompt_id, project, labeler, now, skip_locked=False)
        if assignment is not None:
            return assignment
    return None


@transaction.atomic
def assignment_next(*, project: Project, labeler: AbstractUser) -> Assignment | None:
    """The labeler's next task in this project (their unfinished one first), or None when nothing is left for them."""
    now = timezone.now()
    if project.closed_at is not None and project.closed_at <= now:
        return None  # a closed project hands out nothing (the pages say it is closed)
    resumed = _resume(project, labeler, now)
    if resumed is not None:
        return resumed
    if not is_qualified(project=project, labeler=labeler):
        return _take_qualification(project, labeler, now)
    gold = _take_gold(project, labeler, now)
    if gold is not None:
        return gold
    if connection.vendor == "postgresql":  # _take_open's reasoning is about PostgreSQL's READ COMMITTED
        return _take_open(project, labeler, now)
    for _ in range(MAX_TRIES):
        candidate_ids = _candidates(project, labeler, now, gold=False)
        if not candidate_ids:
            return None
        for prompt_id in candidate_ids:
            prompt = row_by_pk(Prompt, prompt_id, lock=True)  # then count again under the lock
            if prompt is not None and _still_open(prompt, project, now):
                return _lease(project, labeler, prompt, now)
    return None


@transaction.atomic
def assignment_skip(*, assignment: Assignment) -> Assignment:
    """The labeler passes on this prompt: it returns to the pool for others and is not offered to them again."""
    assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if assignment.status == Assignment.Status.ACTIVE:
        assignment.status = Assignment.Status.SKIPPED
        assignment.completed_at = timezone.now()
        assignment.save(update_fields=["status", "completed_at"])
    return assignment
