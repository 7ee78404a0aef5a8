"""Training runs: create (export snapshot + enqueue), cancel, and fail runs whose worker died."""

import json
import logging
import os
import shutil
import socket
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.exports.options import ExportOptions
from annotation.models import Project, Ranking
from annotation.services.exports import preference_export_create
from rlhf.models import TrainingRun
from rlhf.selectors import human_agreement_get
from rlhf.services.model_refs import config_models_check
from rlhf.training.config import RewardModelConfig

logger = logging.getLogger(__name__)


FLUSH_S = 1.5  # the worker writes progress at most this often (and at every eval and at the end)
HEARTBEAT_S = 20.0  # a running run's heartbeat, written by a thread independent of the training steps
STALE_AFTER_S = 2 * 60  # a running job whose heartbeat is older than this has lost its worker
LOG_LINES = 200
ERROR_TAIL_CHARS = 4000
SCORE_CHUNK = 256
SKIPPED_POINTS = {"train/elapsed_s", "train/eta_s"}  # kept on the run itself (eta_s), not as curves

RUN_KIND_UNSUPPORTED = "Only reward-model runs can be trained here so far (kind {kind!r})."
RUN_CONFIG_UNKNOWN = "Unknown config field(s): {names}."
RUN_CONFIG_INVALID = "Invalid config: {error}"
RUN_NO_PAIRS = "The export of project '{slug}' has no training pairs yet: rank some prompts first."
RUN_FINISHED = "Run {id} has already finished ({status})."
RUN_NOT_SCORABLE = "Run {id} has no trained model to score with (status {status})."
RUN_WORKER_LOST = (
    "The worker running this run stopped without finishing it ({why}). Marked failed when a worker started at {at}; "
    "create the run again to retry."
)
RUN_WORKER_STOPPED = "The worker was stopped while training ({name}); the run did not finish."
# Paths and bookkeeping fields a caller may not choose: the service sets them per run.
MANAGED_CONFIG_FIELDS = {"train_file", "eval_file", "output_dir", "human_agreement"}


def runs_root() -> Path:
    """Where run directories go: settings.RLHF_RUNS_DIR, else $RLHF_RUNS_DIR, else <BASE_DIR>/runs."""
    root = getattr(settings, "RLHF_RUNS_DIR", None) or os.environ.get("RLHF_RUNS_DIR") or settings.BASE_DIR / "runs"
    return Path(root).resolve()


def timestamped(text: str) -> str:
    return f"{timezone.now():%Y-%m-%d %H:%M:%S} {text}"


def _append_log(tail: str, line: str) -> str:
    lines = (tail.splitlines() if tail else [])[-(LOG_LINES - 1) :]
    return "\n".join([*lines, timestamped(line)])


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
) -> TrainingRun:
    """Snapshot the project's preference export into runs/<id>/data/, save the run as queued and (after commit)
    enqueue its task. Returns at once; nothing is trained here. Raises ValidationError (nothing saved) on a bad
    config or an export without training pairs."""
    if kind != TrainingRun.Kind.REWARD_MODEL:
        raise ValidationError(RUN_KIND_UNSUPPORTED.format(kind=kind))
    resolved = reward_config_validate(config or {})
    config_models_check(config=config or {}, project=project, user=user)
    export_options = dict(export_options or {})
    if resolved["use_margin"]:  # the loss needs the export's margin column: Llama 2's strength margin for A/B
        export_options.setdefault("margin", "strength" if project.is_pairwise else "rank-diff")
    run = TrainingRun.objects.create(project=project, kind=kind, name=name, created_by=user, config=resolved)
    run_dir = runs_root() / str(run.pk)
    try:
        snapshot = _export_snapshot(project=project, data_dir=run_dir / "data", options=export_options)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    ceiling = human_agreement_get(project=project, prompt_ids=snapshot.pop("test_prompt_ids"))
    resolved |= {
        "train_file": snapshot["train_file"],
        "eval_file": snapshot["eval_file"],
        "output_dir": str(run_dir / "model"),
        "human_agreement": ceiling["overall"],
    }
    run.config = resolved
    run.name = name or f"{project.slug} reward model #{run.pk}"
    run.export = {**snapshot, "human_agreement": ceiling}
    run.run_dir, run.data_dir, run.output_dir = str(run_dir), str(run_dir / "data"), resolved["output_dir"]
    run.log_tail = timestamped(f"Queued: {snapshot['train_pairs']} training pairs, {snapshot['test_pairs']} held out.")
    run.save()
    if enqueue:
        transaction.on_commit(lambda: training_run_enqueue(run=run))
    return run


def _export_snapshot(*, project: Project, data_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Write the project's JSONL export (train.jsonl, test.jsonl, export_meta.json) into data_dir, exactly as
    `manage.py export_preferences` would, plus eval.jsonl: test.jsonl with each pair's guideline version, for the
    per-version accuracy. Raises ValidationError when there is nothing to train on."""
    try:
        export_options = ExportOptions(**options)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"Invalid export options: {exc}") from None
    if export_options.dataset != "pairs":
        raise ValidationError("A reward model trains on preference pairs: export dataset must be pairs.")
    result = preference_export_create(project=project, out=data_dir, fmt="jsonl", options=export_options)
    train, test, evaluation = data_dir / "train.jsonl", data_dir / "test.jsonl", data_dir / "eval.jsonl"
    train_pairs = _count_lines(train)
    if not train_pairs:
        raise ValidationError(RUN_NO_PAIRS.format(slug=project.slug))
    test_prompt_ids, test_pairs = _eval_file_write(test, evaluation)
    return {
        "options": export_options.as_dict(),
        "train_file": str(train),
        "eval_file": str(evaluation) if test_pairs else None,
        "train_pairs": train_pairs,
        "test_pairs": test_pairs,
        "content_hash": result.meta.get("content_hash"),
        "counts": result.meta.get("counts", {}),
        "test_prompt_ids": test_prompt_ids,
    }


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _eval_file_write(test: Path, evaluation: Path) -> tuple[list[int], int]:
    """Copy the test split adding `guideline_version` (the ranking's; for aggregated pairs the prompt's rankings'
    version when they share one, else 'mixed'). Returns the test prompt ids and the number of pairs."""
    rows = [json.loads(line) for line in test.read_text().splitlines() if line.strip()] if test.exists() else []
    prompt_ids = sorted({int(row["prompt_id"]) for row in rows if row.get("prompt_id") is not None})
    by_ranking, by_prompt = {}, defaultdict(set)
    for ranking_id, prompt_id, version in Ranking.objects.filter(prompt_id__in=prompt_ids, is_current=True).values_list(
        "id", "prompt_id", "guideline_version"
    ):
        by_ranking[ranking_id] = version
        by_prompt[prompt_id].add(version)
    with evaluation.open("w", encoding="utf-8") as out:
        for row in rows:
            versions = by_prompt.get(row.get("prompt_id"), set())
            version = by_ranking.get(row.get("ranking_id"), next(iter(versions)) if len(versions) == 1 else "mixed")
            row["guideline_version"] = version
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return prompt_ids, len(rows)


def training_run_enqueue(*, run: TrainingRun) -> TrainingRun:
    from rlhf.tasks import training_run_task  # noqa: PLC0415 - tasks import this module

    result = training_run_task.enqueue(run_id=run.pk)
    TrainingRun.objects.filter(pk=run.pk).update(task_id=str(result.id))
    run.task_id = str(result.id)
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
        run.log_tail = _append_log(run.log_tail, "Cancelled before it started.")
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
            log_tail=_append_log(run.log_tail, error),
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
