"""Browser pages: project list and dashboard, guidelines, the labeling page, and a labeler's own rankings.

Views stay thin: look the project up through a selector (outsiders get 404), call one service, render.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.forms import GuidelinePublishForm, RankingSubmitForm
from annotation.models import Assignment, Project
from annotation.selectors import (
    assignment_get_for_labeler,
    labeler_progress_get,
    project_get_for_user,
    project_progress_get,
    projects_with_role_for_user,
    role_in_project,
    task_responses,
    was_member,
)
from annotation.services.assignments import assignment_next, assignment_skip
from annotation.services.projects import guideline_publish
from annotation.services.qualification import is_qualified
from annotation.services.rankings import ranking_submit
from annotation.templatetags.annotation_tags import letter

MANAGING_ROLES = ("admin", "manager")
NO_LONGER_MEMBER = (
    "You are no longer a member of this project, so you cannot label it or see its pages. Your past rankings are "
    "kept. Ask the project's manager if you think this is a mistake."
)
RANKING_SAVED = "Ranking saved. Here is your next prompt."
TASK_SKIPPED = "Prompt skipped."


def project_for_page(request: HttpRequest, slug: str, manage: bool = False) -> Project:
    """The project through its selector (404 for outsiders); a removed member gets a 403 page that says so."""
    try:
        return project_get_for_user(user=request.user, slug=slug, manage=manage)
    except Http404:
        if not manage and was_member(user=request.user, slug=slug):
            raise PermissionDenied(NO_LONGER_MEMBER) from None
        raise


def _admin_url(name: str, *args, query: str = "") -> str | None:
    """A Django admin page's URL, or None while that model is not registered in the admin."""
    try:
        return reverse(f"admin:{name}", args=args) + query
    except NoReverseMatch:
        return None


def _progress_ratio(done: int, target: int) -> int:
    return min(100, round(100 * done / target)) if target else 0


@login_required
@require_GET
def project_list(request: HttpRequest) -> HttpResponse:
    rows = []
    for project in projects_with_role_for_user(user=request.user):
        progress = labeler_progress_get(project=project, labeler=request.user)
        rows.append({"project": project, "role": project.my_role, "progress": progress})
    return render(request, "annotation/project_list.html", {"rows": rows})


