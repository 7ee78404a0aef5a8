"""Writes on training runs. A run's life: queued -> running -> succeeded | failed | cancelled.

Modules, from the bottom of the import graph up (no module imports one above it; tests/rlhf/test_import_graph.py):

- `common`: timings, limits, messages, the runs directory; `heartbeat`: the jobs' heartbeats and
  `training_run_sweep_stale`, which fails the jobs that stopped beating; `model_refs`: which models and launchers a
  caller may name; `inputs`: the files a run reads (export snapshot, prompts, best responses); `policies`: resolve
  policy and reward-model runs;
- `worker`: `training_run_execute`, the background task's body, with the progress recorder (every kind through the
  registry, in-process or under `accelerate launch`); `scoring`, `loop`, `comparison`: the scoring, generation and
  comparison jobs' bodies;
- `rlhf.tasks`: the django-tasks wrappers of those bodies;
- `queue`: enqueue a training run, a scoring, generation or comparison job (imports the tasks);
- `ppo` (policy kinds) and `runs` (any kind; a reward model itself): create, cancel, and fail the runs a dead
  worker left 'running'.

`training_run_execute` never leaves a run 'running': every way out of the training function (success,
TrainingCancelled, any exception, the worker being stopped) ends in a final status. A worker that is killed outright
(OOM, SIGKILL, power) cannot do that itself, so `training_run_mark_stale` runs whenever a worker starts
(`manage.py rlhf_worker`) and `training_run_sweep_stale` runs in every live worker every 30 s and on the run page;
both mark such runs (and scoring / generation jobs, by their heartbeat) *failed*, not re-queued: a crash that killed
the worker once (out of memory, say) would kill it again, in a loop; a person decides whether to start it again.
"""

from rlhf.services.common import MANAGED_CONFIG_FIELDS, STALE_AFTER_S, runs_root
from rlhf.services.heartbeat import training_run_sweep_if_running, training_run_sweep_stale
from rlhf.services.queue import comparison_enqueue, generation_enqueue, scoring_enqueue, training_run_enqueue
from rlhf.services.runs import (
    reward_config_validate,
    training_run_cancel,
    training_run_create,
    training_run_mark_stale,
)
from rlhf.services.scoring import response_scores_compute, response_scores_execute
from rlhf.services.worker import RunRecorder, training_run_execute

__all__ = [
    "MANAGED_CONFIG_FIELDS",
    "STALE_AFTER_S",
    "RunRecorder",
    "comparison_enqueue",
    "generation_enqueue",
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
