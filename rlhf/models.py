"""Training runs: what was trained on which export snapshot, its live progress, metrics over time and artifacts.

Behaviour lives in `rlhf/services.py`; the background task (`rlhf/tasks.py`) only calls `training_run_execute`.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class TrainingRun(models.Model):
    class Kind(models.TextChoices):
        REWARD_MODEL = "reward_model", "Reward model"
        PPO = "ppo", "PPO"
        SFT = "sft", "SFT"
        DPO = "dpo", "DPO"
        GRPO = "grpo", "GRPO / RLOO"
        CHAIN = "chain", "Default chain (SFT → reward model → PPO)"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    project = models.ForeignKey(
        "annotation.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.REWARD_MODEL)
    name = models.CharField(max_length=200, blank=True)
    config = models.JSONField(default=dict, help_text="The resolved training config (the dataclass as a dict).")
    export = models.JSONField(
        default=dict, blank=True, help_text="The export snapshot: options, counts and the human agreement ceiling."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    cancel_requested = models.BooleanField(default=False)
    # Progress, written by the worker (throttled).
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    eta_s = models.FloatField(null=True, blank=True, help_text="Seconds left, estimated from the recent step rate.")
    stage = models.CharField(max_length=20, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="Final metrics (metrics.json of the model).")
    log_tail = models.TextField(blank=True, help_text="The last lines of the run's log.")
    error = models.TextField(blank=True)
    # Artifacts.
    run_dir = models.CharField(max_length=500, blank=True)
    data_dir = models.CharField(max_length=500, blank=True, help_text="The export snapshot trained on.")
    output_dir = models.CharField(max_length=500, blank=True, help_text="Model, tokenizer, config and metrics.")
    # Who runs it.
    task_id = models.CharField(max_length=64, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    worker_host = models.CharField(max_length=255, blank=True)
    scoring = models.JSONField(default=dict, blank=True, help_text="The latest scoring job: status, project, counts.")
    generation = models.JSONField(
        default=dict, blank=True, help_text="The latest job sampling this policy's responses into a labeling round."
    )
    comparison = models.JSONField(
        default=dict, blank=True,
        help_text="The latest blind comparison batch of this policy against its reference: job state, round, the "
        "reward model's predicted win rate.",
    )  # fmt: skip
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_steps=0) | Q(step__lte=models.F("total_steps")), name="run_step_within_total"
            ),
        ]
        indexes = [models.Index(fields=["project", "-created_at"], name="run_project_idx")]

    def __str__(self) -> str:
        return f"Run {self.pk} {self.name or self.get_kind_display()} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def accuracy(self) -> float | None:
        """Held-out pairwise accuracy (metrics.json's eval/accuracy), once the run succeeded."""
        return (self.metrics or {}).get("eval/accuracy")

    @property
    def percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        return min(100, round(100 * self.step / self.total_steps)) if self.total_steps else 0


class RunMetric(models.Model):
    """One logged value (train/loss, eval/accuracy, ...) at one step: the curves poll these by increasing id."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="metric_points")
    step = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    value = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "id"]
        indexes = [models.Index(fields=["run", "id"], name="runmetric_run_idx")]

    def __str__(self) -> str:
        return f"{self.name}@{self.step} = {self.value:g}"


class ResponseScore(models.Model):
    """A reward model's score for one response (higher = better)."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="scores")
    response = models.ForeignKey("annotation.Response", on_delete=models.CASCADE, related_name="reward_scores")
    score = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "response"], name="score_once_per_run")]

    def __str__(self) -> str:
        return f"run {self.run_id} · response {self.response_id}: {self.score:.3f}"
