"""Queue the background jobs (rlhf/tasks.py): a training run, scoring a project's responses with a run's reward
model, sampling a policy run's responses into a new labeling round, a blind comparison batch of a policy against
its reference. Each returns at once; the worker does the work.

Above the tasks in the import graph (it imports them; the tasks import only what executes a job), so the services'
imports have no cycle (tests/rlhf/test_import_graph.py)."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.models import MAX_RESPONSES, Project
from rlhf.models import TrainingRun
from rlhf.services.boundary import scoring_boundary_precheck
from rlhf.services.common import RUN_NOT_SCORABLE
from rlhf.services.comparison import comparison_check
from rlhf.services.loop import GEN_K_RANGE, GEN_NOT_DONE
from rlhf.services.policies import policy_resolve
from rlhf.tasks import policy_comparison_task, response_scores_task, responses_generate_task, training_run_task


def training_run_enqueue(*, run: TrainingRun) -> TrainingRun:
    result = training_run_task.enqueue(run_id=run.pk)
    TrainingRun.objects.filter(pk=run.pk).update(task_id=str(result.id))
    run.task_id = str(result.id)
    return run


def scoring_enqueue(*, run: TrainingRun, project: Project) -> TrainingRun:
    """Queue a background job scoring the project's responses with the run's model; returns at once. The reward
    model's boundary on the project's prompts is checked first (`scoring["boundary"]`, with a warning when most are
    out of range); the job replaces it with the check of every prompt."""
    if run.status != TrainingRun.Status.SUCCEEDED or not run.output_dir:
        raise ValidationError(RUN_NOT_SCORABLE.format(id=run.pk, status=run.status))
    boundary = scoring_boundary_precheck(run=run, project=project)
    run.scoring = {"status": "queued", "project": project.slug, "queued_at": timezone.now().isoformat(),
                   "boundary": boundary}  # fmt: skip
    run.save(update_fields=["scoring"])
    transaction.on_commit(lambda: response_scores_task.enqueue(run_id=run.pk, project_id=project.pk))
    return run


def generation_enqueue(*, run: TrainingRun, project: Project, **options: Any) -> TrainingRun:
    """Queue a background job sampling this policy run's responses into a new round of `project`; returns at once."""
    if run.status != TrainingRun.Status.SUCCEEDED or not run.output_dir:
        raise ValidationError(GEN_NOT_DONE.format(id=run.pk, status=run.status))
    policy_resolve(policy=run)  # a policy run, not a reward model
    k = int(options.get("k", 4))
    if not 1 <= k <= MAX_RESPONSES:
        raise ValidationError(GEN_K_RANGE.format(lo=1, hi=MAX_RESPONSES, max=MAX_RESPONSES))
    run.generation = {"status": "queued", "project": project.slug, "options": options,
                      "queued_at": timezone.now().isoformat()}  # fmt: skip
    run.save(update_fields=["generation"])
    transaction.on_commit(
        lambda: responses_generate_task.enqueue(run_id=run.pk, project_id=project.pk, options=options)
    )
    return run


def comparison_enqueue(*, run: TrainingRun, project: Project, **options: Any) -> TrainingRun:
    """Queue a background job making a blind comparison batch of this policy run against its reference in `project`
    (rlhf/services/comparison.py); checks the run and k at once, returns at once."""
    comparison_check(run=run, project=project, k=int(options.get("k", 2)))
    run.comparison = {"status": "queued", "project": project.slug, "options": options,
                      "queued_at": timezone.now().isoformat()}  # fmt: skip
    run.save(update_fields=["comparison"])
    transaction.on_commit(lambda: policy_comparison_task.enqueue(run_id=run.pk, project_id=project.pk, options=options))
    return run
