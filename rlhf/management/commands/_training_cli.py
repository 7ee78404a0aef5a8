"""What the training commands (train_reward_model, run_ppo, run_chain, generate_responses) share: a flag for every
field of a config dataclass, the user and project lookups, and training a run here with a progress bar.
The leading underscore keeps Django from listing this module as a command."""

import types
from argparse import ArgumentParser, BooleanOptionalAction
from collections.abc import Callable
from dataclasses import Field, fields
from typing import Any, Union, get_args, get_origin

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from annotation.models import Project
from rlhf.models import TrainingRun
from rlhf.services import training_run_execute
from rlhf.training.progress import ProgressEvent

POLICY_BAR_METRICS = ("mean_reward", "kl", "loss", "accuracy")


def policy_bar_metric(key: str, value: Any) -> bool:
    """PPO and chain runs show these metrics on the progress bar (by the last part of their name)."""
    return isinstance(value, float) and key.split("/")[-1] in POLICY_BAR_METRICS


def reward_bar_metric(key: str, value: Any) -> bool:
    """Reward-model runs show every loss and accuracy on the progress bar."""
    return "loss" in key or "accuracy" in key


def flag_type(dc_field: Field) -> type:
    """The field's type, without the `| None` of an optional one."""
    kind = dc_field.type
    if get_origin(kind) in (Union, types.UnionType):
        kind = next(a for a in get_args(kind) if a is not type(None))
    return kind


def add_config_flags(
    parser: ArgumentParser, cls: type, managed: set[str], aliases: dict[str, list[str]] | None = None
) -> None:
    """A `--field-name` flag (plus its `aliases`) for every field of the dataclass `cls` not in `managed`, stored as
    `cfg_<field>` with the default None (unset: the dataclass default applies)."""
    group = parser.add_argument_group(f"training config ({cls.__module__}.{cls.__name__})")
    for dc_field in fields(cls):
        if dc_field.name in managed:
            continue
        flags = [f"--{dc_field.name.replace('_', '-')}", *(aliases or {}).get(dc_field.name, [])]
        kind = flag_type(dc_field)
        extra = {"action": BooleanOptionalAction} if kind is bool else {"type": kind}
        help_text = dc_field.metadata.get("help", "").replace("%", "%%") + f" (default: {dc_field.default!r})"
        group.add_argument(*flags, dest=f"cfg_{dc_field.name}", default=None, help=help_text, **extra)


def config_from(options: dict) -> dict:
    """The config flags that were set, by field name."""
    return {k.removeprefix("cfg_"): v for k, v in options.items() if k.startswith("cfg_") and v is not None}


def creator(user: str | None) -> AbstractUser | None:
    found = get_user_model().objects.filter(username=user).first() if user else None
    if user and found is None:
        raise CommandError(f"No user {user!r}.")
    return found


def project_get(slug: str) -> Project:
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise CommandError(f"No project with slug {slug!r}.")
    return project


def train_in_foreground(
    command: BaseCommand, run: TrainingRun, shows: Callable[[str, Any], bool] = policy_bar_metric
) -> TrainingRun:
    """Train the run in this process with a tqdm bar on stderr (its postfix: the metrics `shows` picks);
    CommandError unless it succeeded."""
    from tqdm import tqdm

    bar = tqdm(total=0, unit="step", desc=f"run {run.pk}", file=command.stderr._out, dynamic_ncols=True)

    def show(event: ProgressEvent) -> None:
        if event.total_steps and bar.total != event.total_steps:
            bar.total = event.total_steps
        bar.n = min(event.step, bar.total or event.step)
        bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in event.metrics.items() if shows(k, v)}, refresh=False)
        bar.refresh()
        if event.message:
            bar.write(event.message, file=command.stderr._out)

    try:
        status = training_run_execute(run_id=run.pk, observer=show)
    finally:
        bar.close()
    run.refresh_from_db()
    if status != TrainingRun.Status.SUCCEEDED:
        raise CommandError(f"Run {run.pk} {status}: {run.error.splitlines()[0] if run.error else ''}")
    return run


def queue_or_train(
    command: BaseCommand,
    run: TrainingRun,
    *,
    counts: Callable[[TrainingRun], str],
    site_url: str,
    foreground: bool,
    shows: Callable[[str, Any], bool] = policy_bar_metric,
) -> TrainingRun | None:
    """Print the run's page: queued for the worker (returns None; the worker writes its inputs when it takes it), or
    trained here (the inputs written first; prints what it trained on, `counts(run)`; returns the succeeded run)."""
    url = site_url.rstrip("/") + reverse("rlhf:run-detail", args=[run.pk])
    if not foreground:
        command.stdout.write(f"Run {run.pk} queued: {url}")
        command.stdout.write("A worker writes its inputs and trains it: python manage.py rlhf_worker")
        return None
    command.stdout.write(f"Run {run.pk}, training here: {url}")
    run = train_in_foreground(command, run, shows)
    command.stdout.write(f"  trained on {counts(run)}")
    return run
