"""A labeler's feedback page: a thin view over selectors_feedback."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotation.selectors import project_get_for_user
from annotation.selectors_feedback import labeler_feedback_get


@login_required
@require_GET
def feedback(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug)
    context = {"project": project, "f": labeler_feedback_get(project=project, labeler=request.user)}
    return render(request, "annotation/feedback.html", context)
