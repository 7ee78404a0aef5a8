"""A local demo: users, one project with guidelines and members, and prompts imported through the real import path.

`demo_load()` is idempotent: running it again updates passwords and adds nothing twice (the import skips exact
duplicates). `reset=True` deletes the demo project (its prompts, assignments and rankings) and builds it again.
`with_rankings=True` adds the rankings of three simulated labelers (`annotation.demo.simulated`), so that the
project has something to train on and to show from the start; without it the project has no rankings.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction

from annotation.demo.data import PROMPTS
from annotation.demo.simulated import SIMULATED_LABELERS, demo_rankings_simulate
from annotation.models import Membership, Project
from annotation.services.imports import ImportResult, prompts_import
from annotation.services.projects import guideline_publish, membership_set, project_create, project_update

DEMO_SLUG = "demo"
DEMO_NAME = "Helpful assistant responses"
DEMO_DESCRIPTION = "Rank four assistant responses per prompt: helpful, honest, harmless. A demo project."
DEMO_OVERLAP = 3
# With simulated rankings a prompt wants six: the three simulated labelers' and those of alice, bob and carol, who
# can then still rank every prompt. At overlap 3 the simulated rankings would complete every prompt and leave the
# people logging in nothing to label; at overlap 5 the last of the three would find nothing left.
DEMO_OVERLAP_WITH_RANKINGS = DEMO_OVERLAP + len(SIMULATED_LABELERS)
GUIDELINES = (Path(__file__).parent / "guidelines.md").read_text(encoding="utf-8")

# username -> (role in the demo project or "admin", is_staff)
DEMO_USERS = {
    "admin": ("admin", True),
    "maria": (Membership.Role.MANAGER, True),
    "alice": (Membership.Role.LABELER, False),
    "bob": (Membership.Role.LABELER, False),
    "carol": (Membership.Role.LABELER, False),
}


@dataclass
class DemoResult:
    project: Project
    project_created: bool
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (username, password, role)
    imported: ImportResult | None = None
    simulated_rankings: int | None = None  # rankings the simulated labelers added; None without with_rankings


def demo_jsonl() -> bytes:
    """The demo prompts as a JSONL import file, without their reference ranks (unknown fields become metadata)."""
    rows = ({k: v for k, v in row.items() if k != "reference_ranks"} for row in PROMPTS)
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def _user(username: str, password: str, role: str, is_staff: bool) -> AbstractUser:
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.email = f"{username}@example.com"
    user.is_active, user.is_staff, user.is_superuser = True, is_staff, role == "admin"
    user.set_password(password)
    user.save()
    return user


@transaction.atomic
def demo_load(*, password: str, reset: bool = False, with_rankings: bool = False) -> DemoResult:
    """Create (or bring up to date) the demo users and project, import the demo prompts, and with `with_rankings`
    let the simulated labelers rank every prompt they have not ranked yet."""
    users = {name: _user(name, password, role, staff) for name, (role, staff) in DEMO_USERS.items()}
    if reset:
        Project.objects.filter(slug=DEMO_SLUG).delete()
    project = Project.objects.filter(slug=DEMO_SLUG).first()
    created = project is None
    if created:
        project = project_create(
            name=DEMO_NAME,
            slug=DEMO_SLUG,
            description=DEMO_DESCRIPTION,
            guidelines=GUIDELINES,
            overlap=DEMO_OVERLAP,
            created_by=users["admin"],
        )
    elif project.guidelines.order_by("-version").values_list("text", flat=True).first() != GUIDELINES:
        guideline_publish(project=project, text=GUIDELINES, user=users["admin"])
    for name, (role, _) in DEMO_USERS.items():
        if role != "admin":
            membership_set(project=project, user=users[name], role=role)
    imported = prompts_import(project=project, data=demo_jsonl(), filename="demo.jsonl")
    logins = [(name, password, role) for name, (role, _) in DEMO_USERS.items()]
    result = DemoResult(project=project, project_created=created, logins=logins, imported=imported)
    if with_rankings:
        if project.overlap < DEMO_OVERLAP_WITH_RANKINGS:
            project_update(project=project, overlap=DEMO_OVERLAP_WITH_RANKINGS)
        result.simulated_rankings = demo_rankings_simulate(project=project)
    return result
