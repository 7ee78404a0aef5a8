"""Prompts, responses, rankings and assignments (rankings and assignments are read-only); a prompt's gold page."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from annotation.admin.base import ProjectChildInline, ProjectScopedAdmin, ReadOnlyAdmin, _short, managed_project_ids
from annotation.models import (
    Assignment,
    EvalSet,
    ImportBatch,
    Prompt,
    PromptRefusal,
    Ranking,
    RankingEntry,
    Response,
    ResponseRating,
)
from annotation.services.gold import prompt_gold_set, prompt_gold_unset


class ResponseInline(ProjectChildInline, admin.TabularInline):
    """Shows which model wrote each response: the admin is for managers, never for labelers."""

    model = Response
    editable = False
    fields = ("index", "model_name", "text")
    readonly_fields = fields
    extra = 0

    def _parent_ok(self, request, obj=None, allowed: bool = True) -> bool:
        if not allowed:
            return False
        return request.user.is_superuser or obj is None or obj.project_id in managed_project_ids(request.user)


class PromptGoldForm(forms.Form):
    """The reference rank of every response of the prompt (1 = best; ties share a rank, dense). Only the format is
    checked here: `prompt_gold_set` validates the ranking, as for the API."""

    def __init__(self, *args, prompt: Prompt, **kwargs):
        super().__init__(*args, **kwargs)
        self.responses = list(prompt.responses.order_by("index"))
        reference = prompt.gold_ranks or {}
        for response in self.responses:
            self.fields[f"rank_{response.id}"] = forms.IntegerField(
                label=f"Response {response.index + 1} ({response.model_name}): {_short(response.text, 70)}",
                required=False,
                initial=reference.get(str(response.id)),
            )

    def ranks(self) -> dict[int, int]:
        """{response_id: rank} of the filled-in fields (a blank one is reported missing by the service)."""
        filled = {r.id: self.cleaned_data.get(f"rank_{r.id}") for r in self.responses}
        return {rid: rank for rid, rank in filled.items() if rank is not None}


@admin.register(Prompt)
class PromptAdmin(ProjectScopedAdmin):
    can_add = False  # prompts come in through "Import prompts"
    managers_can_delete = False
    list_display = ("short_text", "project", "category", "round", "is_gold", "ranking_count", "is_complete")
    list_filter = (
        ("project", admin.RelatedOnlyFieldListFilter),
        "category",
        "is_complete",
        "is_gold",
        "round",
    )
    search_fields = ("text", "external_id")
    list_select_related = ("project",)
    inlines = (ResponseInline,)
    fields = (
        "project",
        "text",
        "messages",
        "category",
        "source",
        "external_id",
        "split",
        "metadata",
        "round",
        "is_gold",
        "gold_ranks",
        "ranking_count",
        "is_complete",
        "content_hash",
        "created_at",
    )
    readonly_fields = (
        "project",
        "text",
        "messages",
        "external_id",
        "round",
        "content_hash",
        "is_gold",
        "gold_ranks",
        "ranking_count",
        "is_complete",
        "created_at",
    )

    actions = ("gold_unset",)

    @admin.display(description="prompt", ordering="text")
    def short_text(self, obj):
        return _short(obj.text)

    def get_urls(self):
        view = self.admin_site.admin_view(self.gold_view)
        return [path("<path:object_id>/gold/", view, name="annotation_prompt_gold"), *super().get_urls()]

    def gold_view(self, request, object_id):
        """Mark the prompt gold with a reference ranking (or replace it), or make it ordinary again; managers of its
        project and admins. Both go through the gold services, like the API."""
        prompt = self.get_object(request, object_id)  # another project's prompt: 404
        if not self.has_change_permission(request, prompt):
            raise PermissionDenied
        change_url = reverse("admin:annotation_prompt_change", args=[prompt.pk])
        if request.method == "POST" and "unset" in request.POST:
            prompt_gold_unset(prompt=prompt)
            self.message_user(request, f"Prompt {prompt.pk} is an ordinary prompt again.", messages.SUCCESS)
            return redirect(change_url)
        form = PromptGoldForm(request.POST or None, prompt=prompt)
        if request.method == "POST" and form.is_valid():
            try:
                prompt_gold_set(prompt=prompt, ranks=form.ranks())
            except ValidationError as exc:
                form.add_error(None, exc)
                self.message_user(request, "The reference ranking was not saved: see the errors below.", messages.ERROR)
            else:
                self.message_user(request, f"Prompt {prompt.pk} is gold with the reference ranking.", messages.SUCCESS)
                return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": prompt,
            "title": f"Gold reference ranking of prompt {prompt.pk}",
            "form": form,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/annotation/prompt/gold.html", context)

    @admin.action(description="Unmark gold (make the selected prompts ordinary)", permissions=["change"])
    def gold_unset(self, request, queryset):
        prompts = list(queryset.filter(is_gold=True))
        for prompt in prompts:
            prompt_gold_unset(prompt=prompt)
        self.message_user(request, f"{len(prompts)} gold prompt(s) made ordinary.", messages.SUCCESS)


@admin.register(Response)
class ResponseAdmin(ReadOnlyAdmin):
    project_path = "prompt__project"
    list_display = ("short_text", "model_name", "index", "prompt")
    list_filter = ("model_name", ("prompt__project", admin.RelatedOnlyFieldListFilter))
    search_fields = ("text", "model_name")
    list_select_related = ("prompt",)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(prompt__staged=False)  # an unfinished import is not shown

    @admin.display(description="response", ordering="text")
    def short_text(self, obj):
        return _short(obj.text)


# --- labeling -----------------------------------------------------------------------------------------------------


class RankingEntryInline(ProjectChildInline, admin.TabularInline):
    model = RankingEntry
    editable = False
    fields = ("rank", "shown_position", "response", "model_name")
    readonly_fields = fields
    extra = 0

    def _parent_ok(self, request, obj=None, allowed: bool = True) -> bool:
        if not allowed:
            return False
        return request.user.is_superuser or obj is None or obj.project_id in managed_project_ids(request.user)

    @admin.display(description="model")
    def model_name(self, entry):
        return entry.response.model_name


class ResponseRatingInline(RankingEntryInline):
    """The per-response form's values of a ranking (docs/labeling-modes.md), read-only like the ranking."""

    model = ResponseRating
    fields = ("response", "score", "values")
    readonly_fields = fields


