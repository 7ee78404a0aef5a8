"""Policy runs (SFT, PPO, DPO, GRPO/RLOO and the offline default chain): create them from a project, with the input
files their kind reads (rlhf/services/inputs.py, by the registry's `inputs`), and the policy run page's figures.

What differs between the kinds (config class, managed fields, which files go into which config field, whether a
policy / reward model is needed, where the outputs are) is read from rlhf/training/registry.py.
"""

import json
import re
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction

from annotation.exports.options import ExportOptions
from annotation.models import Project
from rlhf.models import TrainingRun
from rlhf.services.boundary import boundary_warnings, policy_boundary_precheck
from rlhf.services.common import RUN_CONFIG_INVALID, RUN_CONFIG_UNKNOWN, append_log, runs_root, timestamped
from rlhf.services.inputs import (  # noqa: F401 - re-exported for callers of the former all-in-one module
    DEFAULT_EXPORT,
    best_responses_get,
    policy_inputs_write,
    prompt_split_get,
    run_inputs_write,
)
from rlhf.services.model_refs import config_models_check, launcher_check, model_ref_check
from rlhf.services.policies import (  # noqa: F401 - re-exported
    POLICY_KINDS,
    RUN_REF,
    policy_dir,
    policy_resolve,
    reward_dir,
    reward_resolve,
)
from rlhf.services.prepare import export_pending, run_inputs_check
from rlhf.services.queue import training_run_enqueue
from rlhf.training.ppo_config import DEFAULT as DEFAULT_POLICY
from rlhf.training.ppo_config import ppo_recipe_config
from rlhf.training.registry import PROMPTS, STAGES, Stage, stage_get

Kind = TrainingRun.Kind
CONFIG_CLASSES = {kind: stage.config for kind, stage in STAGES.items() if kind != Kind.REWARD_MODEL}
POLICY_MANAGED_FIELDS = {kind: set(STAGES[kind].managed) for kind in CONFIG_CLASSES}

POLICY_KIND_UNKNOWN = "Unknown policy run kind {kind!r}; use one of: {choices}."
REWARD_REQUIRED = "A {kind} run needs a finished reward-model run (reward_run)."
SECOND_REWARD_KIND = "A second reward model (second_reward_run) is for PPO runs only, not {kind}."
RECIPE_KIND = "A PPO recipe (recipe) is for PPO runs only, not {kind}."
ENSEMBLE_KIND = "A reward-model ensemble (ensemble_reward_runs) is for PPO runs only, not {kind}."
ENSEMBLE_OVERLAP = (
    "Reward-model run #{pk} is both in the ensemble PPO optimises and the second opinion: the second opinion must be "
    "a reward model PPO does not optimise."
)
MEMBER_GAIN = re.compile(r"ppo/eval_member(\d+)_gain_std")  # with a reward-model ensemble: each member's gain
MEMBER_LABEL = "Gain, ensemble member {i} (SDs)"
SCORE_GAIN = "Gain, reward model alone (SDs)"  # with an ensemble: their combined reward; its members follow
HEADLINE = [
    ("Held-out reward before", "ppo/eval_reward_before"),
    ("Held-out reward after", "ppo/eval_reward_after"),
    ("Gain (reward SDs)", "ppo/eval_reward_gain_std"),
    (SCORE_GAIN, "ppo/eval_score_gain_std"),
    ("Gain, second reward model (SDs)", "ppo/eval_second_gain_std"),
    ("Best-of-4 from the reference (SDs)", "ppo/best_of_4_reward_gain_std"),
    ("Best-of-16 from the reference (SDs)", "ppo/best_of_16_reward_gain_std"),
    ("KL at the end (nats)", "ppo/kl_final"),
    ("Token entropy at the end", "ppo/token_entropy"),
    ("Reward-model accuracy", "eval/accuracy"),
]
# What RL cost, before (the reference's samples) vs after (the policy's), same held-out prompts: (label, key, note).
COSTS = [
    ("distinct-1", "distinct1", "distinct words / words (higher = more varied)"),
    ("distinct-2", "distinct2", "distinct word pairs / word pairs"),
    ("Self-similarity", "self_similarity", "mean cosine of one prompt's samples (MiniLM; higher = more alike)"),
    ("Mean length (tokens)", "length", ""),
    ("Perplexity under the reference", "perplexity", "higher = text the reference finds less likely"),
]


