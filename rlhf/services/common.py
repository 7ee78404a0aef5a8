"""What the run services share, at the bottom of their imports: timings, limits, messages, the runs directory and
the log-line helpers. Imports no other service module (tests/test_import_graph.py keeps rlhf/ free of cycles)."""

import os
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from rlhf.training.registry import STAGES

FLUSH_S = 1.5  # the worker writes progress at most this often (and at every eval and at the end)
HEARTBEAT_S = 20.0  # a running run's heartbeat, written by a thread independent of the training steps
STALE_AFTER_S = 2 * 60  # a running job whose heartbeat is older than this has lost its worker
LOG_LINES = 200
ERROR_TAIL_CHARS = 4000
SCORE_CHUNK = 256
SKIPPED_POINTS = {"train/elapsed_s", "train/eta_s"}  # kept on the run itself (eta_s), not as curves

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
# Paths and bookkeeping fields a caller may not choose for a reward-model run: the service sets them per run.
MANAGED_CONFIG_FIELDS = set(STAGES["reward_model"].managed)


def runs_root() -> Path:
    """Where run directories go: settings.RLHF_RUNS_DIR, else $RLHF_RUNS_DIR, else <BASE_DIR>/runs."""
    root = getattr(settings, "RLHF_RUNS_DIR", None) or os.environ.get("RLHF_RUNS_DIR") or settings.BASE_DIR / "runs"
    return Path(root).resolve()


def timestamped(text: str) -> str:
    return f"{timezone.now():%Y-%m-%d %H:%M:%S} {text}"


def append_log(tail: str, line: str) -> str:
    lines = (tail.splitlines() if tail else [])[-(LOG_LINES - 1) :]
    return "\n".join([*lines, timestamped(line)])


def prompt_input(prompt, conversational: bool) -> str | list[dict]:
    """The prompt as the export gave it to training: chat messages; in a project with chat prompts, a plain prompt
    as one user turn (the export makes the whole file conversational); else the text."""
    if prompt.messages:
        return prompt.messages
    return [{"role": "user", "content": prompt.text}] if conversational else prompt.text
