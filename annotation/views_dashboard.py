"""The manager's progress dashboard page: a thin view over selectors_dashboard."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET

from annotation.selectors import project_get_for_user
from annotation.selectors_dashboard import project_dashboard_get


@login_required
@require_GET
def progress_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, manage=True)
    dashboard = project_dashboard_get(project=project)
    chart = {"per_day": dashboard["per_day"]}
    finish = dashboard["eta"]["finish_at"]
    context = {"project": project, "d": dashboard, "chart": chart, "finish_at": finish and parse_datetime(finish)}
    return render(request, "annotation/dashboard.html", context)
