"""Qualification pages: the labeler's own (progress, feedback per item, the result) and the managers' (attempts,
admit or refuse). Thin views over annotation/services/qualification.py."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotation.selectors import project_get_for_user
from annotation.services.qualification import qualification_attempts, qualification_decide, qualification_state
from annotation.views import project_for_page


@login_required
@require_GET
def qualification(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_page(request, slug)
    state = qualification_state(project=project, labeler=request.user)
    return render(request, "annotation/qualification.html", {"project": project, "s": state})


@login_required
@require_http_methods(["GET", "POST"])
def qualification_manage(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, manage=True)
    if request.method == "POST":
        user = get_object_or_404(get_user_model(), pk=request.POST.get("user_id", "0") or 0)
        admit = request.POST.get("decision") == "admit"
        try:
            qualification_decide(project=project, labeler=user, admit=admit)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"{user.get_username()} {'admitted' if admit else 'refused'}.")
        return redirect("annotation:qualification-manage", slug=project.slug)
    context = {"project": project, "attempts": qualification_attempts(project=project)}
    return render(request, "annotation/qualification_manage.html", context)
