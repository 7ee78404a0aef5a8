"""Which models a manager may name for a run (a base model, a policy, a reward model): never a raw path of their
choosing.

Allowed: the built-in names ('default', 'tiny'); an earlier run as 'run:ID' (resolved by `policy_resolve`, which
checks the caller manages its project); a path inside the run directory of a run of the *same* project; a Hugging
Face model id ('org/name', which is not a local path); or a path inside a directory an admin listed in the setting
RLHF_ALLOWED_MODEL_DIRS. Admins (superusers) and the command line without a user are trusted and not checked.
"""

import re
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError

from annotation.models import Project
from annotation.selectors import is_admin
from rlhf.models import TrainingRun
from rlhf.services.common import runs_root
from rlhf.training.launch import ACCELERATE, accelerate_config_path, launcher_parse, shipped_configs

BUILTIN_MODELS = {"default", "tiny"}
RUN_REF = re.compile(r"^(?:run[:#-]?)?(\d+)$", re.IGNORECASE)
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
MODEL_FIELDS = ("base_model", "policy", "reward_model")

MODEL_OTHER_PROJECT = (
    "{what}: {value!r} is inside the run directory of another project's run (or of no run); use a run of this "
    "project ('run:ID')."
)
MODEL_PATH_REFUSED = (
    "{what}: {value!r} is a local path outside this project's runs; name a run ('run:ID'), a model id such as "
    "'org/name', or a directory an admin allowed (RLHF_ALLOWED_MODEL_DIRS)."
)


def allowed_model_dirs() -> list[Path]:
    return [Path(d).expanduser().resolve() for d in getattr(settings, "RLHF_ALLOWED_MODEL_DIRS", []) if d]


def _is_hub_id(value: str) -> bool:
    return bool(HUB_ID.match(value)) and ".." not in value and not Path(value).expanduser().exists()


def model_ref_check(*, value: str, project: Project, user: AbstractUser | None, what: str) -> None:
    """Raise ValidationError unless `value` names a model this caller may use for a run of `project`."""
    value = str(value or "").strip()
    if user is None or is_admin(user) or not value or value in BUILTIN_MODELS or RUN_REF.match(value):
        return
    if _is_hub_id(value):
        return
    path = Path(value).expanduser().resolve()
    root = runs_root()
    if path.is_relative_to(root):
        parts = path.relative_to(root).parts
        if parts and parts[0].isdigit() and TrainingRun.objects.filter(pk=int(parts[0]), project=project).exists():
            return
        raise ValidationError(MODEL_OTHER_PROJECT.format(what=what, value=value))
    if any(path.is_relative_to(allowed) for allowed in allowed_model_dirs()):
        return
    raise ValidationError(MODEL_PATH_REFUSED.format(what=what, value=value))


def config_models_check(*, config: dict, project: Project, user: AbstractUser | None) -> None:
    for name in MODEL_FIELDS:
        if name in config:
            model_ref_check(value=config[name], project=project, user=user, what=f"config.{name}")


LAUNCHER_REFUSED = (
    "config.launcher: {value!r} names an accelerate config outside configs/accelerate/; use one of: {names} "
    "(an admin may name any file)."
)


def launcher_check(*, config: dict, user: AbstractUser | None) -> None:
    """A manager may launch with a shipped accelerate config (configs/accelerate/<name>); a path of their own choosing
    only as an admin or from the command line (user None). The file must exist either way."""
    try:
        kind, spec = launcher_parse(config.get("launcher", "inprocess"))
        if kind == ACCELERATE:
            accelerate_config_path(spec)
    except (ValueError, FileNotFoundError) as exc:
        raise ValidationError(f"config.launcher: {exc}") from None
    if kind == ACCELERATE and spec.removesuffix(".yaml") not in shipped_configs() and user and not is_admin(user):
        raise ValidationError(LAUNCHER_REFUSED.format(value=config.get("launcher"), names=", ".join(shipped_configs())))
