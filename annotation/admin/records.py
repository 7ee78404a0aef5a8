"""Prompts, responses, rankings and assignments (rankings and assignments are read-only)."""

from django.contrib import admin

from annotation.admin.base import ProjectChildInline, ProjectScopedAdmin, ReadOnlyAdmin, _short, managed_project_ids
from annotation.models import Assignment, Prompt, Ranking, RankingEntry, Response


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

    @admin.display(description="prompt", ordering="text")
    def short_text(self, obj):
        return _short(obj.text)


@admin.register(Response)
class ResponseAdmin(ReadOnlyAdmin):
    project_path = "prompt__project"
    list_display = ("short_text", "model_name", "index", "prompt")
    list_filter = ("model_name", ("prompt__project", admin.RelatedOnlyFieldListFilter))
    search_fields = ("text", "model_name")
    list_select_related = ("prompt",)

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


@admin.register(Ranking)
class RankingAdmin(ReadOnlyAdmin):
    """Rankings are immutable: a correction is a new version made by the labeler, never an edit here."""

    list_display = ("id", "prompt_text", "project", "labeler", "source", "version", "is_current", "created_at")
    list_filter = (
        ("project", admin.RelatedOnlyFieldListFilter),
        "source",
        "is_current",
        ("labeler", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("labeler__username", "prompt__text", "rationale")
    list_select_related = ("project", "labeler", "prompt")
    inlines = (RankingEntryInline,)

    @admin.display(description="prompt")
    def prompt_text(self, obj):
        return _short(obj.prompt.text, 60)


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "labeler", "project", "prompt", "status", "created_at", "expires_at", "completed_at")
    list_filter = ("status", ("project", admin.RelatedOnlyFieldListFilter))
    search_fields = ("labeler__username",)
    list_select_related = ("project", "labeler", "prompt")
