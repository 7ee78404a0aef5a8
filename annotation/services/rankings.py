"""Submitting and revising rankings. A ranking is immutable; a correction is a new version and the old one is kept."""

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Min
from django.utils import timezone

from annotation import response_form
from annotation.agreement.adaptive import needs_more_labels
from annotation.hot_sql import (
    insert,
    latest_guideline_version,
    project_with_membership,
    row_by_pk,
    update_by_pk,
    values_by_pk,
)
from annotation.models import (
    STRENGTH_LEVELS,
    Assignment,
    Membership,
    Project,
    Prompt,
    Ranking,
    RankingEntry,
    ResponseRating,
)
from annotation.ranking_rules import ranking_errors
from annotation.revision_rules import RevisionWindow, revision_window
from annotation.selectors import ranks_by_ranking
from annotation.services.assignments import open_slots
from annotation.services.qualification import qualification_after_submit

SUBMIT_NOT_YOURS = "This task is not assigned to you."
SUBMIT_NOT_MEMBER = "You are no longer a member of this project: your rankings there cannot be submitted or revised."


class NotAMember(PermissionDenied):
    """The caller's own task or ranking, in a project they were removed from: a 403 (not the 404 of "not yours")."""


def _ensure_member(project_id: int, labeler: AbstractUser, is_member: bool | None = None) -> None:
    """NotAMember unless the labeler is a member of the project (or an admin); `is_member` when already read."""
    if labeler.is_superuser:
        return
    if is_member is None:
        is_member = Membership.objects.filter(project_id=project_id, user=labeler).exists()
    if not is_member:
        raise NotAMember(SUBMIT_NOT_MEMBER)


SUBMIT_CLOSED = "This project is closed: it takes no new rankings."


class ProjectClosed(PermissionDenied):
    """A submit to a closed project (403)."""


class RevisionClosed(PermissionDenied):
    """A revision the project's revision policy does not allow (403, with the reason)."""


def ranking_first_submitted_at(ranking: Ranking):
    """When this labeler first ranked this prompt (version 1): revision windows count from there."""
    first = Ranking.objects.filter(prompt_id=ranking.prompt_id, labeler_id=ranking.labeler_id).aggregate(
        first=Min("created_at")
    )["first"]
    return first or ranking.created_at


def ranking_revision_window(ranking: Ranking, now=None) -> RevisionWindow:
    """Whether the labeler may revise `ranking` now under its project's policy, with the reason to show."""
    project = ranking.project
    return revision_window(
        policy=project.revision_policy, hours=project.revision_hours, closed_at=project.closed_at,
        first_at=ranking_first_submitted_at(ranking), now=now or timezone.now(),
    )  # fmt: skip


SUBMIT_SKIPPED = "You skipped this prompt; it can no longer be ranked by you."
SUBMIT_ALREADY = "You already submitted a different ranking for this prompt; revise it from 'My rankings' instead."
SUBMIT_LEASE_LOST = (
    "Your lease on this prompt expired and it has since been given to other labelers; your ranking was not stored."
)
SUBMIT_UNKNOWN_FLAG = "Unknown flag {flag!r}; this project's flags are: {known}."
SUBMIT_RATIONALE_REQUIRED = "This project asks for a rationale with every ranking."
SUBMIT_BAD_TIME = "time_spent_s must be a non-negative number of seconds."


def _clean_extras(project: Project, flags: list[str], rationale: str, time_spent_s: float | None) -> list[str]:
    known = project.flag_keys
    errors = [SUBMIT_UNKNOWN_FLAG.format(flag=f, known=", ".join(known) or "none") for f in flags if f not in known]
    if project.rationale_required and not rationale.strip():
        errors.append(SUBMIT_RATIONALE_REQUIRED)
    if time_spent_s is not None and time_spent_s < 0:
        errors.append(SUBMIT_BAD_TIME)
    return errors


