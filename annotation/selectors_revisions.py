"""Reads for reviewing rankings: a labeler's own rankings with filters, one ranking as it was shown, and the
version history of a labeler's judgment of a prompt (for the labeler and the project's managers)."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractUser
from django.db.models import QuerySet
from django.http import Http404

from annotation.feedback import LETTERS
from annotation.models import Project, Ranking
from annotation.revision_rules import version_changes
from annotation.selectors import rankings_for_labeler, role_in_project

MANAGING = ("admin", "manager")


def my_rankings_filtered(
    *,
    labeler: AbstractUser,
    project: Project,
    query: str = "",
    flag: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet[Ranking]:
    """The labeler's current rankings in the project, newest first: prompt text containing `query`, carrying
    `flag`, submitted between the dates (inclusive, in the server's time zone)."""
    rankings = rankings_for_labeler(labeler=labeler, project=project)
    if query:
        rankings = rankings.filter(prompt__text__icontains=query)
    if flag:
        # JSON list membership, portable across SQLite and PostgreSQL: filter in Python on the (bounded) ids.
        ids = [pk for pk, flags in rankings.values_list("pk", "flags") if isinstance(flags, list) and flag in flags]
        rankings = rankings.filter(pk__in=ids)
    if date_from:
        rankings = rankings.filter(created_at__date__gte=date_from)
    if date_to:
        rankings = rankings.filter(created_at__date__lte=date_to)
    return rankings


def ranking_get_for_viewer(*, user: AbstractUser, project: Project, ranking_id: int, manage: bool = False) -> Ranking:
    """A ranking of the project that the user may see: their own, or any when they manage the project (manage=True
    requires that). Anything else is a 404, so labelers learn nothing about others' rankings."""
    ranking = (
        Ranking.objects.select_related("prompt", "project", "labeler")
        .prefetch_related("entries__response")
        .filter(pk=ranking_id, project=project)
        .first()
    )
    if ranking is None:
        raise Http404("No such ranking.")
    managing = role_in_project(user=user, project=project) in MANAGING
    if (manage and not managing) or (ranking.labeler_id != user.pk and not managing):
        raise Http404("No such ranking.")
    return ranking


def ranking_cards(ranking: Ranking) -> list[dict]:
    """The responses in the order the labeler saw them, with the letter and the rank they gave."""
    entries = sorted(ranking.entries.all(), key=lambda e: e.shown_position)
    return [
        {"letter": LETTERS[e.shown_position], "response": e.response, "rank": e.rank, "position": e.shown_position}
        for e in entries
    ]


def ranking_history(ranking: Ranking) -> list[dict]:
    """Every version of this labeler's judgment of this prompt, oldest first, with what changed at each step."""
    versions = list(
        Ranking.objects.filter(prompt_id=ranking.prompt_id, labeler_id=ranking.labeler_id)
        .prefetch_related("entries", "ratings")
        .order_by("version", "created_at")
    )
    letters = {rid: LETTERS[pos] for pos, rid in enumerate(ranking.shown_order) if pos < len(LETTERS)}
    history, previous = [], None
    for version in versions:
        state = {
            "ranks": {e.response_id: e.rank for e in version.entries.all()},
            "flags": list(version.flags or []),
            "rationale": version.rationale,
            "strength": version.strength,
            "ratings": {rating.response_id: rating.values for rating in version.ratings.all()},
        }
        history.append(
            {
                "id": version.pk,
                "version": version.version,
                "is_current": version.is_current,
                "created_at": version.created_at,
                "by": ranking.labeler.get_username(),
                "order": " > ".join(
                    " = ".join(sorted(letters.get(rid, "?") for rid, r in state["ranks"].items() if r == rank))
                    for rank in sorted(set(state["ranks"].values()))
                ),
                "flags": state["flags"],
                "rationale": version.rationale,
                "changes": version_changes(previous, state, letters=letters),
            }
        )
        previous = state
    return history
