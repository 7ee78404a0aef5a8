"""Writes on training runs. A run's life: queued -> running -> succeeded | failed | cancelled.

- `runs`: create (snapshot the export, save the run queued, enqueue its task), cancel, and fail the runs a dead
  worker left 'running'.
- `worker`: `training_run_execute`, the background task's body, with the progress recorder.
- `scoring`: a trained reward model's score for every response of a project.
- `heartbeat`: the jobs' heartbeats and `training_run_sweep_stale`, which fails the jobs that stopped beating.

`training_run_execute` never leaves a run 'running': every way out of the training function (success,
TrainingCancelled, any exception, the worker being stopped) ends in a final status. A worker that is killed outright
(OOM, SIGKILL, power) cannot do that itself, so `training_run_mark_stale` runs whenever a worker starts
(`manage.py rlhf_worker`) and `training_run_sweep_stale` runs in every live worker every 30 s and on the run page;
both mark such runs (and scoring / generation jobs, by their heartbeat) *failed*, not re-queued: a crash that killed
the worker once (out of memory, say) would kill it again, in a loop; a person decides whether to start it again.
"""

from rlhf.services.heartbeat import training_run_sweep_if_running, training_run_sweep_stale
from rlhf.services.runs import (
    MANAGED_CONFIG_FIELDS,
    STALE_AFTER_S,
    reward_config_validate,
    runs_root,
    training_run_cancel,
    training_run_create,
    training_run_enqueue,
    training_run_mark_stale,
)
from rlhf.services.scoring import response_scores_compute, response_scores_execute, scoring_enqueue
from rlhf.services.worker import RunRecorder, training_run_execute

__all__ = [
    "MANAGED_CONFIG_FIELDS",
    "STALE_AFTER_S",
    "RunRecorder",
    "response_scores_compute",
    "response_scores_execute",
    "reward_config_validate",
    "runs_root",
    "scoring_enqueue",
    "training_run_cancel",
    "training_run_create",
    "training_run_enqueue",
    "training_run_execute",
    "training_run_mark_stale",
    "training_run_sweep_if_running",
    "training_run_sweep_stale",
]