STRENGTH_NOT_PAIRWISE = "This project ranks responses: strength is only for pairwise projects."
STRENGTH_REQUIRED = "Choose how much better the chosen response is: strength 1 (strongest) to {levels}."
STRENGTH_FOR_TIE = "A tie has no strength: leave strength empty."
STRENGTH_OUT_OF_RANGE = "strength must be a whole number from 1 (strongest) to {levels}, got {value!r}."


def _strength_errors(project: Project, ranks: dict[int, object], strength: object) -> list[str]:
    if not project.is_pairwise:
        return [] if strength is None else [STRENGTH_NOT_PAIRWISE]
    if isinstance(strength, bool) or (strength is not None and not isinstance(strength, int)):
        shown = f"{strength[:17]}..." if isinstance(strength, str) and len(strength) > 20 else strength
        return [STRENGTH_OUT_OF_RANGE.format(levels=STRENGTH_LEVELS, value=shown)]
    if strength is not None and not 1 <= strength <= STRENGTH_LEVELS:
        return [STRENGTH_OUT_OF_RANGE.format(levels=STRENGTH_LEVELS, value=strength)]
    values = list(ranks.values())
    tie = len(values) == 2 and values[0] == values[1]
    if tie and strength is not None:
        return [STRENGTH_FOR_TIE]
    if not tie and strength is None:
        return [STRENGTH_REQUIRED.format(levels=STRENGTH_LEVELS)]
    return []


def _validate(
    project: Project, shown: list[int], ranks: dict[int, int], flags, rationale, time_spent_s, ratings, strength
) -> dict[int, dict]:
    """Every rule at once; the cleaned per-response form values ({} without a form). Rank and extra problems are
    listed as before; problems with the form or the strength are reported under their field (the API then names
    it: `ratings: Response 7, overall (Overall quality): required.`)."""
    errors = ranking_errors(ranks, shown, allow_ties=project.allow_ties)
    errors += _clean_extras(project, flags, rationale, time_spent_s)
    rating_errors, cleaned = response_form.ratings_errors(project.response_fields, shown, ratings)
    strength_errors = _strength_errors(project, ranks, strength) if not errors else []
    if rating_errors or strength_errors:
        by_field = {"__all__": errors} if errors else {}
        by_field |= {"ratings": rating_errors} if rating_errors else {}
        by_field |= {"strength": strength_errors} if strength_errors else {}
        raise ValidationError(by_field)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _same_judgment(
    ranking: Ranking, ranks: dict[int, int], flags: list[str], rationale: str, ratings: dict[int, dict], strength
) -> bool:
    stored = dict(ranking.entries.values_list("response_id", "rank"))
    same = stored == ranks and sorted(ranking.flags) == sorted(flags) and ranking.rationale == rationale
    stored_ratings = dict(ranking.ratings.values_list("response_id", "values"))
    return same and ranking.strength == strength and stored_ratings == ratings


_LOOK_UP = object()  # `_create`'s guideline version when the caller has not read it (None: the project has none)


def _create(
    *, assignment: Assignment | None, prompt: Prompt, labeler, shown: list[int], ranks: dict[int, int], version: int,
    flags: list[str], rationale: str, time_spent_s: float | None, metadata: dict | None = None,
    ratings: dict[int, dict] | None = None, strength: int | None = None, guideline: int | None | object = _LOOK_UP,
) -> Ranking:  # fmt: skip
    if guideline is _LOOK_UP:  # the version in force (ranking_submit looks it up before taking the write lock)
        guideline = latest_guideline_version(project_id=prompt.project_id)
    # Ranking.objects.create and bulk_create of its entries, without the ORM's insert compiler (hot_sql.py says why)
    ranking = Ranking(
        project_id=prompt.project_id,
        prompt=prompt,
        labeler=labeler,
        assignment=assignment,
        version=version,
        guideline_version=guideline,
        num_responses=len(shown),
        shown_order=shown,
        flags=sorted(set(flags)),
        rationale=rationale,
        time_spent_s=time_spent_s,
        metadata=metadata or {},
        strength=strength,
    )
    insert([ranking])
    n = len(shown)
    insert(
        [
            RankingEntry(ranking=ranking, response_id=rid, rank=ranks[rid], shown_position=pos, num_responses=n)
            for pos, rid in enumerate(shown)
        ]
    )
    if ratings:
        likert = prompt.project.likert_field
        ResponseRating.objects.bulk_create(
            ResponseRating(
                ranking=ranking,
                response_id=rid,
                values=ratings[rid],
                score=ratings[rid].get(likert["key"]) if likert else None,
            )  # fmt: skip
            for rid in shown
        )
    return ranking


