"""Closing the loop: a policy's sampled responses go back to the labelers as a new labeling round.

`responses_generate` samples `k` responses per prompt from any policy (a policy run or a path / model id) and adds, in
one transaction, a new round: one new Prompt per source prompt (same text, messages, category and split; `round` =
the project's last round + 1; `metadata.source_prompt_id` = the original) with the generated responses, whose
`model_name` records where they came from (`run-<id>:<name>`, or the path): hidden from labelers like every model
name. With `include_original`, the source prompt's own responses are copied next to them (same model names), so the
model leaderboard compares the new policy with the old ones by human rankings on the same prompts.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotation.exports.options import ExportOptions
from annotation.models import MAX_RESPONSES, MIN_RESPONSES, Project, Prompt, Response
from rlhf.models import TrainingRun
from rlhf.services.boundary import prompts_boundary_report
from rlhf.services.common import prompt_input
from rlhf.services.heartbeat import JobState
from rlhf.services.inputs import DEFAULT_EXPORT, prompt_split_get
from rlhf.services.policies import policy_resolve

PROMPT_SCOPES = ("train", "all")
CHUNK_PROMPTS = 64  # prompts per call to the sampler: the progress bar moves after each

GEN_K_RANGE = "k must be between {lo} and {hi} (responses per prompt, originals included: at most {max})."
GEN_NO_PROMPTS = "Project '{slug}' has no prompts to generate for (scope {scope!r})."
GEN_SCOPE = "prompts must be one of: {choices}."
GEN_ROUND_TAKEN = "Round {round} already has prompts in project '{slug}'; use a new round (default: the next one)."
GEN_NOT_DONE = "Run {id} has no policy to sample from yet (status {status})."


@dataclass
class GenerationResult:
    round: int
    model_name: str
    prompts: int = 0
    generated: int = 0
    copied: int = 0
    prompt_ids: list[int] = field(default_factory=list)
    boundary: dict[str, Any] | None = None  # the prompts against the policy run's reward model (services/boundary)

    def as_dict(self) -> dict[str, Any]:
        return {"round": self.round, "model_name": self.model_name, "prompts": self.prompts,
                "generated": self.generated, "copied": self.copied, "boundary": self.boundary}  # fmt: skip


def model_label(model: "TrainingRun | str", path: str) -> str:
    """What Response.model_name records: the run (id and name) or the path / model id."""
    if isinstance(model, TrainingRun):
        return f"run-{model.pk}:{model.name}"[:200]
    return path[-200:]


def source_prompts(*, project: Project, scope: str = "train", limit: int | None = None) -> list[Prompt]:
    """The project's original (not generated, non-gold) prompts: all, or only the export's train side."""
    if scope not in PROMPT_SCOPES:
        raise ValidationError(GEN_SCOPE.format(choices=", ".join(PROMPT_SCOPES)))
    prompts = Prompt.objects.filter(project=project, is_gold=False).exclude(metadata__has_key="source_prompt_id")
    prompts = list(prompts.prefetch_related("responses").order_by("id"))
    if scope == "train":
        sides = prompt_split_get(project=project, options=ExportOptions(**DEFAULT_EXPORT))
        prompts = [p for p in prompts if sides.get(p.pk) == "train"]
    return prompts[:limit] if limit else prompts


def responses_generate(
    *,
    project: Project,
    model: "TrainingRun | str",
    k: int = 4,
    round: int | None = None,  # noqa: A002 - the Prompt field's name
    scope: str = "train",
    include_original: bool = True,
    max_new_tokens: int = 64,
    temperature: float = 0.7,
    seed: int = 0,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> GenerationResult:
    """Sample `k` responses per prompt from the policy and add them (with the originals) as a new labeling round.
    Samples first, then writes everything in one transaction: a failure leaves the project unchanged."""
    if isinstance(model, TrainingRun) and (model.status != TrainingRun.Status.SUCCEEDED or not model.output_dir):
        raise ValidationError(GEN_NOT_DONE.format(id=model.pk, status=model.status))
    path, _ = policy_resolve(policy=model) if isinstance(model, TrainingRun) else (str(model), None)
    prompts = source_prompts(project=project, scope=scope, limit=limit)
    if not prompts:
        raise ValidationError(GEN_NO_PROMPTS.format(slug=project.slug, scope=scope))
    counts = [len(p.responses.all()) for p in prompts] if include_original else [0]
    originals, fewest = max(counts), min(counts)  # written prompts have none: they need k >= 2 on their own
    lo, hi = (1 if fewest >= MIN_RESPONSES - 1 else MIN_RESPONSES), MAX_RESPONSES - originals
    if not lo <= k <= hi:
        raise ValidationError(GEN_K_RANGE.format(lo=lo, hi=hi, max=MAX_RESPONSES))
    texts = _sample(project, prompts, path, k, max_new_tokens, temperature, seed, progress)
    result = _round_write(project, prompts, texts, model_label(model, path), round, include_original, model)
    if isinstance(model, TrainingRun):  # which prompts its reward model could not judge
        result.boundary = prompts_boundary_report(run=model, prompts=prompts)
    return result


def _sample(project, prompts, path, k, max_new_tokens, temperature, seed, progress) -> list[list[str]]:
    # torch stays out of the web process
    from rlhf.training.generation import generate_responses, load_for_generation  # noqa: PLC0415

    conversational = Prompt.objects.filter(project=project, messages__isnull=False).exists()
    inputs = [prompt_input(p, conversational) for p in prompts]
    policy = load_for_generation(path)  # once: every chunk samples from the same loaded model
    texts: list[list[str]] = []
    for start in range(0, len(inputs), CHUNK_PROMPTS):
        chunk = inputs[start : start + CHUNK_PROMPTS]
        texts += generate_responses(policy, chunk, k=k, max_new_tokens=max_new_tokens, temperature=temperature,
                                    seed=seed + start)  # fmt: skip
        if progress is not None:
            progress(len(texts), len(inputs))
    return texts


@transaction.atomic
def _round_write(project, prompts, texts, label, round_, include_original, model) -> GenerationResult:
    last = Prompt.objects.filter(project=project).aggregate(last=Max("round"))["last"] or 0
    new_round = round_ or last + 1
    if Prompt.objects.filter(project=project, round=new_round).exists():
        raise ValidationError(GEN_ROUND_TAKEN.format(round=new_round, slug=project.slug))
    result = GenerationResult(round=new_round, model_name=label)
    run_id = model.pk if isinstance(model, TrainingRun) else None
    for prompt, samples in zip(prompts, texts, strict=True):
        copy = Prompt.objects.create(
            project=project, text=prompt.text, messages=prompt.messages, category=prompt.category,
            source=prompt.source, external_id=prompt.external_id, split=prompt.split, round=new_round,
            content_hash=prompt.content_hash, purpose=prompt.purpose,
            metadata={"source_prompt_id": prompt.pk, "generated_at": timezone.now().isoformat()},
        )  # fmt: skip
        responses = [Response(prompt=copy, text=text, model_name=label, index=i,
                              metadata={"generated": True, "run_id": run_id, "sample": i})
                     for i, text in enumerate(samples)]  # fmt: skip
        if include_original:
            responses += [Response(prompt=copy, text=old.text, model_name=old.model_name, index=len(samples) + j,
                                   metadata={"copied_from_response_id": old.pk})
                          for j, old in enumerate(prompt.responses.all())]  # fmt: skip
        Response.objects.bulk_create(responses)
        result.prompts += 1
        result.generated += len(samples)
        result.copied += len(responses) - len(samples)
        result.prompt_ids.append(copy.pk)
    return result


def generation_execute(*, run_id: int, project_id: int, options: dict[str, Any]) -> dict[str, Any]:
    """The body of the generation task: sample, write the round, keep the job's state on the run."""
    run, project = TrainingRun.objects.get(pk=run_id), Project.objects.get(pk=project_id)
    job = JobState(run_id=run_id, field="generation", project=project.slug, options=options, done=0, total=0)
    job.write()

    def progress(done: int, total: int) -> None:
        job.write(done=done, total=total)

    try:
        with job.beating():
            result = responses_generate(project=project, model=run, progress=progress, **options)
    except Exception as exc:
        messages = exc.messages if isinstance(exc, ValidationError) else [f"{type(exc).__name__}: {exc}"]
        job.write(status="failed", error=" ".join(messages))
        raise
    job.write(status="succeeded", finished_at=timezone.now().isoformat(), **result.as_dict())
    return result.as_dict()
