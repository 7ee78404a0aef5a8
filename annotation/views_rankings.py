"""Review and revise: a labeler's own rankings (filtered), one ranking as it was shown with a revise form while the
project allows it, and the version history (the labeler's own, and any labeler's for the project's managers)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET, require_http_methods

from annotation.forms import RankingSubmitForm
from annotation.selectors import project_get_for_user
from annotation.selectors_revisions import (
    my_rankings_filtered,
    ranking_cards,
    ranking_get_for_viewer,
    ranking_history,
)
from annotation.services.rankings import RevisionClosed, ranking_revise, ranking_revision_window
from annotation.views import _card_fields, project_for_page

PAGE_SIZE = 50
REVISION_SAVED = "Revision saved as version {version}; agreement and exports now use it."


def _date(value: str):
    try:
        return parse_date(value) if value else None
    except ValueError:  # a well-formed but impossible date, e.g. 2026-02-31
        return None


@login_required
@require_GET
def my_rankings(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_page(request, slug)
    filters = {
        "query": request.GET.get("q", "").strip()[:200],
        "flag": request.GET.get("flag", "").strip()[:50],
        "date_from": _date(request.GET.get("from", "")),
        "date_to": _date(request.GET.get("to", "")),
    }
    rankings = my_rankings_filtered(labeler=request.user, project=project, **filters)
    page = Paginator(rankings, PAGE_SIZE).get_page(request.GET.get("page"))
    names = {choice["value"]: choice["label"] for choice in project.strength_choices}
    for ranking in page.object_list:  # pairwise: how much better, in the project's words
        ranking.strength_name = names.get(ranking.strength, "")
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "project": project,
        "rankings": page.object_list,
        "page": page,
        "filters": filters,
        "filtered": any(filters.values()),
        "query_string": query.urlencode(),
        "flag_choices": project.flag_choices,
        "pairwise": project.is_pairwise,
    }
    return render(request, "annotation/my_rankings.html", context)


def _detail(request, project, ranking, *, form=None, errors=(), status=200):
    window = ranking_revision_window(ranking)
    mine = ranking.labeler_id == request.user.pk
    cards = ranking_cards(ranking)
    # what the form shows: after a refused revision what was posted, else what is stored (ranks, the per-response form
    # under the fields it was filled in with, the strength of a pairwise choice)
    posted = form.cleaned_data if form is not None and hasattr(form, "cleaned_data") else None
    stored = dict(ranking.ratings.values_list("response_id", "values"))
    fields = project.response_fields
    labels = {field["key"]: field["label"] for field in fields}
    for card in cards:
        rid = card["response"].pk
        card["value"] = form.data.get(f"rank_{rid}", "") if form is not None else card["rank"]
        values = posted["ratings"].get(rid, {}) if posted is not None else stored.get(rid, {})
        card["fields"] = _card_fields(fields, rid, values)
        card["stored"] = [(labels.get(key, key), value) for key, value in stored.get(rid, {}).items()]
    context = {
        "project": project,
        "ranking": ranking,
        "cards": cards,
        "window": window,
        "can_revise": mine and ranking.is_current and window.allowed,
        "mine": mine,
        "history": ranking_history(ranking),
        "errors": errors,
        "flags_checked": form.data.getlist("flags") if form is not None else ranking.flags,
        "rationale": form.data.get("rationale", "") if form is not None else ranking.rationale,
        "pairwise": project.is_pairwise,
        "strength": posted.get("strength") if posted is not None else ranking.strength,
        "strength_choices": project.strength_choices,
        "strength_name": {c["value"]: c["label"] for c in project.strength_choices}.get(ranking.strength, ""),
    }
    return render(request, "annotation/ranking_detail.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def ranking_detail(request: HttpRequest, slug: str, ranking_id: int) -> HttpResponse:
    """GET: the ranking as the labeler saw it; POST: a revision (a new version)."""
    project = project_for_page(request, slug)
    ranking = ranking_get_for_viewer(user=request.user, project=project, ranking_id=ranking_id)
    if request.method == "GET":
        return _detail(request, project, ranking)
    form = RankingSubmitForm(request.POST, fields=project.response_fields)
    if not form.is_valid():
        errors = [error for field_errors in form.errors.values() for error in field_errors]
        return _detail(request, project, ranking, form=form, errors=errors, status=400)
    data = form.cleaned_data
    try:
        revised = ranking_revise(
            labeler=request.user, ranking_id=ranking.pk, ranks=data["ranks"], flags=data["flags"],
            rationale=data["rationale"], time_spent_s=data["time_spent_s"], ratings=data["ratings"],
            strength=data["strength"],
        )  # fmt: skip
    except RevisionClosed as error:
        return _detail(request, project, ranking, form=form, errors=[str(error)], status=403)
    except ValidationError as error:
        return _detail(request, project, ranking, form=form, errors=error.messages, status=400)
    messages.success(request, REVISION_SAVED.format(version=revised.version))
    return redirect("annotation:ranking-detail", slug=project.slug, ranking_id=revised.pk)


@login_required
@require_GET
def ranking_history_page(request: HttpRequest, slug: str, ranking_id: int) -> HttpResponse:
    """Managers: every version of a labeler's judgment of a prompt (who, when, what changed)."""
    project = project_get_for_user(user=request.user, slug=slug, manage=True)
    ranking = ranking_get_for_viewer(user=request.user, project=project, ranking_id=ranking_id, manage=True)
    return _detail(request, project, ranking)