def ranking_submit(
    *,
    labeler: AbstractUser,
    assignment_id: int,
    ranks: dict[int, int],
    flags: list[str] | None = None,
    rationale: str = "",
    time_spent_s: float | None = None,
    metadata: dict | None = None,
    ratings: dict[int, dict] | None = None,
    strength: int | None = None,
) -> tuple[Ranking, bool]:
    """Store the labeler's ranking of their assigned prompt; returns (ranking, created).

    With a per-response form, `ratings` ({response_id: {field key: value}}) are checked against it and stored in
    the same transaction (one ResponseRating per shown response); a pairwise project also takes `strength` (1-4,
    None for a tie). Any problem stores nothing.

    Idempotent: submitting the same judgment again (a double click, a retried request) returns the stored ranking
    with created=False. A late submission after the lease expired is accepted only while the prompt still has a
    free slot, so no prompt ever gets more than `overlap` rankings. `metadata` is stored as given (e.g. where a
    ranking came from); labelers never send it.

    The checks that only read (whose task it is, membership, the project being open, the judgment's validity, the
    guideline version) run before the write transaction: on SQLite every write transaction holds the database's one
    write lock, and the time spent inside them is what bounds the labeling throughput (bench/labeling_load.py).
    What another request can change meanwhile (the assignment's status and lease, the prompt's count) is read again
    under the lock in `_submit_locked`.
    """
    flags = list(flags or [])
    # The hot path's reads are hand-written (annotation/hot_sql.py says why).
    assignment = row_by_pk(Assignment, assignment_id)
    if assignment is None or assignment.labeler_id != labeler.pk:
        raise PermissionDenied(SUBMIT_NOT_YOURS)
    project, member = project_with_membership(project_id=assignment.project_id, user_id=labeler.pk)
    _ensure_member(project.pk, labeler, is_member=member)
    if project.closed_at is not None and project.closed_at <= timezone.now():
        raise ProjectClosed(SUBMIT_CLOSED)
    shown = list(assignment.shown_order)  # fixed when the lease was written
    cleaned = _validate(project, shown, ranks, flags, rationale, time_spent_s, ratings, strength)
    guideline = latest_guideline_version(project_id=project.pk)
    return _submit_locked(
        assignment=assignment, project=project, labeler=labeler, shown=shown, ranks=ranks, flags=flags,
        rationale=rationale, time_spent_s=time_spent_s, metadata=metadata, cleaned=cleaned, strength=strength,
        guideline=guideline,
    )  # fmt: skip