@login_required
@require_GET
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_page(request, slug)
    role = role_in_project(user=request.user, project=project)
    context = {
        "project": project,
        "role": role,
        "guideline": project.guidelines.order_by("-version").first(),
        "my_progress": labeler_progress_get(project=project, labeler=request.user),
    }
    if role in MANAGING_ROLES:
        progress = project_progress_get(project=project)
        progress["percent"] = _progress_ratio(progress["rankings"], progress["target_rankings"])
        context["progress"] = progress
        query = f"?project__id__exact={project.pk}"
        context["admin_links"] = {
            "settings": _admin_url("annotation_project_change", project.pk),
            "prompts": _admin_url("annotation_prompt_changelist", query=query),
            "members": _admin_url("annotation_membership_changelist", query=query),
            "rankings": _admin_url("annotation_ranking_changelist", query=query),
        }
    return render(request, "annotation/project_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def guidelines(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_page(request, slug, manage=request.method == "POST")
    can_manage = role_in_project(user=request.user, project=project) in MANAGING_ROLES
    data = request.POST if request.method == "POST" else None
    form = GuidelinePublishForm(data) if can_manage else None
    if request.method == "POST" and form.is_valid():
        guideline = guideline_publish(project=project, text=form.cleaned_data["text"], user=request.user)
        messages.success(request, f"Guidelines version {guideline.version} published.")
        return redirect("annotation:guidelines", slug=project.slug)
    versions = list(project.guidelines.order_by("-version"))
    if form is not None and not form.is_bound and versions:
        form.initial["text"] = versions[0].text
    context = {"project": project, "current": versions[0] if versions else None, "previous": versions[1:]}
    context["form"] = form
    status = 400 if request.method == "POST" else 200
    return render(request, "annotation/guidelines.html", context, status=status)


def _card_fields(fields: list[dict], response_id: int, posted: dict) -> list[dict]:
    """The per-response form's fields for one card, each with its input name and the value to show again."""
    out = []
    for field in fields:
        value = posted.get(field["key"])
        item = {**field, "name": f"rating_{response_id}_{field['key']}", "value": "" if value is None else value}
        if field["type"] == "likert":
            anchors = field["anchors"]
            item["points"] = [
                {"value": v, "anchor": anchors.get(str(v), ""), "checked": value == v}
                for v in range(field["min"], field["max"] + 1)
            ]
        guideline = field.get("guideline", "")
        item["guideline_anchor"] = guideline[1:] if guideline.startswith("#") else ""
        out.append(item)
    return out


def _pair_choice(ranks: dict, responses: list) -> str:
    """The choice ("A", "B", "tie"; "" for none) a pairwise page's posted ranks make, to show it again."""
    if len(responses) != 2 or any(not isinstance(ranks.get(r.id), int) for r in responses):
        return ""
    a, b = ranks[responses[0].id], ranks[responses[1].id]
    return "tie" if a == b else ("A" if a < b else "B")


def _task_page(request, project: Project, assignment: Assignment, *, form=None, errors=(), status=200):
    """The labeling page for one assignment; after a rejected POST it keeps what the labeler entered."""
    posted = form.cleaned_data if form is not None and hasattr(form, "cleaned_data") else {}
    responses = task_responses(assignment=assignment)
    initial_ranks = posted.get("ranks", {})
    ratings = posted.get("ratings", {})
    fields = project.response_fields
    cards = [
        {
            "response": response,
            "position": position,
            "rank": initial_ranks.get(response.id, ""),
            "fields": _card_fields(fields, response.id, ratings.get(response.id, {})),
        }
        for position, response in enumerate(responses)
    ]
    context = {
        "project": project,
        "assignment": assignment,
        "prompt": assignment.prompt,
        "cards": cards,
        "rank_numbers": range(1, len(cards) + 1),
        # The raw texts by letter, for the compare view's word-level differences (json_script: never as HTML).
        "compare_texts": {letter(card["position"]): card["response"].text for card in cards},
        "guideline": project.guidelines.order_by("-version").first(),
        "progress": _labeler_progress(project, request.user),
        "errors": list(errors),
        "flags_checked": set(posted.get("flags", [])),
        "rationale": posted.get("rationale", ""),
        "time_spent_s": posted.get("time_spent_s") or 0,
        "pairwise": project.is_pairwise,
        "pair_choice": _pair_choice(initial_ranks, responses) if project.is_pairwise else "",
        "strength": posted.get("strength"),
        "strength_choices": project.strength_choices,
        "form_fields": fields,
        "likert": project.likert_field,
        "label_fields": [field for field in fields if field["type"] == "label"],
        "has_text_field": any(field["type"] == "text" for field in fields),
    }
    return render(request, "annotation/label.html", context, status=status)


def _labeler_progress(project: Project, user) -> dict:
    progress = labeler_progress_get(project=project, labeler=user)
    progress["percent"] = _progress_ratio(progress["project_rankings"], progress["project_target"])
    every = project.feedback_every
    # After each batch of N rankings, a link to the new feedback (annotation/selectors_feedback.py covers batches).
    progress["feedback_due"] = bool(every and progress["done"] and progress["done"] % every == 0)
    return progress


@login_required
@require_GET
def label(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_page(request, slug)
    assignment = assignment_next(project=project, labeler=request.user)
    if assignment is None and not is_qualified(project=project, labeler=request.user):
        return redirect("annotation:qualification", slug=project.slug)  # the result, or why there is nothing
    if assignment is None:
        context = {"project": project, "progress": _labeler_progress(project, request.user)}
        return render(request, "annotation/label_done.html", context)
    return _task_page(request, project, assignment)


def _own_assignment(request: HttpRequest, slug: str, assignment_id: int) -> tuple[Project, Assignment]:
    project = project_for_page(request, slug)
    assignment = assignment_get_for_labeler(labeler=request.user, assignment_id=assignment_id)
    if assignment.project_id != project.pk:
        raise Http404("No such task.")
    return project, assignment


@login_required
@require_POST
def label_submit(request: HttpRequest, slug: str, assignment_id: int) -> HttpResponse:
    project, assignment = _own_assignment(request, slug, assignment_id)
    form = RankingSubmitForm(request.POST, fields=project.response_fields)
    if not form.is_valid():
        errors = [
            error if field == "__all__" else f"{field}: {error}"
            for field, field_errors in form.errors.items()
            for error in field_errors
        ]
        return _task_page(request, project, assignment, form=form, errors=errors, status=400)
    data = form.cleaned_data
    try:
        _, created = ranking_submit(
            labeler=request.user,
            assignment_id=assignment.pk,
            ranks=data["ranks"],
            flags=data["flags"],
            rationale=data["rationale"],
            time_spent_s=data["time_spent_s"],
            ratings=data["ratings"],
            strength=data["strength"],
        )
    except ValidationError as error:
        return _task_page(request, project, assignment, form=form, errors=error.messages, status=400)
    if assignment.prompt.is_qualification:  # feedback on the item at once (its reference is no secret)
        return redirect(reverse("annotation:qualification", args=[project.slug]) + f"#item-{assignment.prompt_id}")
    if created:
        messages.success(request, RANKING_SAVED)
    return redirect("annotation:label", slug=project.slug)


@login_required
@require_POST
def label_skip(request: HttpRequest, slug: str, assignment_id: int) -> HttpResponse:
    project, assignment = _own_assignment(request, slug, assignment_id)
    assignment_skip(assignment=assignment)
    messages.info(request, TASK_SKIPPED)
    return redirect("annotation:label", slug=project.slug)
