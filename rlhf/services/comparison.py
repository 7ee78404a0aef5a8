"""Closing the loop with evidence: a blind comparison batch of a new policy against the policy it started from.

`policy_comparison_create` samples `k` responses per chosen prompt from the run's policy and `k` from its reference
(the same prompts, seed and settings), scores all of them with the run's reward model when it has one, and writes one
new labeling round: per source prompt a new Prompt (`metadata.comparison` = {run_id, policy, reference}) whose 2k
responses record their model in `model_name` and their side (`policy` / `reference`) and reward in `metadata`, all
hidden from labelers. The responses are created in a seeded random order per prompt, so not even their ids tell the
sides apart, and every labeler sees them in their own order (`assignments.shown_order_for`). The reward model's
predicted win rate (share of same-prompt (policy, reference) pairs where it scores the policy's response higher,
ties half) is kept on the run (`comparison`); the human win rate comes from the rankings
(`annotation.selectors_comparisons`).

Which models: a PPO / DPO / GRPO run's reference is its `policy` (config), an SFT run's its `base_model`, a chain's
its SFT stage (the policy its PPO stage started from); the reward model is the run's `reward_model` (PPO, GRPO) or the
chain's reward/ stage. SFT and DPO runs have none: the batch is made without a prediction.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotation.agreement.winrate import Judgment, win_rate
from annotation.models import MAX_RESPONSES, Project, Prompt, Response
from rlhf.models import TrainingRun
from rlhf.services.common import prompt_input
from rlhf.services.heartbeat import JobState
from rlhf.services.loop import GEN_NO_PROMPTS, GEN_ROUND_TAKEN, model_label, source_prompts
from rlhf.services.policies import policy_resolve, reward_dir
from rlhf.training.ppo_config import DEFAULT as DEFAULT_POLICY
from rlhf.training.registry import REWARD_MODEL, stage_get

POLICY_SIDE, REFERENCE_SIDE = "policy", "reference"
CMP_K_RANGE = "k must be between 1 and {hi}: 2k responses per prompt, and project '{slug}' shows {shown} per task."
CMP_NO_REFERENCE = "Run {id} records no policy it started from: nothing to compare it with."


@dataclass(frozen=True)
class ComparisonModels:
    policy: str  # path or model id
    policy_label: str
    reference: str
    reference_label: str
    reward_model: str | None  # the reward model's dir; None: the run has none (SFT, DPO)


@dataclass
class ComparisonResult:
    round: int
    prompts: int = 0
    responses: int = 0
    prompt_ids: list[int] = field(default_factory=list)
    rm: dict[str, Any] | None = None  # the reward model's predicted win rate (WinRate.as_dict), None without one

    def as_dict(self) -> dict[str, Any]:
        return {"round": self.round, "prompts": self.prompts, "responses": self.responses, "rm": self.rm}


def comparison_models(run: TrainingRun) -> ComparisonModels:
    """The run's policy, the reference it started from and its reward model (see the module's docstring)."""
    path, _ = policy_resolve(policy=run)
    stage, config = stage_get(run.kind), run.config or {}
    if run.kind == TrainingRun.Kind.CHAIN:
        dirs = (run.metrics or {}).get("chain/dirs") or {}
        reference = str(dirs.get("sft") or Path(run.output_dir) / "sft")
        reference_label = f"{model_label(run, path)} (sft stage)"[:200]
    else:
        reference = str(config.get(stage.policy_field) or "").strip() if stage.policy_field else ""
        reference = reference or (DEFAULT_POLICY if stage.needs_policy else "")
        if not reference:
            raise ValidationError(CMP_NO_REFERENCE.format(id=run.pk))
        start = TrainingRun.objects.filter(pk=(run.export or {}).get("policy_run") or 0).first()
        reference_label = model_label(start, reference) if start else model_label(reference, reference)
    reward = None
    if stage.outputs.get(REWARD_MODEL) is not None:
        reward = str(reward_dir(run))
    elif stage.reward_field and config.get(stage.reward_field):
        reward = str(config[stage.reward_field])
    return ComparisonModels(path, model_label(run, path), reference, reference_label, reward)


def comparison_k_check(*, project: Project, k: int) -> None:
    """2k responses per prompt, all of them shown to every labeler (a pairwise project: k = 1)."""
    shown = 2 if project.is_pairwise else (project.responses_per_task or MAX_RESPONSES)
    if not 1 <= k <= shown // 2:
        raise ValidationError(CMP_K_RANGE.format(hi=shown // 2, slug=project.slug, shown=shown))


def policy_comparison_create(
    *,
    project: Project,
    run: TrainingRun,
    k: int = 2,
    scope: str = "all",
    limit: int | None = 8,
    max_new_tokens: int = 64,
    temperature: float = 0.7,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> ComparisonResult:
    """Sample `k` responses per prompt from the run's policy and from its reference, score them with its reward model,
    and add them as one new blind labeling round. Samples and scores first, then writes everything in one
    transaction: a failure leaves the project unchanged. `progress(done, total)` counts prompts sampled (both models)
    and scored."""
    models = comparison_models(run)
    comparison_k_check(project=project, k=k)
    prompts = source_prompts(project=project, scope=scope, limit=limit)
    if not prompts:
        raise ValidationError(GEN_NO_PROMPTS.format(slug=project.slug, scope=scope))
    conversational = Prompt.objects.filter(project=project, messages__isnull=False).exists()
    inputs = [prompt_input(p, conversational) for p in prompts]
    total, done = len(inputs) * (3 if models.reward_model else 2), 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    options = {"k": k, "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed}
    sides = {POLICY_SIDE: _sample(models.policy, inputs, options, step),
             REFERENCE_SIDE: _sample(models.reference, inputs, options, step)}  # fmt: skip
    scores = _score(models.reward_model, inputs, sides, step) if models.reward_model else None
    result = _round_write(project, run, models, prompts, sides, scores, seed)
    if scores is not None:
        judgments = [Judgment(i, [-s for s in scores[POLICY_SIDE][i]], [-s for s in scores[REFERENCE_SIDE][i]])
                     for i in range(len(prompts))]  # fmt: skip
        result.rm = win_rate(judgments, seed=seed).as_dict()
    return result


def _sample(path: str, inputs: list, options: dict[str, Any], step: Callable[[int], None]) -> list[list[str]]:
    # torch stays out of the web process
    from rlhf.training.generation import generate_responses, load_for_generation  # noqa: PLC0415

    model = load_for_generation(path)  # once per model; the same seed for both, so only the model differs
    texts = generate_responses(model, inputs, **options)
    step(len(inputs))
    return texts


def _score(reward: str, inputs: list, sides: dict[str, list[list[str]]], step) -> dict[str, list[list[float]]]:
    from rlhf.training.scoring import score_texts  # noqa: PLC0415

    flat = [(i, side, text) for side, groups in sides.items() for i, group in enumerate(groups) for text in group]
    values = score_texts(reward, [inputs[i] for i, _, _ in flat], [text for _, _, text in flat])
    scores: dict[str, list[list[float]]] = {side: [[] for _ in inputs] for side in sides}
    for (i, side, _), value in zip(flat, values, strict=True):
        scores[side][i].append(float(value))
    step(len(inputs))
    return scores


@transaction.atomic
def _round_write(project, run, models: ComparisonModels, prompts, sides, scores, seed: int) -> ComparisonResult:
    last = Prompt.objects.filter(project=project).aggregate(last=Max("round"))["last"] or 0
    result = ComparisonResult(round=last + 1)
    if Prompt.objects.filter(project=project, round=result.round).exists():
        raise ValidationError(GEN_ROUND_TAKEN.format(round=result.round, slug=project.slug))
    comparison = {"run_id": run.pk, "policy": models.policy_label, "reference": models.reference_label}
    labels = {POLICY_SIDE: models.policy_label, REFERENCE_SIDE: models.reference_label}
    for i, prompt in enumerate(prompts):
        copy = Prompt.objects.create(
            project=project, text=prompt.text, messages=prompt.messages, category=prompt.category,
            source=prompt.source, external_id=prompt.external_id, split=prompt.split, round=result.round,
            content_hash=prompt.content_hash,
            metadata={"source_prompt_id": prompt.pk, "generated_at": timezone.now().isoformat(),
                      "comparison": comparison},
        )  # fmt: skip
        rows = [(side, j, text) for side in (POLICY_SIDE, REFERENCE_SIDE) for j, text in enumerate(sides[side][i])]
        # Created in a seeded random order: ids and indices say nothing about which model wrote a response.
        random.Random(f"comparison:{seed}:{prompt.pk}").shuffle(rows)
        Response.objects.bulk_create(
            Response(prompt=copy, text=text, model_name=labels[side], index=index,
                     metadata={"generated": True, "run_id": run.pk, "side": side, "sample": j,
                               **({"rm_score": scores[side][i][j]} if scores else {})})
            for index, (side, j, text) in enumerate(rows)
        )  # fmt: skip
        result.prompts += 1
        result.responses += len(rows)
        result.prompt_ids.append(copy.pk)
    return result


def comparison_execute(*, run_id: int, project_id: int, options: dict[str, Any]) -> dict[str, Any]:
    """The body of the comparison task: sample, score, write the round, keep the job's state on the run."""
    run, project = TrainingRun.objects.get(pk=run_id), Project.objects.get(pk=project_id)
    job = JobState(run_id=run_id, field="comparison", project=project.slug, options=options, done=0, total=0)
    job.write()
    try:
        with job.beating():
            result = policy_comparison_create(
                project=project, run=run, progress=lambda d, t: job.write(done=d, total=t), **options
            )
    except Exception as exc:
        messages = exc.messages if isinstance(exc, ValidationError) else [f"{type(exc).__name__}: {exc}"]
        job.write(status="failed", error=" ".join(messages))
        raise
    job.write(status="succeeded", finished_at=timezone.now().isoformat(), **result.as_dict())
    return result.as_dict()


def comparison_check(*, run: TrainingRun, project: Project, k: int) -> ComparisonModels:
    """What queuing a comparison checks at once (no model loaded): a finished policy run with a reference, a k that
    fits the project."""
    models = comparison_models(run)
    comparison_k_check(project=project, k=k)
    return models
