"""The prompt-writing page: a labeler writes prompts for the project (text and a use-case category), sees their
own prompts and the refusals with why. A thin view over annotation/services/hygiene.py."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotation.models import WRITING_CATEGORIES
from annotation.services.hygiene import PromptRefused, prompt_write, written_prompts_mine
from annotation.views import project_for_page


@login_required
@require_http_methods(["GET", "POST"])
def write_prompts(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_page(request, slug)
    if project.writing_mode == "off":
        raise Http404("This project does not ask for written prompts.")
    form = {"text": "", "category": ""}
    errors: list[str] = []
    if request.method == "POST":
        form = {"text": request.POST.get("text", ""), "category": request.POST.get("category", "")}
        try:
            prompt = prompt_write(project=project, author=request.user, **form)
        except PromptRefused as refused:
            errors = [r.message for r in refused.reasons]
            form["text"] = ""  # a refused text is not shown again (it may hold personal information)
        except ValidationError as error:
            errors = error.messages
        else:
            redacted = prompt.metadata.get("redacted")
            note = f" Personal information was replaced: {', '.join(redacted)}." if redacted else ""
            messages.success(request, f"Prompt saved.{note}")
            return redirect("annotation:write", slug=project.slug)
    context = {
        "project": project,
        "mine": written_prompts_mine(project=project, author=request.user),
        "categories": WRITING_CATEGORIES,
        "form": form,
        "errors": errors,
        "refused": bool(errors) and request.method == "POST",
    }
    return render(request, "annotation/write_prompts.html", context, status=400 if errors else 200)
