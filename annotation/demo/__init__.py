"""A local demo: users, one project with guidelines and members, and prompts imported through the real import path.

`demo_load()` is idempotent: running it again updates passwords and adds nothing twice (the import skips exact
duplicates). `reset=True` deletes the demo project (its prompts, assignments and rankings) and builds it again.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction

from annotation.demo.data import PROMPTS
from annotation.models import Membership, Project
from annotation.services.imports import ImportResult, prompts_import
from annotation.services.projects import guideline_publish, membership_set, project_create

DEMO_SLUG = "demo"
DEMO_NAME = "Helpful assistant responses"
DEMO_DESCRIPTION = "Rank four assistant responses per prompt: helpful, honest, harmless. A demo project."
DEMO_OVERLAP = 3
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


def demo_jsonl() -> bytes:
    """The demo prompts as a JSONL import file."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in PROMPTS).encode("utf-8")


def _user(username: str, password: str, role: str, is_staff: bool) -> AbstractUser:
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.email = f"{username}@example.com"
    user.is_active, user.is_staff, user.is_superuser = True, is_staff, role == "admin"
    user.set_password(password)
    user.save()
    return user


@transaction.atomic
def demo_load(*, password: str, reset: bool = False) -> DemoResult:
    """Create (or bring up to date) the demo users and project, then import the demo prompts."""
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
    return DemoResult(project=project, project_created=created, logins=logins, imported=imported)
