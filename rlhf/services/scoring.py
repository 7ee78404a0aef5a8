"""Scores of responses by a trained reward model, computed in batches (in the worker or a command)."""

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.utils import timezone

from annotation.models import Project, Response
from rlhf.models import ResponseScore, TrainingRun
from rlhf.services.boundary import prompts_boundary_report, scoring_prompts_get
from rlhf.services.common import RUN_NOT_SCORABLE, SCORE_CHUNK, prompt_input
from rlhf.services.heartbeat import JobState


def response_scores_compute(
    *,
    run: TrainingRun,
    project: Project,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Score every response of the project with the run's reward model and store the scores (replacing earlier
    ones of this run). `progress(done, total)` is called after each chunk. Returns the number scored."""
    if run.status != TrainingRun.Status.SUCCEEDED or not run.output_dir:
        raise ValidationError(RUN_NOT_SCORABLE.format(id=run.pk, status=run.status))
    # Torch stays out of the web process: these load only in the worker or the command.
    from rlhf.training.data import encode_sequences  # noqa: PLC0415
    from rlhf.training.scoring import load_reward_model, score_sequences  # noqa: PLC0415

    model, tokenizer = load_reward_model(run.output_dir)
    limit = getattr(model.config, "max_position_embeddings", None) or 512
    max_length = min(int(run.config.get("max_length") or 512), limit)
    conversational = project.prompts.filter(messages__isnull=False).exists()
    responses = list(
        Response.objects.filter(prompt__project=project, prompt__staged=False).select_related("prompt").order_by("id")
    )
    for start in range(0, len(responses), SCORE_CHUNK):
        chunk = responses[start : start + SCORE_CHUNK]
        prompts = [prompt_input(r.prompt, conversational) for r in chunk]
        sequences, _ = encode_sequences(tokenizer, prompts, [r.text for r in chunk], max_length)
        scores = score_sequences(model, sequences, tokenizer.pad_token_id, batch_size=batch_size)
        ResponseScore.objects.bulk_create(
            [ResponseScore(run=run, response=r, score=float(s)) for r, s in zip(chunk, scores, strict=True)],
            update_conflicts=True, unique_fields=["run", "response"], update_fields=["score", "created_at"],
        )  # fmt: skip
        if progress is not None:
            progress(start + len(chunk), len(responses))
    return len(responses)


def response_scores_execute(*, run_id: int, project_id: int) -> int:
    """The body of the scoring task: score, and keep the job's status on the run (failed with its error)."""
    run, project = TrainingRun.objects.get(pk=run_id), Project.objects.get(pk=project_id)
    job = JobState(run_id=run_id, field="scoring", project=project.slug, done=0, total=0)
    job.write()
    try:
        with job.beating():
            job.write(boundary=prompts_boundary_report(run=run, prompts=scoring_prompts_get(project=project)))
            scored = response_scores_compute(run=run, project=project, progress=lambda d, t: job.write(done=d, total=t))
    except Exception as exc:
        job.write(status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    job.write(status="succeeded", done=scored, total=scored, finished_at=timezone.now().isoformat())
    return scored