@transaction.atomic
def _submit_locked(
    *, assignment: Assignment, project: Project, labeler: AbstractUser, shown: list[int], ranks: dict[int, int],
    flags: list[str], rationale: str, time_spent_s: float | None, metadata: dict | None, cleaned: dict[int, dict],
    strength: int | None, guideline: int | None,
) -> tuple[Ranking, bool]:  # fmt: skip
    """The writing half of `ranking_submit`, with the assignment and the prompt read again under the lock (SQLite:
    the IMMEDIATE transaction's write lock; PostgreSQL: their row locks)."""
    status = values_by_pk(Assignment, assignment.pk, ("status", "expires_at"), lock=True)
    assignment.status, assignment.expires_at = status
    prompt = row_by_pk(Prompt, assignment.prompt_id, lock=True)
    prompt.project = assignment.project = project
    if assignment.status == Assignment.Status.SUBMITTED:
        current = Ranking.objects.get(prompt=prompt, labeler=labeler, is_current=True)
        if _same_judgment(current, ranks, flags, rationale, cleaned, strength):
            return current, False
        raise ValidationError(SUBMIT_ALREADY)
    if assignment.status == Assignment.Status.SKIPPED:
        raise ValidationError(SUBMIT_SKIPPED)
    now = timezone.now()
    lapsed = assignment.expires_at <= now and not prompt.is_gold
    if (
        lapsed
        and open_slots(prompt=prompt, overlap=project.target_for(prompt), now=now, exclude_labeler_id=labeler.pk) <= 0
    ):
        raise ValidationError(SUBMIT_LEASE_LOST)
    # No savepoint: an IntegrityError ends this transaction anyway (the ValidationError rolls it back).
    try:
        ranking = _create(
            assignment=assignment, prompt=prompt, labeler=labeler, shown=shown, ranks=ranks, version=1,
            flags=flags, rationale=rationale, time_spent_s=time_spent_s, metadata=metadata, ratings=cleaned,
            strength=strength, guideline=guideline,
        )  # fmt: skip
    except IntegrityError:  # a ranking by this labeler already exists (e.g. imported): never store two
        raise ValidationError(SUBMIT_ALREADY) from None
    assignment.status, assignment.completed_at = Assignment.Status.SUBMITTED, now
    update_by_pk(Assignment, assignment.pk, {"status": assignment.status, "completed_at": now})  # hot_sql.py: why
    if prompt.is_qualification:
        qualification_after_submit(project=project, labeler=labeler)
    if not prompt.is_gold:  # the prompt row was read under the lock, so its count is current
        count = prompt.ranking_count + 1
        if project.overlap_mode == "adaptive":
            fields = _adaptive_decision(project, prompt, count)
        else:
            fields = {"is_complete": prompt.is_complete or count >= project.overlap}
        update_by_pk(Prompt, prompt.pk, fields, add={"ranking_count": 1})  # ranking_count = ranking_count + 1
    return ranking, True


def _adaptive_decision(project: Project, prompt: Prompt, count: int) -> dict:
    """Adaptive overlap, under the prompt's lock: once it has the rankings it wants, settled prompts are complete and
    the others want one more labeler (never more than `overlap`)."""
    target = project.target_for(prompt)
    if prompt.is_complete or count < target:
        return {}
    if count >= project.overlap:
        return {"is_complete": True, "wanted": count}
    current = Ranking.objects.filter(prompt=prompt, is_current=True).values_list("id", flat=True)
    rankings = list(ranks_by_ranking(current).values())
    more, _ = needs_more_labels(rankings, min_agreement=project.adaptive_agreement)
    return {"wanted": count + 1, "is_complete": False} if more else {"is_complete": True, "wanted": count}


@transaction.atomic
def ranking_revise(
    *,
    labeler: AbstractUser,
    ranking_id: int,
    ranks: dict[int, int],
    flags: list[str] | None = None,
    rationale: str = "",
    time_spent_s: float | None = None,
    ratings: dict[int, dict] | None = None,
    strength: int | None = None,
) -> Ranking:
    """A corrected ranking by its own labeler: a new version becomes current, the old one is kept (with its
    ratings). The new version carries the whole judgment again: ranks, and the form and strength where the project
    has them."""
    flags = list(flags or [])
    old = Ranking.objects.select_for_update().select_related("prompt__project").filter(pk=ranking_id).first()
    if old is None or old.labeler_id != labeler.pk:
        raise PermissionDenied("This ranking is not yours.")
    _ensure_member(old.project_id, labeler)
    if not old.is_current:
        raise ValidationError("Only the current version of a ranking can be revised.")
    window = ranking_revision_window(old)
    if not window.allowed:
        raise RevisionClosed(window.reason)
    shown = list(old.shown_order)
    cleaned = _validate(old.prompt.project, shown, ranks, flags, rationale, time_spent_s, ratings, strength)
    Ranking.objects.filter(pk=old.pk).update(is_current=False)
    return _create(
        assignment=old.assignment, prompt=old.prompt, labeler=labeler, shown=shown, ranks=ranks,
        version=old.version + 1, flags=flags, rationale=rationale, time_spent_s=time_spent_s, ratings=cleaned,
        strength=strength,
    )  # fmt: skip
