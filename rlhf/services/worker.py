"""The background task's body: train a run, record its progress, store the outcome (never leaving it running).

Every kind trains the same way (rlhf/training/registry.py): the stage's config from the run's JSON, then its training
function here (launcher `inprocess`) or the stage's command line under `accelerate launch` in a subprocess
(`accelerate:<config>`, rlhf/training/launch.py); the final metrics are the output dir's metrics.json."""

import json
import logging
import math
import os
import socket
import time
import traceback
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import yaml
from django.db import close_old_connections
from django.utils import timezone

from rlhf.models import RunMetric, TrainingRun
from rlhf.services.common import (
    ERROR_TAIL_CHARS,
    FLUSH_S,
    LOG_LINES,
    RUN_WORKER_STOPPED,
    SKIPPED_POINTS,
    timestamped,
)
from rlhf.services.heartbeat import heartbeat
from rlhf.services.prepare import run_inputs_prepare
from rlhf.training.eta import MovingEta, chain_stage_label
from rlhf.training.launch import INPROCESS, accelerate_config_path, launch_stage, launcher_parse
from rlhf.training.progress import ProgressCallback, ProgressEvent, TrainingCancelled
from rlhf.training.registry import Stage, stage_get

logger = logging.getLogger(__name__)

# --- execute (the worker) ------------------------------------------------------------------------------------------


class RunRecorder:
    """The progress callback handed to a training function. Keeps the log tail and metric points in memory and writes
    them with step/total/ETA at most every `flush_s` seconds (and at every eval and at the end); raises
    TrainingCancelled once a cancel was requested."""

    FORCE_STAGES = {"setup", "eval", "save", "done"}

    def __init__(
        self,
        run: TrainingRun,
        flush_s: float = FLUSH_S,
        clock: Callable[[], float] = time.monotonic,
        observer: ProgressCallback | None = None,
    ):
        self.run_id, self.flush_s, self.clock, self.observer = run.pk, flush_s, clock, observer
        self.lines: deque[str] = deque(run.log_tail.splitlines() if run.log_tail else [], maxlen=LOG_LINES)
        self.points: list[RunMetric] = []
        self.step, self.total, self.stage, self.eta_s = 0, run.total_steps, "setup", None
        self.last_flush = -math.inf
        self.eta = MovingEta()  # the current stage's time left, from a moving window of reports
        self.chain_stage: int | None = None  # a chain run's stage number (its events carry `chain/stage`)

    def log(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.lines.append(timestamped(line))

    def __call__(self, event: ProgressEvent) -> None:
        if self.observer is not None:  # e.g. the foreground command's progress bar
            self.observer(event)
        if event.message:
            self.log(event.message)
        self.total = max(int(event.total_steps or 0), 0)
        self.step = min(max(int(event.step), 0), self.total) if self.total else max(int(event.step), 0)
        self.event_stage = event.stage
        if "chain/stage" in event.metrics:
            self.chain_stage = int(event.metrics["chain/stage"])
        # A chain's stages are named with their number (the page shows "3/4 reward model"), the run's end stays "done".
        self.stage = chain_stage_label(self.chain_stage) if self.chain_stage and event.stage != "done" else event.stage
        for name, value in event.metrics.items():
            if name in SKIPPED_POINTS:
                continue
            if isinstance(value, int | float) and math.isfinite(value):
                self.points.append(RunMetric(run_id=self.run_id, step=self.step, name=name[:100], value=float(value)))
        self._estimate()
        due = event.stage in self.FORCE_STAGES or self.clock() - self.last_flush >= self.flush_s
        if due and self.flush():
            raise TrainingCancelled(f"Run {self.run_id} was cancelled.")

    def _estimate(self) -> None:
        self.eta_s = self.eta.update(self.clock(), self.step, self.total, phase=self.chain_stage)
        if self.event_stage == "done":
            self.eta_s = 0.0

    def flush(self) -> bool:
        """Write what is buffered; return whether a cancel was requested."""
        self.last_flush = self.clock()
        if self.points:
            RunMetric.objects.bulk_create(self.points)
            self.points = []
        TrainingRun.objects.filter(pk=self.run_id).update(
            step=self.step, total_steps=self.total, stage=self.stage[:20], eta_s=self.eta_s,
            log_tail="\n".join(self.lines), heartbeat_at=timezone.now(),
        )  # fmt: skip
        return bool(TrainingRun.objects.filter(pk=self.run_id).values_list("cancel_requested", flat=True).first())


def _heartbeat(run_id: int) -> AbstractContextManager[None]:
    """Beat while the run trains, even through long steps (model loading, a big eval) that report no progress."""

    def beat() -> None:
        TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING).update(heartbeat_at=timezone.now())

    return heartbeat(beat, name=f"run-{run_id}-heartbeat")


