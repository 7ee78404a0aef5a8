"""The contract between a training function and whoever runs it (the CLI, the background worker, a test).

A training function takes `progress: ProgressCallback | None`. It calls it at the start (step 0), after every
logging step and at the end, with a ProgressEvent. The caller may stop the run by raising TrainingCancelled from the
callback: the training function lets it propagate (after saving nothing further), and the caller marks the run
cancelled. Any other exception means the run failed.
"""

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
