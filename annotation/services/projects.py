"""Writes on projects, guidelines and memberships."""

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from annotation.models import Assignment, Guideline, Membership, Project, Prompt, Ranking
from annotation.services.hygiene import eval_sets_recheck

DEFAULT_GUIDELINES = """# Guidelines

Rank the responses from best (1) to worst. Give two responses the same rank only when you cannot prefer either.
Judge helpfulness first, then truthfulness, then harmlessness.
"""


@transaction.atomic
def project_create(
    *,
    name: str,
    slug: str = "",
    guidelines: str = DEFAULT_GUIDELINES,
    created_by: AbstractUser | None = None,
    **settings,
) -> Project:
    """Create a project with a first guideline version; a non-admin creator becomes its manager."""
    project = Project(name=name, slug=slug or slugify(name)[:100], **settings)
    project.full_clean()
    project.save()
    guideline_publish(project=project, text=guidelines, user=created_by)
    if created_by is not None and not created_by.is_superuser:
        membership_set(project=project, user=created_by, role=Membership.Role.MANAGER)
    return project


PROJECT_EDITABLE = (
    "name", "description", "overlap", "lease_minutes", "allow_ties", "rationale_required", "flag_options",
    "responses_per_task", "gold_rate", "render_markdown", "kind", "response_form", "strength_labels",
    "strength_margins", "revision_policy", "revision_hours", "closed_at", "feedback_every", "overlap_mode",
    "overlap_min", "adaptive_agreement", "qualification_required", "qualification_threshold", "writing_mode",
    "prompt_cap", "pii_policy", "near_dup_threshold", "import_refusals",
)  # fmt: skip
KIND_LOCKED = (
    "The project already has rankings or tasks handed out: its kind ({kind}) cannot change. Create a new project "
    "instead."
)


@transaction.atomic
def project_update(*, project: Project, **fields) -> Project:
    """Change a project's settings (not its slug). A new overlap re-marks which prompts are complete; a new
    near-duplicate threshold matches the evaluation sets again."""
    unknown = set(fields) - set(PROJECT_EDITABLE)
    if unknown:
        raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
    if "kind" in fields and fields["kind"] != project.kind and _has_work(project):
        raise ValidationError({"kind": KIND_LOCKED.format(kind=project.kind)})
    threshold_before = project.near_dup_threshold
    if fields.get("closed_at") and project.closed_at:  # closing a closed project keeps when it was closed
        fields["closed_at"] = project.closed_at
    for name, value in fields.items():
        setattr(project, name, value)
    project.full_clean()
    project.save(update_fields=list(fields) or None)
    if "overlap" in fields and project.overlap_mode == "fixed":
        prompts = Prompt.objects.filter(project=project, is_gold=False)
        prompts.filter(ranking_count__gte=project.overlap).update(is_complete=True)
        prompts.filter(ranking_count__lt=project.overlap).update(is_complete=False)
    elif "overlap" in fields:  # adaptive: a lower maximum completes what reached it; settled prompts stay settled
        Prompt.objects.filter(project=project, is_gold=False, ranking_count__gte=project.overlap).update(
            is_complete=True
        )
    if project.near_dup_threshold != threshold_before:
        eval_sets_recheck(project)  # its evaluation sets' matches were computed at the old threshold
    return project


def _has_work(project: Project) -> bool:
    """Rankings or leases exist: a ranking task's page and a pairwise one show different responses."""
    return Ranking.objects.filter(project=project).exists() or Assignment.objects.filter(project=project).exists()


def project_get_or_create(*, slug: str, created_by: AbstractUser | None = None, name: str = "") -> tuple[Project, bool]:
    project = Project.objects.filter(slug=slug).first()
    if project is not None:
        return project, False
    return project_create(name=name or slug.replace("-", " ").title(), slug=slug, created_by=created_by), True


@transaction.atomic
def guideline_publish(*, project: Project, text: str, user: AbstractUser | None = None) -> Guideline:
    """A new guideline version; earlier versions stay, and rankings keep the version they were made under."""
    Project.objects.select_for_update().filter(pk=project.pk).first()  # serialise version numbers (PostgreSQL)
    latest = project.guidelines.aggregate(v=Max("version"))["v"] or 0
    guideline = Guideline(project=project, version=latest + 1, text=text, created_by=user)
    guideline.full_clean()
    guideline.save()
    return guideline


def membership_set(*, project: Project, user: AbstractUser, role: str, excluded: bool | None = None) -> Membership:
    membership, _ = Membership.objects.get_or_create(project=project, user=user, defaults={"role": role})
    changed = membership.role != role or (excluded is not None and membership.excluded != excluded)
    membership.role = role
    if excluded is not None:
        membership.excluded = excluded
    if changed:
        membership.full_clean()
        membership.save()
    return membership


@transaction.atomic
def membership_remove(*, project: Project, user: AbstractUser) -> None:
    """Remove a member at once: their leases are released (the prompts go to others) and from now on their submits
    and revisions are refused; their past rankings stay (marked as a removed member's in agreement and exports)."""
    Membership.objects.filter(project=project, user=user).delete()
    leases_release(user=user, project=project)


def leases_release(*, user: AbstractUser, project: Project | None = None) -> int:
    """Expire the user's live leases (in one project, or everywhere): the prompts return to the pool at once. The
    assignments stay (expired), so a late submit is refused as a removed member's (403), not as someone else's."""
    now = timezone.now()
    leases = Assignment.objects.filter(labeler=user, status=Assignment.Status.ACTIVE, expires_at__gt=now)
    if project is not None:
        leases = leases.filter(project=project)
    return leases.update(expires_at=now)


@transaction.atomic
def user_deactivated(*, user: AbstractUser) -> None:
    """A deactivated account ends everything at once: its leases in every project are released and its API tokens
    deleted (sign-in and token authentication already refuse an inactive user)."""
    from rest_framework.authtoken.models import Token

    leases_release(user=user)
    Token.objects.filter(user=user).delete()
