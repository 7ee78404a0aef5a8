"""Background tasks (django-tasks, run by `manage.py rlhf_worker`): thin wrappers around the services."""

from django_tasks import task

from rlhf.services import response_scores_execute, training_run_execute
from rlhf.services.loop import generation_execute


@task()
def training_run_task(run_id: int) -> str:
    return training_run_execute(run_id=run_id)


@task()
def response_scores_task(run_id: int, project_id: int) -> int:
    return response_scores_execute(run_id=run_id, project_id=project_id)


@task()
def responses_generate_task(run_id: int, project_id: int, options: dict) -> dict:
    return generation_execute(run_id=run_id, project_id=project_id, options=options)
