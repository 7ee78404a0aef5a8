"""Reads: who may see which project, a labeler's task and progress, a project's progress."""

from django.contrib.auth.models import AbstractUser
from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.http import Http404
from django.utils import timezone

from annotation.hot_sql import labeler_counts, project_with_role
from annotation.models import Assignment, Membership, Project, Prompt, Ranking, RankingEntry


def is_admin(user: AbstractUser) -> bool:
    return bool(user.is_authenticated and user.is_superuser)


def projects_for_user(*, user: AbstractUser) -> QuerySet[Project]:
    """Admins see every project; everyone else only the projects they are a member of."""
    if is_admin(user):
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()


def projects_with_role_for_user(*, user: AbstractUser) -> QuerySet[Project]:
    """projects_for_user, each annotated with `my_role` ('admin', 'manager' or 'labeler') in the same query."""
    if is_admin(user):
        return projects_for_user(user=user).annotate(my_role=Value("admin"))
    role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    return projects_for_user(user=user).annotate(my_role=Subquery(role))


def role_in_project(*, user: AbstractUser, project: Project) -> str | None:
    """'admin', 'manager', 'labeler', or None for someone outside the project."""
    if is_admin(user):
        return "admin"
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def membership_role_get(*, project: Project, user: AbstractUser) -> str | None:
    """The user's membership role in the project ('manager' or 'labeler'), None if not a member (admins too)."""
    return Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def memberships_for_project(*, project: Project) -> QuerySet[Membership]:
    return project.memberships.select_related("user").order_by("user__username")


def project_get_for_user(*, user: AbstractUser, slug: str, manage: bool = False) -> Project:
    """The project if the user may see it (manage=True: may manage it); otherwise 404, so outsiders learn nothing."""
    if is_admin(user):
        project, role = Project.objects.filter(slug=slug).first(), "admin"
    else:  # one plain join: the caller's membership in the project, with the project (None for outsiders)
        # read on every labeling request: one raw join (annotation/hot_sql.py says why)
        project, role = project_with_role(slug=slug, user_id=user.pk) if user.is_authenticated else (None, None)
    if project is None or role is None or (manage and role not in ("admin", "manager")):
        raise Http404("No such project.")
    return project


def was_member(*, user: AbstractUser, slug: str) -> bool:
    """Whether the user once worked in this project (a lease or a ranking there) though not a member now: they learn
    that they were removed (403) instead of a 404, and nothing about any other project."""
    if not user.is_authenticated or Membership.objects.filter(user=user, project__slug=slug).exists():
        return False
    return (
        Assignment.objects.filter(labeler=user, project__slug=slug).exists()
        or Ranking.objects.filter(labeler=user, project__slug=slug).exists()
    )


def assignment_get_for_labeler(*, labeler: AbstractUser, assignment_id: int) -> Assignment:
    assignment = (
        Assignment.objects.select_related("prompt", "project").filter(pk=assignment_id, labeler=labeler).first()
    )
    if assignment is None:
        raise Http404("No such task.")
    return assignment


def task_responses(*, assignment: Assignment) -> list:
    """The assignment's responses in the order this labeler sees them (model names stay server-side)."""
    # A lease just written carries the responses it read (see services.assignments._lease): no second query.
    responses = getattr(assignment, "fetched_responses", None) or assignment.prompt.responses.all()
    by_id = {r.id: r for r in responses}
    return [by_id[rid] for rid in assignment.shown_order if rid in by_id]


def rankings_for_labeler(*, labeler: AbstractUser, project: Project | None = None) -> QuerySet[Ranking]:
    rankings = Ranking.objects.filter(labeler=labeler, is_current=True).select_related("prompt", "project")
    if project is not None:
        rankings = rankings.filter(project=project)
    return rankings.prefetch_related("entries", "ratings").order_by("-created_at")


PROJECT_TOTALS_SECONDS = 2  # how stale the project-wide part of a labeler's progress bar may be


