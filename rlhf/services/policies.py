"""Resolve a run's models: a policy (an earlier policy run, a path or a model id) and a reward model (a finished run
whose kind leaves one), and where in a run's output dir they are (the registry's `outputs`)."""

import re
from pathlib import Path

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError

from annotation.models import Membership
from annotation.selectors import is_admin
from rlhf.models import TrainingRun
from rlhf.training.registry import POLICY, REWARD_MODEL, kinds_with, stage_get

POLICY_KINDS = kinds_with(POLICY)
REWARD_KINDS = kinds_with(REWARD_MODEL)
RUN_REF = re.compile(r"^(?:run[:#-]?)?(\d+)$", re.IGNORECASE)

RUN_NOT_FOUND = "No training run {id} that you may use."
RUN_NOT_POLICY = "Run {id} is a {kind} run, not a policy (use an SFT, PPO, DPO, GRPO or chain run)."
RUN_NOT_REWARD = "Run {id} is a {kind} run, not a reward model."
RUN_NOT_DONE = "Run {id} has not succeeded (status {status}): it has no model yet."


def policy_dir(run: TrainingRun) -> Path:
    """Where a succeeded policy run's model is: the output dir (a chain: its PPO stage)."""
    return stage_get(run.kind).output_dir(run.output_dir, POLICY)


def reward_dir(run: TrainingRun) -> Path:
    return stage_get(run.kind).output_dir(run.output_dir, REWARD_MODEL)


def run_for(user: AbstractUser | None, run_id: int) -> TrainingRun:
    """The run, if `user` (None: the command line) may use it: an admin, or a manager of its project."""
    run = TrainingRun.objects.select_related("project").filter(pk=run_id).first()
    if run is None:
        raise ValidationError(RUN_NOT_FOUND.format(id=run_id))
    if user is not None and not is_admin(user):
        manages = Membership.objects.filter(project_id=run.project_id, user=user, role=Membership.Role.MANAGER)
        if not manages.exists():
            raise ValidationError(RUN_NOT_FOUND.format(id=run_id))
    return run


def policy_resolve(*, policy: "str | TrainingRun", user: AbstractUser | None = None) -> tuple[str, TrainingRun | None]:
    """(model path or id, the run it came from). `policy`: a run, 'run:ID' / 'ID', a local path or a model id."""
    run = policy if isinstance(policy, TrainingRun) else None
    if run is None:
        match = RUN_REF.match(str(policy).strip())
        if not match:
            return str(policy).strip(), None
        run = run_for(user, int(match.group(1)))
    if run.kind not in POLICY_KINDS:
        raise ValidationError(RUN_NOT_POLICY.format(id=run.pk, kind=run.get_kind_display()))
    if run.status != TrainingRun.Status.SUCCEEDED or not run.output_dir:
        raise ValidationError(RUN_NOT_DONE.format(id=run.pk, status=run.status))
    return str(policy_dir(run)), run


def reward_resolve(*, reward_run: "int | TrainingRun", user: AbstractUser | None = None) -> TrainingRun:
    run = reward_run if isinstance(reward_run, TrainingRun) else run_for(user, int(reward_run))
    if run.kind not in REWARD_KINDS:
        raise ValidationError(RUN_NOT_REWARD.format(id=run.pk, kind=run.get_kind_display()))
    if run.status != TrainingRun.Status.SUCCEEDED or not run.output_dir:
        raise ValidationError(RUN_NOT_DONE.format(id=run.pk, status=run.status))
    return run
