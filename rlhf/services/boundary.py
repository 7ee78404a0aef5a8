"""The reward model's boundary for a run's prompts: which of them are unlike the reward model's training prompts
(rlhf/training/boundary.py), with the reward model's held-out accuracy per category next to it.

Checked before a PPO / GRPO run or a scoring job is queued (a warning, never a refusal, when more than half are out
of range), and recorded by the scoring and generation jobs over all their prompts. Before a run, a seeded uniform
sample of at most `PRECHECK_SAMPLE` prompts is checked, so the check stays a few seconds in a web request (the share
of a 200-prompt sample is within about 7 points of the whole set's, 95% of the time); a project's own prompts,
checked against a reward model trained on them, need no embedding at all.
"""

import logging
from typing import Any

from django.utils import timezone

from annotation.exports.options import ExportOptions
from annotation.models import Project, Prompt
from rlhf.models import TrainingRun
from rlhf.services.common import prompt_input
from rlhf.services.inputs import prompt_split_get
from rlhf.services.policies import REWARD_KINDS, reward_dir

logger = logging.getLogger(__name__)

PRECHECK_SAMPLE = 200  # prompts checked at most before a run (in the web request); the jobs check them all


def run_reward_get(run: TrainingRun) -> TrainingRun | None:
    """The reward-model run behind a run: itself for a reward model (or a chain, which trains one), else the reward
    run a PPO / GRPO run was created with; None for kinds without one (SFT, DPO)."""
    if run.kind in REWARD_KINDS:
        return run
    reward_id = (run.export or {}).get("reward_run")
    return TrainingRun.objects.filter(pk=reward_id).first() if reward_id else None


def boundary_check(
    *, reward: TrainingRun, prompts: list[Any], categories: list[Any], sample: int | None = None
) -> dict[str, Any]:
    """The boundary report of `prompts` against the reward run's model, with its held-out accuracy by category."""
    from rlhf.training.boundary import NO_INDEX, report  # noqa: PLC0415 - torch loads only to embed prompts

    if reward.output_dir:
        result = report(reward_dir(reward), prompts, categories, sample=sample)
    else:
        result = {"available": False, "reason": NO_INDEX, "n": len(prompts)}
    return result | {
        "reward_run": reward.pk,
        "accuracy_by_category": (reward.metrics or {}).get("eval/accuracy_by_category") or {},
        "checked_at": timezone.now().isoformat(),
    }


def _inputs(prompts: list[Prompt]) -> tuple[list[Any], list[Any]]:
    conversational = any(p.messages for p in prompts)
    return [prompt_input(p, conversational) for p in prompts], [p.category or None for p in prompts]


def policy_boundary_precheck(*, project: Project, reward: TrainingRun, options: ExportOptions) -> dict[str, Any]:
    """Before a PPO / GRPO run: its training prompts (the export's train side, as prompts.jsonl will hold them)."""
    sides = prompt_split_get(project=project, options=options)
    prompts = list(Prompt.objects.filter(pk__in=[pk for pk, side in sides.items() if side == "train"]).order_by("id"))
    return _guarded(reward, prompts, PRECHECK_SAMPLE)


def scoring_prompts_get(*, project: Project) -> list[Prompt]:
    """The prompts whose responses a scoring job scores."""
    return list(Prompt.objects.filter(project=project, staged=False, responses__isnull=False).distinct().order_by("id"))


def scoring_boundary_precheck(*, run: TrainingRun, project: Project) -> dict[str, Any]:
    """Before a scoring job: the prompts whose responses it will score, against the run's own reward model."""
    return _guarded(run, scoring_prompts_get(project=project), PRECHECK_SAMPLE)


def prompts_boundary_report(*, run: TrainingRun, prompts: list[Prompt]) -> dict[str, Any] | None:
    """For a job (scoring, generation): every prompt checked against the run's reward model; None when the run has
    none."""
    reward = run_reward_get(run)
    return None if reward is None else _guarded(reward, prompts, None)


def _guarded(reward: TrainingRun, prompts: list[Prompt], sample: int | None) -> dict[str, Any]:
    """The check; a failure (say, the MiniLM package missing) is logged and reported in the result: it never stops
    a run or a job from being created or finishing."""
    texts, categories = _inputs(prompts)
    try:
        return boundary_check(reward=reward, prompts=texts, categories=categories, sample=sample)
    except Exception as exc:  # noqa: BLE001 - the run's own work matters more than its boundary report
        logger.warning("Run %s: boundary check failed: %s", reward.pk, exc)
        return {"available": False, "reason": f"the boundary check failed: {type(exc).__name__}: {exc}",
                "n": len(prompts), "reward_run": reward.pk}  # fmt: skip


def boundary_warnings(report: dict[str, Any] | None) -> list[str]:
    return [report["warning"]] if report and report.get("warning") else []
