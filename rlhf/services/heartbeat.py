"""Heartbeats of background jobs and the sweep that fails the jobs whose worker stopped beating.

A training run beats on its own row (`heartbeat_at`, written by the progress recorder and by a thread in the worker);
a scoring, generation or comparison job beats inside its state on the run (`scoring` / `generation` /
`comparison`, a JSON dict whose `heartbeat_at` is an ISO timestamp). `training_run_sweep_stale` marks every running
job whose last beat is older than `max_age` failed; every live worker runs it periodically (`sweeper_start`) and the
run page / API run it when they show a running job. Files are left alone: partial output stays for diagnosis.
"""

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.services.imports import import_batches_sweep_stale
from rlhf.models import TrainingRun
from rlhf.services.common import HEARTBEAT_S, STALE_AFTER_S, append_log

logger = logging.getLogger(__name__)

STALE_MAX_AGE = timedelta(seconds=STALE_AFTER_S)
SWEEP_EVERY_S = 30.0  # how often a live worker sweeps
JSON_JOBS = ("scoring", "generation", "comparison")  # the jobs whose state is a JSON dict on the run
JOB_WORKER_STOPPED = (
    "worker stopped (no heartbeat since {since}): its worker was killed or lost. Partial files are kept; "
    "start the job again to retry."
)


@contextmanager
def heartbeat(beat: Callable[[], None], *, every_s: float = HEARTBEAT_S, name: str = "heartbeat") -> Iterator[None]:
    """Call `beat()` every `every_s` seconds in a thread while the body runs, even through long stretches (model
    loading, a big eval or chunk) that report no progress. A failed beat (a locked database) is logged, not fatal."""
    stop = threading.Event()

    def loop() -> None:
        try:
            while not stop.wait(every_s):
                try:
                    beat()
                except Exception:  # noqa: BLE001 - the next beat may well succeed
                    logger.warning("%s: a heartbeat could not be written", name, exc_info=True)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


class JobState:
    """The state of a scoring or generation job, kept in the run's JSON field `field`; every write carries a
    heartbeat, and `beating()` keeps beating while the job runs."""

    def __init__(self, *, run_id: int, field: str, **state: Any):
        now = timezone.now().isoformat()
        self.run_id, self.field, self.lock = run_id, field, threading.Lock()
        self.state: dict[str, Any] = {"status": "running", "started_at": now, **state}

    def write(self, **changes: Any) -> None:
        with self.lock:
            self.state.update(changes, heartbeat_at=timezone.now().isoformat())
            TrainingRun.objects.filter(pk=self.run_id).update(**{self.field: dict(self.state)})

    def beat(self) -> None:
        with self.lock:
            if self.state.get("status") != "running":
                return
            self.state["heartbeat_at"] = timezone.now().isoformat()
            running = {f"{self.field}__status": "running"}  # never revive a job the sweep has failed
            TrainingRun.objects.filter(pk=self.run_id, **running).update(**{self.field: dict(self.state)})

    @contextmanager
    def beating(self, every_s: float = HEARTBEAT_S) -> Iterator["JobState"]:
        with heartbeat(self.beat, every_s=every_s, name=f"run-{self.run_id}-{self.field}-heartbeat"):
            yield self


# --- the sweep ----------------------------------------------------------------------------------------------------


def _since(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S %Z}".strip() if moment else "it was queued"


