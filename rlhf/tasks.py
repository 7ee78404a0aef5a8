"""Background tasks (django-tasks, run by `manage.py rlhf_worker`): thin wrappers around the services that execute a
job; the services that queue them (rlhf/services/queue.py) import this module, never the other way round."""

from django_tasks import task

from rlhf.services.loop import generation_execute
from rlhf.services.scoring import response_scores_execute
from rlhf.services.worker import training_run_execute


@task()
def training_run_task(run_id: int) -> str:
    return training_run_execute(run_id=run_id)


@task()
def response_scores_task(run_id: int, project_id: int) -> int:
    return response_scores_execute(run_id=run_id, project_id=project_id)


@task()
def responses_generate_task(run_id: int, project_id: int, options: dict) -> dict:
    return generation_execute(run_id=run_id, project_id=project_id, options=options)
