"""A labeler's feedback page: a thin view over selectors_feedback."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotation.selectors_feedback import labeler_feedback_get
from annotation.views import project_for_page


@login_required
@require_GET
def feedback(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_page(request, slug)
    context = {"project": project, "f": labeler_feedback_get(project=project, labeler=request.user)}
    return render(request, "annotation/feedback.html", context)
