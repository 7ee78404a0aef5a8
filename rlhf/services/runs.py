"""Training runs: create any kind (a reward model here, policy kinds in ppo.py: check, save queued, enqueue; the worker
writes the inputs, rlhf/services/prepare.py), cancel, and fail runs whose worker died."""

import logging
import os
import socket
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.exports.options import ExportOptions
from annotation.models import Project
from rlhf.models import TrainingRun
from rlhf.services.common import (  # noqa: F401 - re-exported: rlhf.services.runs is where callers found them
    ERROR_TAIL_CHARS,
    FLUSH_S,
    HEARTBEAT_S,
    LOG_LINES,
    MANAGED_CONFIG_FIELDS,
    RUN_CONFIG_INVALID,
    RUN_CONFIG_UNKNOWN,
    RUN_FINISHED,
    RUN_NO_PAIRS,
    RUN_NOT_SCORABLE,
    RUN_WORKER_LOST,
    RUN_WORKER_STOPPED,
    SCORE_CHUNK,
    SKIPPED_POINTS,
    STALE_AFTER_S,
    append_log,
    runs_root,
    timestamped,
)
from rlhf.services.model_refs import config_models_check, launcher_check
from rlhf.services.ppo import RECIPE_KIND, policy_run_create
from rlhf.services.prepare import export_pending, run_inputs_check
from rlhf.services.queue import training_run_enqueue
from rlhf.training.config import RewardModelConfig
from rlhf.training.registry import STAGES

logger = logging.getLogger(__name__)

RUN_KIND_UNKNOWN = "Unknown run kind {kind!r}; use one of: {choices}."


# --- create ------------------------------------------------------------------------------------------------------


def reward_config_validate(config: dict[str, Any]) -> dict[str, Any]:
    """The caller's config fields checked against RewardModelConfig (paths excluded); raises ValidationError."""
    known = set(RewardModelConfig.__dataclass_fields__) - MANAGED_CONFIG_FIELDS
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValidationError(RUN_CONFIG_UNKNOWN.format(names=", ".join(unknown)))
    try:
        return RewardModelConfig(**{**config, "train_file": "-"}).to_dict() | {"train_file": ""}
    except (TypeError, ValueError) as exc:
        raise ValidationError(RUN_CONFIG_INVALID.format(error=exc)) from None


@transaction.atomic
def training_run_create(
    *,
    project: Project,
    user: AbstractUser | None = None,
    kind: str = TrainingRun.Kind.REWARD_MODEL,
    name: str = "",
    config: dict[str, Any] | None = None,
    export_options: dict[str, Any] | None = None,
    enqueue: bool = True,
    policy: "str | TrainingRun" = "",
    reward_run: "int | TrainingRun | None" = None,
    second_reward_run: "int | TrainingRun | None" = None,
    ensemble_reward_runs: "list[int | TrainingRun] | None" = None,
    recipe: str = "",
) -> TrainingRun:
    """Create a run of any kind (the registry's): a policy kind goes to `policy_run_create` (with `policy` and
    `reward_run`); a reward model snapshots the project's preference export into runs/<id>/data/. Saves the run as
    queued and (after commit) enqueues its task. Returns at once; nothing is trained here. Raises ValidationError
    (nothing saved) on a bad config or an export without training pairs."""
    if kind not in STAGES:
        raise ValidationError(RUN_KIND_UNKNOWN.format(kind=kind, choices=", ".join(STAGES)))
    if kind != TrainingRun.Kind.REWARD_MODEL:
        return policy_run_create(
            project=project, kind=kind, user=user, name=name, config=config, policy=policy, reward_run=reward_run,
            second_reward_run=second_reward_run, ensemble_reward_runs=ensemble_reward_runs,
            export_options=export_options, recipe=recipe, enqueue=enqueue,
        )  # fmt: skip
    if recipe:
        raise ValidationError(RECIPE_KIND.format(kind=kind))
    resolved = reward_config_validate(config or {})
    config_models_check(config=config or {}, project=project, user=user)
    launcher_check(config=resolved, user=user)
    export_options = dict(export_options or {})
    if resolved["use_margin"]:  # the loss needs the export's margin column: Llama 2's strength margin for A/B
        export_options.setdefault("margin", "strength" if project.is_pairwise else "rank-diff")
    try:
        options = ExportOptions(**export_options).as_dict()
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"Invalid export options: {exc}") from None
    run_inputs_check(stage=STAGES[kind], project=project)
    run = TrainingRun.objects.create(project=project, kind=kind, name=name, created_by=user, config=resolved)
    run_dir = runs_root() / str(run.pk)
    run.config = resolved | {"output_dir": str(run_dir / "model")}
    run.name = name or f"{project.slug} reward model #{run.pk}"
    run.export = export_pending(options)
    run.run_dir, run.data_dir, run.output_dir = str(run_dir), str(run_dir / "data"), run.config["output_dir"]
    run.log_tail = timestamped("Queued: the worker writes the export snapshot when it takes the run.")
    run.save()
    if enqueue:
        transaction.on_commit(lambda: training_run_enqueue(run=run))
    return run


# --- cancel, stale -------------------------------------------------------------------------------------------------


@transaction.atomic
def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one is asked to stop (the worker stops it at its next progress
    report, within a couple of seconds of a logging step). A finished run raises ValidationError."""
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.status == TrainingRun.Status.QUEUED:
        run.status, run.finished_at, run.eta_s = TrainingRun.Status.CANCELLED, timezone.now(), None
        run.cancel_requested = True
        run.log_tail = append_log(run.log_tail, "Cancelled before it started.")
        run.save(update_fields=["status", "finished_at", "eta_s", "cancel_requested", "log_tail"])
    elif run.status == TrainingRun.Status.RUNNING:
        run.cancel_requested = True
        run.save(update_fields=["cancel_requested"])
    else:
        raise ValidationError(RUN_FINISHED.format(id=run.pk, status=run.status))
    return run


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def training_run_mark_stale(*, stale_after_s: float = STALE_AFTER_S) -> list[int]:
    """Mark failed every 'running' run whose worker is gone: its pid no longer exists on this host, or its heartbeat
    is older than `stale_after_s` (a worker elsewhere). Returns the ids marked. Called when a worker starts."""
    now, host = timezone.now(), socket.gethostname()
    marked = []
    for run in TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING):
        why = _stale_reason(run, now=now, host=host, stale_after_s=stale_after_s)
        if why is None:
            continue
        error = RUN_WORKER_LOST.format(why=why, at=f"{now:%Y-%m-%d %H:%M:%S}")
        updated = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
            status=TrainingRun.Status.FAILED, error=error, finished_at=now, eta_s=None,
            log_tail=append_log(run.log_tail, error),
        )  # fmt: skip
        if updated:
            marked.append(run.pk)
            logger.warning("Run %s: %s", run.pk, error)
    return marked


def _stale_reason(run: TrainingRun, *, now, host: str, stale_after_s: float) -> str | None:
    if run.worker_host == host and run.worker_pid and run.worker_pid != os.getpid() and not _pid_alive(run.worker_pid):
        return f"worker process {run.worker_pid} on {host} is gone"
    beat = run.heartbeat_at or run.started_at
    if beat is None or now - beat > timedelta(seconds=stale_after_s):
        return f"no heartbeat since {beat:%Y-%m-%d %H:%M:%S}" if beat else "it never reported"
    return None