def _project_totals(project: Project) -> dict:
    """Prompts and rankings of the project (non-gold). Every "next" shows them, and counting them walks all the
    project's prompts, so each process keeps them for a couple of seconds (a labeler's own counts stay exact)."""
    key = f"annotation:project-totals:{project.pk}:{project.overlap}"
    totals = cache.get(key)
    if totals is None:
        # Prompt.ranking_count holds each prompt's current rankings (kept by the services): no ranking is counted.
        totals = Prompt.objects.filter(project=project, is_gold=False).aggregate(
            n=Count("id"), done=Sum("ranking_count")
        )
        # Gold rankings count too: otherwise the project's total stands still when a labeler submits a gold prompt
        # while their own count moves, and gold prompts could be told apart (they are not in ranking_count).
        gold = Ranking.objects.filter(project=project, is_current=True, prompt__is_gold=True).count()
        totals["done"] = (totals["done"] or 0) + gold
        cache.set(key, totals, PROJECT_TOTALS_SECONDS)
    return totals


def labeler_progress_get(*, project: Project, labeler: AbstractUser) -> dict:
    """What the progress indicator shows a labeler: done by me, in my hands, and the project's target."""
    # every "next" asks: one hand-written read (annotation/hot_sql.py says why)
    done, assigned = labeler_counts(project_id=project.pk, labeler_id=labeler.pk, now=timezone.now())
    totals = _project_totals(project)
    return {
        "done": done,
        "assigned": assigned,
        "project_rankings": totals["done"] or 0,
        "project_target": totals["n"] * project.overlap,
    }


def eval_held_back() -> Exists:
    """True for a prompt the labeling queue skips because it, or an earlier round's prompt with the same content,
    matched an evaluation set (the same rule as `services.assignments._candidates`)."""
    same = Prompt.all_objects.filter(project=OuterRef("project"), content_hash=OuterRef("content_hash"))
    return Exists(same.filter(eval_matched=True))


def project_progress_get(*, project: Project) -> dict:
    """Prompts done / in progress / untouched, rankings against the target, and rankings per labeler."""
    now = timezone.now()
    live = Assignment.objects.filter(prompt=OuterRef("pk"), status="active", expires_at__gt=now)
    prompts = Prompt.objects.filter(project=project, is_gold=False).annotate(leased=Exists(live), held=eval_held_back())
    open_ = Q(is_complete=False, held=False)
    counts = prompts.aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(is_complete=True)),
        in_progress=Count("id", filter=open_ & (Q(ranking_count__gt=0) | Q(leased=True))),
        held_back=Count("id", filter=Q(is_complete=False, held=True)),
    )
    rankings = Ranking.objects.filter(project=project, is_current=True)
    per_labeler = list(
        rankings.values("labeler__username").annotate(rankings=Count("id")).order_by("-rankings", "labeler__username")
    )
    return {
        "prompts": counts["total"],
        "done": counts["done"],
        "in_progress": counts["in_progress"],
        "held_back": counts["held_back"],  # unfinished, matched an evaluation set: the queue skips them
        "untouched": counts["total"] - counts["done"] - counts["in_progress"] - counts["held_back"],
        "rankings": rankings.filter(prompt__is_gold=False).count(),
        "target_rankings": counts["total"] * project.overlap,
        "gold_prompts": Prompt.objects.filter(project=project, is_gold=True).count(),
        "active_leases": Assignment.objects.filter(project=project, status="active", expires_at__gt=now).count(),
        "per_labeler": [{"labeler": row["labeler__username"], "rankings": row["rankings"]} for row in per_labeler],
    }


def ranks_by_ranking(ranking_ids) -> dict[int, dict[int, int]]:
    """{ranking id: {response id: rank}} for these rankings, in one query."""
    ranks: dict[int, dict[int, int]] = {}
    entries = RankingEntry.objects.filter(ranking_id__in=ranking_ids)
    for ranking_id, response_id, rank in entries.values_list("ranking_id", "response_id", "rank"):
        ranks.setdefault(ranking_id, {})[response_id] = rank
    return ranks