def policy_config_validate(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The caller's config fields checked against the kind's dataclass (paths and models excluded)."""
    if kind not in CONFIG_CLASSES:
        raise ValidationError(POLICY_KIND_UNKNOWN.format(kind=kind, choices=", ".join(CONFIG_CLASSES)))
    cls, managed = CONFIG_CLASSES[kind], POLICY_MANAGED_FIELDS[kind]
    unknown = sorted(set(config) - (set(cls.__dataclass_fields__) - managed))
    if unknown:
        raise ValidationError(RUN_CONFIG_UNKNOWN.format(names=", ".join(unknown)))
    try:
        return cls(**config).to_dict()
    except (TypeError, ValueError) as exc:
        raise ValidationError(RUN_CONFIG_INVALID.format(error=exc)) from None


def _sources(kind: str, policy: str, reward_run, user) -> tuple[str, TrainingRun | None, TrainingRun | None]:
    """(policy path or id, its run, the reward run), checked for the kind (PPO takes a reward model on any tokenizer:
    the run re-encodes responses for it). PPO, DPO and GRPO without a policy start from the default policy (SmolLM2,
    'default')."""
    stage = stage_get(kind)
    if stage.needs_policy and not str(policy or "").strip():
        policy = DEFAULT_POLICY
    if stage.needs_reward and reward_run in (None, ""):
        raise ValidationError(REWARD_REQUIRED.format(kind=stage.label))
    path, policy_run = policy_resolve(policy=policy, user=user) if str(policy or "").strip() else ("", None)
    reward = reward_resolve(reward_run=reward_run, user=user) if stage.reward_field else None
    return path, policy_run, reward


@transaction.atomic
def policy_run_create(
    *,
    project: Project,
    kind: str,
    user: AbstractUser | None = None,
    name: str = "",
    config: dict[str, Any] | None = None,
    policy: "str | TrainingRun" = "",
    reward_run: "int | TrainingRun | None" = None,
    second_reward_run: "int | TrainingRun | None" = None,
    ensemble_reward_runs: "list[int | TrainingRun] | None" = None,
    export_options: dict[str, Any] | None = None,
    recipe: str = "",
    enqueue: bool = True,
) -> TrainingRun:
    """Check the settings, save the run queued and (after commit) enqueue it; the worker writes the stage's input
    files into runs/<id>/data/ when it takes the run (rlhf/services/prepare.py). Nothing is trained or exported here.
    `recipe` (PPO): named settings (ppo_config.PPO_RECIPES) under the caller's `config`, which wins.
    ValidationError (nothing saved) on a bad config, a missing or unfinished policy/reward run, or a project with
    nothing ranked / no prompts."""
    if recipe and kind != Kind.PPO:
        raise ValidationError(RECIPE_KIND.format(kind=kind))
    try:
        config = ppo_recipe_config(recipe, dict(config or {}))
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    resolved = policy_config_validate(kind, config)
    config_models_check(config=dict(config or {}), project=project, user=user)
    launcher_check(config=resolved, user=user)
    if not isinstance(policy, TrainingRun):
        model_ref_check(value=policy, project=project, user=user, what="policy")
    path, policy_run, reward = _sources(kind, policy, reward_run, user)
    second = None
    if second_reward_run not in (None, ""):
        if not stage_get(kind).second_reward_field:
            raise ValidationError(SECOND_REWARD_KIND.format(kind=stage_get(kind).label))
        second = reward_resolve(reward_run=second_reward_run, user=user)
    ensemble = _ensemble(kind, ensemble_reward_runs or [], reward, second, user)
    if kind == Kind.PPO and not ensemble:
        unused = CONFIG_CLASSES[kind].from_dict(resolved).ensemble_settings_error()
        if unused:
            raise ValidationError(unused)
    try:
        options = ExportOptions(**(DEFAULT_EXPORT | dict(export_options or {})))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"Invalid export options: {exc}") from None
    run_inputs_check(stage=stage_get(kind), project=project)
    boundary = None  # the reward model's boundary on the run's prompts: a warning on the page / in the API, if any
    if reward is not None and PROMPTS in stage_get(kind).inputs:
        boundary = policy_boundary_precheck(project=project, reward=reward, options=options)
    run = TrainingRun.objects.create(project=project, kind=kind, name=name, created_by=user, config=resolved)
    run_dir = runs_root() / str(run.pk)
    run.config = resolved | _models(stage_get(kind), run_dir / "model", path, reward)
    if second is not None:
        run.config[stage_get(kind).second_reward_field] = str(reward_dir(second))
    if ensemble:
        run.config[stage_get(kind).ensemble_reward_field] = [str(reward_dir(r)) for r in ensemble]
    run.name = name or f"{project.slug} {TrainingRun.Kind(kind).label} #{run.pk}"
    run.export = export_pending(options.as_dict()) | {
        "policy": path, "policy_run": policy_run and policy_run.pk, "reward_run": reward and reward.pk,
        "second_reward_run": second and second.pk, "ensemble_reward_runs": [r.pk for r in ensemble],
    } | ({"boundary": boundary} if boundary else {}) | ({"recipe": recipe} if recipe else {})  # fmt: skip
    run.run_dir, run.data_dir, run.output_dir = str(run_dir), str(run_dir / "data"), str(run_dir / "model")
    run.log_tail = timestamped("Queued: the worker writes its input files when it takes the run.")
    for warning in boundary_warnings(boundary):  # shown at the top of the run page while it runs
        run.log_tail = append_log(run.log_tail, f"WARNING: {warning}")
    run.save()
    if enqueue:
        transaction.on_commit(lambda: training_run_enqueue(run=run))
    return run


def _ensemble(
    kind: str, runs: "list[int | TrainingRun]", reward: TrainingRun | None, second: TrainingRun | None, user
) -> list[TrainingRun]:
    """The succeeded reward-model runs scored with `reward` as PPO's ensemble reward (duplicates and `reward` itself
    dropped); ValidationError for another kind or a run that is also the second opinion."""
    if not runs:
        return []
    if not stage_get(kind).ensemble_reward_field:
        raise ValidationError(ENSEMBLE_KIND.format(kind=stage_get(kind).label))
    members: dict[int, TrainingRun] = {}
    for ref in runs:
        run = reward_resolve(reward_run=ref, user=user)
        if second is not None and run.pk == second.pk:
            raise ValidationError(ENSEMBLE_OVERLAP.format(pk=second.pk))
        if reward is None or run.pk != reward.pk:
            members.setdefault(run.pk, run)
    return list(members.values())


def _models(stage: Stage, out: Path, policy: str, reward: TrainingRun | None) -> dict[str, Any]:
    """The managed config fields known when the run is created: its output dir, policy and reward model (the input
    files' paths are set by the worker when it writes them)."""
    paths = {"output_dir": str(out)}
    if stage.policy_field and (policy or stage.needs_policy):
        paths[stage.policy_field] = policy
    if stage.reward_field:
        paths[stage.reward_field] = str(reward_dir(reward))
    return paths


def finished_runs_get(*, project: Project, kinds: tuple[str, ...]):
    """The project's succeeded runs of these kinds, newest first (the new-run form's choices)."""
    runs = TrainingRun.objects.filter(project=project, kind__in=kinds, status=TrainingRun.Status.SUCCEEDED)
    return runs.order_by("-created_at", "-id")


def ppo_page_get(run: TrainingRun) -> dict[str, Any]:
    """What a policy run's page shows besides the curves: warnings (final, or the log's while it runs) and the
    held-out samples before and after training, side by side (samples.json of the PPO output)."""
    if run.kind not in POLICY_KINDS:
        return {}
    warnings = list((run.metrics or {}).get("warnings") or [])
    if not warnings:
        parts = [part.strip() for line in run.log_tail.splitlines() for part in line.split("WARNING: ")[1:]]
        warnings = list(dict.fromkeys(parts))
    samples: list[dict[str, Any]] = []
    live = False
    if run.output_dir:
        final, running = policy_dir(run) / "samples.json", policy_dir(run) / "samples_live.json"
        if run.status == TrainingRun.Status.SUCCEEDED and final.is_file():
            samples = json.loads(final.read_text(encoding="utf-8"))
        elif running.is_file():  # the monitor's latest samples while the run trains
            samples, live = json.loads(running.read_text(encoding="utf-8")), True
    for sample in samples:
        prompt = sample.get("prompt")
        sample["prompt_text"] = (
            prompt
            if isinstance(prompt, str)
            else "\n".join(f"{turn.get('role')}: {turn.get('content')}" for turn in prompt or [])
        )
        sample["gain"] = (sample.get("after_reward") or 0.0) - (sample.get("before_reward") or 0.0)
    metrics = run.metrics or {}
    headline = [(label, metrics.get(key)) for label, key in HEADLINE if key in metrics]
    members = sorted(int(m[1]) for m in (MEMBER_GAIN.fullmatch(key) for key in metrics) if m)
    at = next((i + 1 for i, (label, _) in enumerate(headline) if label == SCORE_GAIN), len(headline))
    headline[at:at] = [(MEMBER_LABEL.format(i=i), metrics[f"ppo/eval_member{i}_gain_std"]) for i in members]
    costs = [
        {"label": label, "before": metrics[f"ppo/{key}_before"], "after": metrics[f"ppo/{key}_after"],
         "ratio": metrics.get(f"ppo/{key}_ratio"), "note": note}
        for label, key, note in COSTS if f"ppo/{key}_before" in metrics
    ]  # fmt: skip
    return {"warnings": warnings, "samples": samples, "live": live, "headline": headline, "costs": costs,
            "step": samples[0].get("step") if live and samples else None,
            "policy_dir": str(policy_dir(run)) if run.output_dir else ""}  # fmt: skip
