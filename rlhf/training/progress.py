"""The contract between a training function and whoever runs it (the CLI, the background worker, a test).

A training function takes `progress: ProgressCallback | None`. It calls it at the start (step 0), after every
logging step and at the end, with a ProgressEvent. The caller may stop the run by raising TrainingCancelled from the
callback: the training function lets it propagate (after saving nothing further), and the caller marks the run
cancelled. Any other exception means the run failed.
"""

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field


class TrainingCancelled(Exception):  # noqa: N818 - it is a signal, not an error
    """Raised by a progress callback to stop training."""


@dataclass
class ProgressEvent:
    step: int
    total_steps: int
    metrics: dict[str, float] = field(default_factory=dict)  # slash names: train/loss, eval/accuracy, reward/mean...
    message: str = ""  # a human line for the log tail
    stage: str = "train"  # "setup" | "train" | "eval" | "save" | "done"


ProgressCallback = Callable[[ProgressEvent], None]


def emit(progress: ProgressCallback | None, event: ProgressEvent) -> None:
    if progress is not None:
        progress(event)


# A stage launched as a subprocess (`accelerate launch -m rlhf.training.<stage>`) reports its events on stdout, one
# JSON line each after this prefix, from its main process only; the worker reads them back (rlhf/training/launch.py).
EVENT_PREFIX = "@rlhf-progress "


def event_line(event: ProgressEvent) -> str:
    metrics = {k: v for k, v in event.metrics.items() if isinstance(v, int | float) and math.isfinite(v)}
    data = {"step": event.step, "total_steps": event.total_steps, "metrics": metrics,
            "message": event.message, "stage": event.stage}  # fmt: skip
    return EVENT_PREFIX + json.dumps(data, allow_nan=False, default=str)


def event_from_line(line: str) -> ProgressEvent | None:
    """The event a progress line carries; None for any other line (or a garbled one)."""
    if not line.startswith(EVENT_PREFIX):
        return None
    try:
        data = json.loads(line[len(EVENT_PREFIX) :])
        metrics = {str(k): float(v) for k, v in (data.get("metrics") or {}).items() if isinstance(v, int | float)}
        return ProgressEvent(int(data.get("step") or 0), int(data.get("total_steps") or 0), metrics,
                             str(data.get("message") or ""), str(data.get("stage") or "train"))  # fmt: skip
    except (ValueError, TypeError, AttributeError):
        return None
