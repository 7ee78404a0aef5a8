"""Background tasks (django-tasks, run by `manage.py rlhf_worker`): thin wrappers around the services that execute a
job; the services that queue them (rlhf/services/queue.py) import this module, never the other way round.

Queues: training runs (every kind) go to TRAINING_QUEUE, the jobs on a finished run (scoring, generation,
comparison) to DEFAULT_QUEUE. A plain `rlhf_worker` takes both; `rlhf_worker --queue gpu` only training, `--queue
default` only the rest (docs/deploy.md). Both must be listed in settings.TASKS["default"]["QUEUES"].
"""

from django_tasks import task

from rlhf.services.comparison import comparison_execute
from rlhf.services.loop import generation_execute
from rlhf.services.scoring import response_scores_execute
from rlhf.services.worker import training_run_execute

TRAINING_QUEUE = "gpu"
DEFAULT_QUEUE = "default"
QUEUES = (DEFAULT_QUEUE, TRAINING_QUEUE)


@task(queue_name=TRAINING_QUEUE)
def training_run_task(run_id: int) -> str:
    return training_run_execute(run_id=run_id)


@task(queue_name=DEFAULT_QUEUE)
def response_scores_task(run_id: int, project_id: int) -> int:
    return response_scores_execute(run_id=run_id, project_id=project_id)


@task(queue_name=DEFAULT_QUEUE)
def responses_generate_task(run_id: int, project_id: int, options: dict) -> dict:
    return generation_execute(run_id=run_id, project_id=project_id, options=options)


@task(queue_name=DEFAULT_QUEUE)
def policy_comparison_task(run_id: int, project_id: int, options: dict) -> dict:
    return comparison_execute(run_id=run_id, project_id=project_id, options=options)