@admin.register(Ranking)
class RankingAdmin(ReadOnlyAdmin):
    """Rankings are immutable: a correction is a new version made by the labeler, never an edit here."""

    list_display = (
        "id", "prompt_text", "project", "labeler", "source", "version", "is_current", "strength", "created_at"
    )  # fmt: skip
    list_filter = (
        ("project", admin.RelatedOnlyFieldListFilter),
        "source",
        "is_current",
        ("labeler", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("labeler__username", "prompt__text", "rationale")
    list_select_related = ("project", "labeler", "prompt")
    inlines = (RankingEntryInline, ResponseRatingInline)

    @admin.display(description="prompt")
    def prompt_text(self, obj):
        return _short(obj.prompt.text, 60)


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "labeler", "project", "prompt", "status", "created_at", "expires_at", "completed_at")
    list_filter = ("status", ("project", admin.RelatedOnlyFieldListFilter))
    search_fields = ("labeler__username",)
    list_select_related = ("project", "labeler", "prompt")


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyAdmin):
    """Imports and how they ended: a failed one keeps its reason (its staged rows were deleted)."""

    list_display = (
        "id", "filename", "project", "status", "prompts_written", "prompts_created", "responses_created",
        "rankings_created", "duplicates_skipped", "created_by", "created_at", "finished_at",
    )  # fmt: skip
    list_filter = ("status",)
    search_fields = ("filename", "error", "project__name")
    list_select_related = ("project", "created_by")


@admin.register(EvalSet)
class EvalSetAdmin(ReadOnlyAdmin):
    """Evaluation sets (prompts that must never be trained on); uploaded on a project's **Evaluation sets** page, with
    `manage.py eval_set` or through the API (POST .../eval-sets/)."""

    list_display = ("name", "project", "filename", "size", "matched", "created_by", "created_at")
    search_fields = ("name", "project__name")
    list_select_related = ("project", "created_by")
    exclude = ("prompts", "matches")

    @admin.display(description="prompts")
    def size(self, obj: EvalSet) -> int:
        return len(obj.prompts)

    @admin.display(description="matching project prompts (left out of exports)")
    def matched(self, obj: EvalSet) -> int:
        return len(obj.matches)


@admin.register(PromptRefusal)
class PromptRefusalAdmin(ReadOnlyAdmin):
    """Prompts the hygiene checks refused, with why (their texts are not kept)."""

    list_display = ("created_at", "project", "author", "source", "category", "codes")
    list_filter = ("source",)
    list_select_related = ("project", "author")

    @admin.display(description="reasons")
    def codes(self, obj: PromptRefusal) -> str:
        return ", ".join(str(r.get("code", "")) for r in obj.reasons)
