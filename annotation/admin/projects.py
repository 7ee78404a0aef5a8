"""Projects, members and guideline versions; the per-project import, evaluation-set, export and progress pages."""

import shutil

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import FileResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from annotation import exports
from annotation.admin.base import ProjectChildInline, ProjectScopedAdmin, managed_project_ids
from annotation.models import EvalSet, Guideline, Membership, Project, Prompt, Ranking
from annotation.selectors import project_progress_get
from annotation.services.exports import ExportFilters, preference_export_archive
from annotation.services.hygiene import eval_set_upload
from annotation.services.imports import ImportFailed, prompts_import
from annotation.services.projects import (
    PROJECT_EDITABLE,
    guideline_publish,
    membership_remove,
    membership_set,
    project_create,
    project_update,
)


def member_choices(request):
    """Users a member row may name: every active user, plus the inactive ones already members of a project this user
    manages (the `imported` annotator of preference pairs, simulated labelers): a project holding them still saves."""
    users = get_user_model().objects.all()
    members = Membership.objects.all()
    if not request.user.is_superuser:
        members = members.filter(project_id__in=managed_project_ids(request.user))
    return users.filter(Q(is_active=True) | Q(pk__in=members.values("user_id"))).order_by("username")


class MembershipInline(ProjectChildInline, admin.TabularInline):
    model = Membership
    fields = ("user", "role", "excluded")
    extra = 0

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = member_choices(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class GuidelineInline(ProjectChildInline, admin.StackedInline):
    """Versions are immutable: existing ones show read-only, a new one is published as the next version."""

    model = Guideline
    fields = ("version", "created_by", "created_at", "text")
    readonly_fields = ("version", "created_by", "created_at")
    extra = 0
    classes = ("collapse",)
    verbose_name = "guideline version"
    verbose_name_plural = "guideline versions (adding one publishes the next version)"

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PromptImportForm(forms.Form):
    file = forms.FileField(help_text="JSONL or CSV: see the formats below.")
    kind = forms.ChoiceField(
        choices=[("auto", "Detect automatically"), ("prompts", "Prompts with responses"), ("pairwise", "Pairwise")],
        initial="auto",
    )


class EvalSetUploadForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Uploading a set under an existing name replaces it.")
    file = forms.FileField(
        help_text='JSON lines (<code>{"prompt": text or chat messages}</code> or a string) or a '
        ".txt file with one prompt per line."
    )


class PreferenceExportForm(forms.Form):
    """The export page: JSONL train/test files and export_meta.json in one zip, or a hand-off bundle for OpenRLHF or
    verl (docs/export.md)."""

    format = forms.ChoiceField(
        choices=[("jsonl", "JSONL train/test (TRL's format)"), ("openrlhf", "OpenRLHF bundle (data + train_rm.sh, "
                 "train_ppo.sh)"), ("verl", "verl bundle (Parquet + run_ppo.sh)")],
        initial="jsonl", required=False,
        help_text="A bundle is a folder to copy to a GPU cluster: the engine's data format, launch scripts with the "
                  "platform's hyper-parameters and a README.",
    )  # fmt: skip
    strategy = forms.ChoiceField(choices=[(s, s) for s in exports.STRATEGIES], initial="all",
                                 help_text="all: every labeler's pairs; majority: one row per response pair; "
                                           "consensus: pairs of the mean-rank consensus.")  # fmt: skip
    dataset = forms.ChoiceField(
        choices=[(d, d) for d in exports.DATASETS], initial="pairs", required=False,
        help_text="ratings: one row per response per labeler (the per-response form's score, labels and texts).",
    )  # fmt: skip
    ties = forms.ChoiceField(choices=[(t, t) for t in exports.TIES], initial="drop")
    margin = forms.ChoiceField(
        choices=[(m, m) for m in exports.MARGINS], initial="none",
        help_text="score-diff: from the per-response scores; strength: pairwise strength (both need strategy all).",
    )  # fmt: skip
    pairs_from = forms.ChoiceField(
        choices=[(p, p) for p in exports.PAIRS_FROM], initial="ranks", required=False,
        help_text="scores: each labeler's per-response scores order the pairs; equal scores tie.",
    )  # fmt: skip
    strength_margins = forms.CharField(
        required=False, help_text="Margin of strength 1..4, e.g. 3,2,1,0 (empty: the project's setting)."
    )
    test_ratio = forms.FloatField(min_value=0, max_value=1, initial=0.1)
    min_labelers = forms.IntegerField(min_value=1, initial=1)
    min_agreement = forms.FloatField(min_value=0, max_value=1, required=False)
    exclude_flags = forms.CharField(initial="all", help_text="all, none, or a list such as unsafe,all_bad")
    categories = forms.CharField(required=False, help_text="Comma-separated; empty: every category.")


def _count(model, **filters):
    rows = model.objects.filter(project=OuterRef("pk"), **filters).order_by().values("project")
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n")), 0)


@admin.register(Project)
class ProjectAdmin(ProjectScopedAdmin):
    project_path = ""
    managers_can_delete = False
    list_display = ("name", "slug", "overlap", "prompt_count", "ranking_count", "labeler_count", "tools")
    search_fields = ("name", "slug", "description")
    inlines = (MembershipInline, GuidelineInline)
    readonly_fields = ("created_at",)

    def has_add_permission(self, request):
        """Only admins create projects; managers edit the projects they manage."""
        return request.user.is_active and request.user.is_superuser

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_prompts=_count(Prompt),
                n_rankings=_count(Ranking, is_current=True),
                n_labelers=_count(Membership, role=Membership.Role.LABELER),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        return ("slug", "created_at") if obj else ("created_at",)

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj else {"slug": ("name",)}

    @admin.display(description="prompts", ordering="n_prompts")
    def prompt_count(self, obj):
        return obj.n_prompts

    @admin.display(description="rankings", ordering="n_rankings")
    def ranking_count(self, obj):
        return obj.n_rankings

    @admin.display(description="labelers", ordering="n_labelers")
    def labeler_count(self, obj):
        return obj.n_labelers

    @admin.display(description="")
    def tools(self, obj):
        return format_html(
            '<a href="{}">Progress</a> · <a href="{}">Import prompts</a> · <a href="{}">Export</a>',
            reverse("admin:annotation_project_progress", args=[obj.pk]),
            reverse("admin:annotation_project_import", args=[obj.pk]),
            reverse("admin:annotation_project_export", args=[obj.pk]),
        )

    def save_model(self, request, obj, form, change):
        if change:
            changed = {name: form.cleaned_data[name] for name in form.changed_data if name in PROJECT_EDITABLE}
            if changed:
                project_update(project=obj, **changed)
            return
        settings = {name: form.cleaned_data[name] for name in PROJECT_EDITABLE if name in form.cleaned_data}
        settings.pop("name", None)
        created = project_create(name=obj.name, slug=obj.slug, created_by=request.user, **settings)
        obj.pk, obj.created_at, obj._state.adding, obj._state.db = created.pk, created.created_at, False, "default"

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        project = form.instance
        if formset.model is Guideline:
            formset.new_objects = [
                guideline_publish(project=project, text=guideline.text, user=request.user)
                for guideline in formset.new_objects
            ]
        elif formset.model is Membership:
            for membership in formset.deleted_objects:
                membership_remove(project=project, user=membership.user)
            for membership in instances:
                membership_set(
                    project=project, user=membership.user, role=membership.role, excluded=membership.excluded
                )
        else:  # pragma: no cover - no other inlines
            formset.save()

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/progress/", view(self.progress_view), name="annotation_project_progress"),
            path("<path:object_id>/import/", view(self.import_view), name="annotation_project_import"),
            path("<path:object_id>/export/", view(self.export_view), name="annotation_project_export"),
            path("<path:object_id>/eval-sets/", view(self.eval_sets_view), name="annotation_project_evalsets"),
            *super().get_urls(),
        ]

    def _context(self, request, project, title: str) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": project,
            "title": title,
            "has_view_permission": True,
        }

    def progress_view(self, request, object_id):
        project = self.get_object(request, object_id)
        progress = project_progress_get(project=project)
        target = progress["target_rankings"]
        pct = min(100, round(100 * progress["rankings"] / target)) if target else 0
        context = {**self._context(request, project, f"Progress: {project}"), "progress": progress, "pct": pct}
        return TemplateResponse(request, "admin/annotation/project/progress.html", context)

    def import_view(self, request, object_id):
        project = self.get_object(request, object_id)
        if not self.has_change_permission(request, project):
            raise PermissionDenied
        form = PromptImportForm(request.POST or None, request.FILES or None)
        result, errors = None, []
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = prompts_import(
                    project=project,
                    file=upload,
                    filename=upload.name,
                    kind=form.cleaned_data["kind"],
                    created_by=request.user,
                )
            except ImportFailed as exc:
                errors = exc.lines
        context = {
            **self._context(request, project, f"Import prompts into {project}"),
            "form": form,
            "result": result,
            "errors": errors,
        }
        return TemplateResponse(request, "admin/annotation/project/import.html", context)

    def eval_sets_view(self, request, object_id):
        """The project's evaluation sets, and an upload form: a set's prompts are refused as new prompts, and the
        project's prompts that already match one are listed here and left out of exports."""
        project = self.get_object(request, object_id)
        if not self.has_change_permission(request, project):
            raise PermissionDenied
        form = EvalSetUploadForm(request.POST or None, request.FILES or None)
        uploaded = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                uploaded = eval_set_upload(
                    project=project, name=form.cleaned_data["name"], filename=upload.name, data=upload.read(),
                    created_by=request.user,
                )  # fmt: skip
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error("file", message)
        matched = []
        if uploaded is not None:
            texts = dict(Prompt.objects.filter(id__in=[m["prompt"] for m in uploaded.matches[:200]]).values_list(
                "id", "text"))  # fmt: skip
            matched = [
                {**m, "text": texts.get(m["prompt"], ""), "eval_text": uploaded.prompts[m["item"] - 1]}
                for m in uploaded.matches[:200]
            ]
        context = {
            **self._context(request, project, f"Evaluation sets of {project}"),
            "form": form,
            "uploaded": uploaded,
            "matched": matched,
            "sets": EvalSet.objects.filter(project=project).select_related("created_by"),
        }
        return TemplateResponse(request, "admin/annotation/project/eval_sets.html", context,
                                status=400 if form.errors else 200)  # fmt: skip

    def export_view(self, request, object_id):
        """Download the preference export (a zip) of a project the user may see (managers: their own)."""
        project = self.get_object(request, object_id)
        form = PreferenceExportForm(request.POST or None)
        options = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                options = exports.ExportOptions(
                    strategy=data["strategy"], ties=data["ties"], margin=data["margin"],
                    test_ratio=data["test_ratio"], min_labelers=data["min_labelers"],
                    min_agreement=data["min_agreement"], exclude_flags=exports.parse_flag_list(data["exclude_flags"]),
                    dataset=data["dataset"] or "pairs", pairs_from=data["pairs_from"] or "ranks",
                    strength_margins=exports.parse_margins(data["strength_margins"]),
                )  # fmt: skip
            except ValueError as exc:
                form.add_error(None, str(exc))
        if options is not None:
            data = form.cleaned_data
            categories = tuple(c.strip() for c in data["categories"].split(",") if c.strip())
            archive = preference_export_archive(
                project=project, options=options, filters=ExportFilters(categories=categories),
                fmt=data["format"] or "jsonl",
            )  # fmt: skip
            handle = archive.open("rb")
            shutil.rmtree(archive.parent)  # the open handle keeps the file readable until the response closes it
            return FileResponse(handle, as_attachment=True, filename=archive.name, content_type="application/zip")
        context = {**self._context(request, project, f"Export preferences of {project}"), "form": form}
        return TemplateResponse(request, "admin/annotation/project/export.html", context)


