"""Training runs in the Django admin: read-only listings (managers see their projects' runs), a cancel action, and
links to the run pages. Runs are created from the run pages, the API or `manage.py train_reward_model`."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from annotation.admin import ReadOnlyAdmin
from rlhf.models import ResponseScore, RunMetric, TrainingRun
from rlhf.services import training_run_cancel


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "project", "kind", "status", "progress", "accuracy", "created_by", "created_at",
                    "page"]  # fmt: skip
    list_display_links = ["id", "name"]
    # RelatedOnly: a manager's filter lists only the projects of the runs they may see, never every project's name.
    list_filter = ["status", "kind", ("project", admin.RelatedOnlyFieldListFilter), "cancel_requested"]
    search_fields = ["name", "error", "output_dir"]
    list_select_related = ["project", "created_by"]
    date_hierarchy = "created_at"
    actions = ["cancel_runs"]
    readonly_fields = [
        "project", "kind", "name", "status", "cancel_requested", "stage", "step", "total_steps", "eta_s", "config",
        "export", "metrics", "error", "log_tail", "run_dir", "data_dir", "output_dir", "scoring", "comparison",
        "task_id", "worker_pid", "worker_host", "created_by", "created_at", "started_at", "finished_at", "heartbeat_at",
    ]  # fmt: skip

    @admin.display(description="Progress")
    def progress(self, run: TrainingRun) -> str:
        return f"{run.step} / {run.total_steps}" if run.total_steps else "—"

    @admin.display(description="Held-out accuracy")
    def accuracy(self, run: TrainingRun) -> str:
        return "—" if run.accuracy is None else f"{run.accuracy:.3f}"

    @admin.display(description="Page")
    def page(self, run: TrainingRun) -> str:
        return format_html('<a href="{}">open</a>', reverse("rlhf:run-detail", args=[run.pk]))

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request, queryset) -> None:
        cancelled, refused = 0, []
        for run in queryset:
            try:
                training_run_cancel(run=run)
                cancelled += 1
            except ValidationError as exc:
                refused.extend(exc.messages)
        if cancelled:
            self.message_user(request, f"Cancelled (or asked to stop) {cancelled} run(s).", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.WARNING)


@admin.register(RunMetric)
class RunMetricAdmin(ReadOnlyAdmin):
    project_path = "run__project"
    list_display = ["run", "step", "name", "value", "created_at"]
    list_filter = ["name"]
    search_fields = ["name"]
    list_select_related = ["run"]


@admin.register(ResponseScore)
class ResponseScoreAdmin(ReadOnlyAdmin):
    project_path = "run__project"
    list_display = ["run", "response", "score", "created_at"]
    list_select_related = ["run", "response"]
