"""The agreement page for managers and admins, and the per-labeler exclusion toggle it posts to.

The page calls `agreement_report_get` once and renders it; charts get their data through `json_script`.
"""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotation.agreement import DEFAULT_TIE_CODING, TIE_CODINGS
from annotation.models import Membership
from annotation.selectors import project_get_for_user
from annotation.selectors_comparisons import policy_comparisons_get
from annotation.services.agreement import agreement_report_get
from annotation.services.projects import membership_set

N_BOOT_DEFAULT = 200
N_BOOT_MAX = 1000
INSTRUCTGPT_PAIRWISE = 0.726  # Ouyang et al. (2022): training labelers agree with each other 72.6 ± 1.5% of the time

# (report key, title, shown as a percentage, one-line explanation)
HEADLINE = [
    (
        "pairwise_agreement_ties_dropped",
        "Pairwise agreement (ties dropped)",
        True,
        "For two labelers of the same prompt and two of its responses: how often both prefer the same one. "
        "Pairs either labeler tied are left out.",
    ),
    (
        "pairwise_agreement_ties_as_outcome",
        "Pairwise agreement (tie = third outcome)",
        True,
        "As above, but a tie is an outcome of its own: both labelers must tie, or prefer the same response.",
    ),
    (
        "alpha_ordinal",
        "Krippendorff's α (ordinal)",
        False,
        "Agreement on each response's rank beyond chance: 1 = perfect, 0 = chance, below 0 = systematic "
        "disagreement. Handles ties and labelers who saw different prompts.",
    ),
    (
        "alpha_interval",
        "Krippendorff's α (interval)",
        False,
        "The same, treating ranks as numbers: disagreeing by two places costs four times as much as by one.",
    ),
    (
        "kendall_w_mean",
        "Kendall's W (mean over prompts)",
        False,
        "Concordance of the labelers' rankings of one prompt (0 = no agreement, 1 = identical), tie-corrected, "
        "averaged over prompts.",
    ),
]
PERCENT_KEYS = (
    "pairwise_agreement",
    "pairwise_agreement_ties_dropped",
    "rate",
    "flag_rate",
    "gold_accuracy",
    "win_rate",
)
BREAKDOWNS = ("by_category", "by_guideline_version", "over_time", "lowest_prompts", "flags")


def _n_boot(raw: str | None) -> int:
    try:
        return max(0, min(N_BOOT_MAX, int(raw)))
    except (TypeError, ValueError):
        return N_BOOT_DEFAULT


def _tie_coding(raw: str | None) -> str:
    return raw if raw in TIE_CODINGS else DEFAULT_TIE_CODING


def _figure(value: float | None, percent: bool) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f}%" if percent else f"{value:.3f}"


def _headline(report: dict) -> list[dict]:
    intervals = report.get("intervals", {})
    cards = []
    for key, title, percent, help_text in HEADLINE:
        low, high = intervals.get(key, (None, None))
        interval = f"95% CI {_figure(low, percent)} – {_figure(high, percent)}" if low is not None else ""
        card = {"key": key, "title": title, "help": help_text, "interval": interval}
        cards.append(card | {"value": _figure(report.get(key), percent)})
    return cards


def _with_percentages(rows: list[dict]) -> list[dict]:
    """Rows with a `<key>_pct` text next to every share, for the tables (the charts take the raw numbers)."""
    return [row | {f"{k}_pct": _figure(row.get(k), True) for k in PERCENT_KEYS if k in row} for row in rows]


@login_required
@require_GET
def agreement(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, manage=True)
    n_boot = _n_boot(request.GET.get("n_boot"))
    tie_coding = _tie_coding(request.GET.get("tie_coding"))
    report = agreement_report_get(project=project, n_boot=n_boot, tie_coding=tie_coding)
    tables = {name: _with_percentages(report.get(name, [])) for name in (*BREAKDOWNS, "labelers", "leaderboard")}
    tables["leaderboard_components"] = [_with_percentages(rows) for rows in report.get("leaderboard_components", [])]
    charts = {name: report.get(name, []) for name in ("by_category", "by_guideline_version", "over_time")}
    charts |= {"histogram": report.get("per_prompt_histogram"), "leaderboard": report.get("leaderboard", [])}
    form = report.get("response_form")
    if form is not None:
        form = form | {"labels": _with_percentages(form["labels"])}
    context = {
        "project": project,
        "report": report,
        "tables": tables,
        "headline": _headline(report),
        "charts": charts,
        "n_boot": n_boot,
        "n_boot_max": N_BOOT_MAX,
        "tie_coding": tie_coding,
        "tie_codings": TIE_CODINGS,
        "ceiling": _figure(INSTRUCTGPT_PAIRWISE, True),
        "form": form,
        "comparisons": policy_comparisons_get(project=project, n_boot=max(n_boot, 200)),
    }
    return render(request, "annotation/agreement.html", context)


@login_required
@require_POST
def agreement_exclusion(request: HttpRequest, slug: str) -> HttpResponse:
    """Exclude a member's rankings from agreement and export, or include them again; nothing is deleted."""
    project = project_get_for_user(user=request.user, slug=slug, manage=True)
    try:
        user_id = int(request.POST.get("user_id", ""))
    except ValueError:
        return HttpResponseBadRequest("user_id must be a number.")
    membership = get_object_or_404(Membership.objects.select_related("user"), project=project, user_id=user_id)
    excluded = request.POST.get("excluded") == "1"
    membership_set(project=project, user=membership.user, role=membership.role, excluded=excluded)
    action = "excluded from" if excluded else "included again in"
    messages.success(request, f"{membership.user.get_username()}'s rankings are {action} agreement and export.")
    url = reverse("annotation:agreement", args=[project.slug])
    n_boot, tie_coding = _n_boot(request.POST.get("n_boot")), _tie_coding(request.POST.get("tie_coding"))
    query = {"n_boot": n_boot} if n_boot != N_BOOT_DEFAULT else {}
    if tie_coding != DEFAULT_TIE_CODING:  # the page comes back as it was shown
        query["tie_coding"] = tie_coding
    return redirect(url + (f"?{urlencode(query)}" if query else "") + "#labelers")