@admin.register(Membership)
class MembershipAdmin(ProjectScopedAdmin):
    list_display = ("user", "project", "role", "excluded", "created_at")
    list_filter = ("role", "excluded", ("project", admin.RelatedOnlyFieldListFilter))
    search_fields = ("user__username", "user__email", "project__name", "project__slug")
    list_select_related = ("user", "project")

    def get_readonly_fields(self, request, obj=None):
        return ("project", "user", "created_at") if obj else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = member_choices(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        saved = membership_set(project=obj.project, user=obj.user, role=obj.role, excluded=obj.excluded)
        obj.pk, obj.created_at, obj._state.adding, obj._state.db = saved.pk, saved.created_at, False, "default"

    def delete_model(self, request, obj):
        membership_remove(project=obj.project, user=obj.user)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("project", "user"):
            membership_remove(project=membership.project, user=membership.user)


@admin.register(Guideline)
class GuidelineAdmin(ProjectScopedAdmin):
    """Adding a guideline publishes the project's next version; versions are never edited or deleted."""

    can_change = can_delete = False
    list_display = ("project", "version", "created_by", "created_at")
    list_filter = (("project", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("text", "project__name")
    list_select_related = ("project", "created_by")

    def get_fields(self, request, obj=None):
        return ("project", "version", "created_by", "created_at", "text") if obj else ("project", "text")

    def save_model(self, request, obj, form, change):
        published = guideline_publish(project=obj.project, text=obj.text, user=request.user)
        obj.pk, obj.version, obj._state.adding, obj._state.db = published.pk, published.version, False, "default"


# --- prompts and responses ----------------------------------------------------------------------------------------