def _claim(run_id: int) -> TrainingRun | None:
    """Take a queued run: one conditional UPDATE (queued -> running), so of two executions of the same run only one
    changes the row; the other gets None. The second guard: the task row itself was already claimed by django-tasks-db
    (oldest ready first, SELECT ... FOR UPDATE SKIP LOCKED), so workers on any hosts never take one task twice."""
    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED, cancel_requested=False).update(
        status=TrainingRun.Status.RUNNING, started_at=now, heartbeat_at=now, stage="setup",
        worker_pid=os.getpid(), worker_host=socket.gethostname()[:255],
    )  # fmt: skip
    return TrainingRun.objects.get(pk=run_id) if claimed else None


def training_run_execute(*, run_id: int, observer: ProgressCallback | None = None) -> str:
    """The body of the background task: train, record progress, store the outcome. Returns the final status.

    Only a queued run is taken (a cancelled or already running one is left alone). Whatever happens in training
    ends in succeeded, cancelled or failed (with the error and the traceback's tail)."""
    run = _claim(run_id)
    if run is None:
        return TrainingRun.objects.filter(pk=run_id).values_list("status", flat=True).first() or "missing"
    recorder = RunRecorder(run, observer=observer)
    recorder.log(f"Started by worker pid {run.worker_pid} on {run.worker_host}.")
    with _heartbeat(run_id):
        try:
            recorder(ProgressEvent(0, 0, message="Writing the run's inputs from the project.", stage="setup"))
            recorder.log(run_inputs_prepare(run))
            output_dir, metrics = _train(run, recorder)
        except TrainingCancelled:
            return _finish(recorder, TrainingRun.Status.CANCELLED, message="Cancelled.")
        except Exception as exc:  # noqa: BLE001 - every failure is stored on the run
            error = f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()[-ERROR_TAIL_CHARS:]}"
            return _finish(recorder, TrainingRun.Status.FAILED, message=f"Failed: {exc}", error=error)
        except BaseException as exc:  # SystemExit / KeyboardInterrupt: the worker is being stopped
            error = RUN_WORKER_STOPPED.format(name=type(exc).__name__)
            _finish(recorder, TrainingRun.Status.FAILED, message=error, error=error)
            raise
    return _finish(recorder, TrainingRun.Status.SUCCEEDED, message="Succeeded.", metrics=metrics, output=output_dir)


def _train(run: TrainingRun, recorder: RunRecorder) -> tuple[Path, dict]:
    """Train the run as its registry entry says; returns (output dir, final metrics without the per-step history,
    which is in RunMetric already). Torch and TRL are imported here only: they stay out of the web process."""
    stage = stage_get(run.kind)
    cfg = stage.config_from(run.config)
    launcher, spec = launcher_parse(getattr(cfg, "launcher", INPROCESS))
    if launcher == INPROCESS:
        output_dir = stage.train(cfg, progress=recorder)
    else:
        output_dir = _launched(run, stage, cfg, spec, recorder)
    metrics_file = Path(output_dir) / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return Path(output_dir), {k: v for k, v in metrics.items() if k != "history"}


def _launched(run: TrainingRun, stage: Stage, cfg, spec: str, recorder: RunRecorder) -> Path:
    """The stage under `accelerate launch` (its own process group): its progress lines feed the recorder, its other
    output the log tail; a cancel (seen at a progress line or a tick) stops the whole group."""
    config_file = Path(run.run_dir or Path(cfg.output_dir).parent) / "launch_config.yaml"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(yaml.safe_dump({**cfg.to_dict(), "launcher": INPROCESS}, sort_keys=False))

    def tick() -> None:  # flush and check for a cancel even while the stage prints nothing
        if recorder.clock() - recorder.last_flush >= recorder.flush_s and recorder.flush():
            raise TrainingCancelled(f"Run {run.pk} was cancelled.")

    return launch_stage(
        module=stage.module, accelerate_config=accelerate_config_path(spec), config_file=config_file,
        output_dir=cfg.output_dir, progress=recorder, log=recorder.log, tick=tick, tick_s=recorder.flush_s,
    )  # fmt: skip


def _finish(
    recorder: RunRecorder, status: str, *, message: str, error: str = "", metrics: dict | None = None, output=None
) -> str:
    close_old_connections()
    recorder.log(message)
    try:
        recorder.flush()
    except Exception:  # noqa: BLE001 - the final status below matters more than the last progress write
        logger.exception("Run %s: could not write its last progress", recorder.run_id)
    fields = {"status": status, "finished_at": timezone.now(), "error": error, "log_tail": "\n".join(recorder.lines)}
    if status == TrainingRun.Status.SUCCEEDED:
        fields |= {"metrics": metrics or {}, "output_dir": str(output), "eta_s": 0.0, "stage": "done"}
        fields["step"] = recorder.total or recorder.step
    else:
        fields["eta_s"] = None
    TrainingRun.objects.filter(pk=recorder.run_id).update(**fields)
    return status