def _parse(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def training_run_sweep_stale(
    *, now: datetime | None = None, max_age: timedelta = STALE_MAX_AGE
) -> list[tuple[int, str]]:
    """Mark failed every running job (training run, scoring, generation) whose heartbeat is older than `max_age`, or
    which never beat and started longer ago; its files are left alone. Returns (run id, job) per job marked. Each
    update is guarded by the heartbeat it judged, so a job that beat in between is left running."""
    now = now or timezone.now()
    cutoff = now - max_age
    return [*_sweep_runs(now, cutoff), *_sweep_json_jobs(now, cutoff)]


def _sweep_runs(now: datetime, cutoff: datetime) -> list[tuple[int, str]]:
    stale = (
        TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING)
        .annotate(last_beat=Coalesce("heartbeat_at", "started_at", "created_at"))
        .filter(last_beat__lt=cutoff)
        .values_list("pk", "heartbeat_at", "last_beat", "log_tail")
    )
    marked = []
    for pk, beat, last_beat, log_tail in stale:
        error = JOB_WORKER_STOPPED.format(since=_since(last_beat))
        same_beat = Q(heartbeat_at=beat) if beat else Q(heartbeat_at__isnull=True)
        updated = TrainingRun.objects.filter(same_beat, pk=pk, status=TrainingRun.Status.RUNNING).update(
            status=TrainingRun.Status.FAILED, error=error, finished_at=now, eta_s=None,
            log_tail=append_log(log_tail, error),
        )  # fmt: skip
        if updated:
            marked.append((pk, "training"))
            logger.warning("Run %s: %s", pk, error)
    return marked


def _sweep_json_jobs(now: datetime, cutoff: datetime) -> list[tuple[int, str]]:
    running = Q()
    for field in JSON_JOBS:
        running |= Q(**{f"{field}__status": "running"})
    marked = []
    for pk, *states in TrainingRun.objects.filter(running).values_list("pk", *JSON_JOBS):
        for field, state in zip(JSON_JOBS, states, strict=True):
            if not isinstance(state, dict) or state.get("status") != "running":
                continue
            last_beat = _parse(state.get("heartbeat_at") or state.get("started_at") or state.get("queued_at"))
            if last_beat is not None and last_beat >= cutoff:
                continue
            error = JOB_WORKER_STOPPED.format(since=_since(last_beat))
            failed = {**state, "status": "failed", "error": error, "finished_at": now.isoformat()}
            beat = state.get("heartbeat_at")
            same_beat = {f"{field}__heartbeat_at": beat} if beat else {f"{field}__heartbeat_at__isnull": True}
            guard = {f"{field}__status": "running", **same_beat}
            if TrainingRun.objects.filter(pk=pk, **guard).update(**{field: failed}):
                marked.append((pk, field))
                logger.warning("Run %s, %s job: %s", pk, field, error)
    return marked


def training_run_sweep_if_running(*, run: TrainingRun) -> TrainingRun:
    """For the pages and the API: when the run shows a running job, sweep first (so a dead worker's job is shown
    failed, not running forever) and reload the run if the sweep marked anything."""
    jobs_running = any((getattr(run, field) or {}).get("status") == "running" for field in JSON_JOBS)
    if (run.status == TrainingRun.Status.RUNNING or jobs_running) and training_run_sweep_stale():
        run.refresh_from_db()
    return run


def sweeper_start(
    *, every_s: float = SWEEP_EVERY_S, max_age: timedelta = STALE_MAX_AGE, stop: threading.Event | None = None
) -> threading.Thread:
    """The live worker's periodic sweep: a daemon thread that sweeps at once, then every `every_s` seconds, for as
    long as the worker process lives (also while it runs a task) or until `stop` is set."""
    stop = stop or threading.Event()

    def sweep() -> None:
        marked = training_run_sweep_stale(max_age=max_age)
        if marked:
            logger.warning("Marked failed (no heartbeat): %s", ", ".join(f"run {pk} {job}" for pk, job in marked))
        if imports := import_batches_sweep_stale():  # an import whose process died: its staged rows are deleted
            logger.warning("Failed %d import(s) that stopped writing; their staged rows were deleted", imports)

    def loop() -> None:
        try:
            while not stop.is_set():
                try:
                    sweep()
                except Exception:  # noqa: BLE001 - a locked database now does not stop the next sweep
                    logger.warning("The stale-job sweep failed", exc_info=True)
                stop.wait(every_s)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, name="stale-job-sweeper", daemon=True)
    thread.start()
    return thread
