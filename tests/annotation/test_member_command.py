"""`manage.py member add|remove|list`: memberships from the command line, through the membership services."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Membership, Ranking
from tests.factories import ProjectFactory, PromptFactory, UserFactory, labeler, rank_queue

ROOT = Path(__file__).resolve().parents[2]


def member(*args) -> str:
    out = StringIO()
    call_command("member", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def project(db):
    return ProjectFactory(slug="support-bot")


def test_add_makes_the_user_a_labeler_and_says_so(project):
    alice = UserFactory(username="alice")

    out = member("add", "--project", "support-bot", "--user", "alice", "--role", "labeler")

    assert out == "Added alice to support-bot as labeler.\n"
    assert Membership.objects.get(project=project, user=alice).role == "labeler"


def test_add_for_an_existing_member_changes_the_role(project):
    bob = labeler(project, username="bob")

    out = member("add", "--project", "support-bot", "--user", "bob", "--role", "manager")

    assert out == "bob in support-bot: labeler -> manager.\n"
    assert Membership.objects.get(project=project, user=bob).role == "manager"
    assert Membership.objects.filter(user=bob).count() == 1


def test_add_with_the_same_role_changes_nothing(project):
    labeler(project, username="bob")
    assert "already a labeler of support-bot; nothing changed" in member(
        "add", "--project", "support-bot", "--user", "bob", "--role", "labeler"
    )


def test_remove_deletes_the_membership_and_keeps_the_rankings(project):
    PromptFactory(project=project)
    bob = labeler(project, username="bob")
    rank_queue(project, bob)

    out = member("remove", "--project", "support-bot", "--user", "bob")

    assert out == "Removed bob from support-bot (their rankings stay).\n"
    assert not Membership.objects.filter(project=project, user=bob).exists()
    assert Ranking.objects.filter(labeler=bob).count() == 1


def test_list_prints_members_sorted_by_name_with_roles(project):
    labeler(project, username="zoe")
    Membership.objects.create(project=project, user=UserFactory(username="anna"), role="manager", excluded=False)
    Membership.objects.create(project=project, user=UserFactory(username="max"), role="labeler", excluded=True)

    out = member("list", "--project", "support-bot")

    assert out.splitlines() == [
        "user  role      excluded",
        "anna  manager   no",
        "max   labeler   yes",
        "zoe   labeler   no",
        "3 member(s) of support-bot.",
    ]


def test_list_of_a_project_without_members(project):
    assert member("list", "--project", "support-bot") == "support-bot has no members.\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["add", "--project", "nope", "--user", "alice", "--role", "labeler"], "No project with slug 'nope'."),
        (["list", "--project", "nope"], "No project with slug 'nope'."),
        (["add", "--project", "support-bot", "--user", "ghost", "--role", "labeler"], "No user named 'ghost'."),
        (["remove", "--project", "support-bot", "--user", "ghost"], "No user named 'ghost'."),
        (
            ["add", "--project", "support-bot", "--user", "alice", "--role", "admin"],
            "Unknown role 'admin': use one of manager, labeler.",
        ),
        (["remove", "--project", "support-bot", "--user", "alice"], "alice is not a member of support-bot."),
    ],
)
def test_unknown_project_user_role_or_non_member_is_a_command_error_that_changes_nothing(project, args, message):
    UserFactory(username="alice")

    with pytest.raises(CommandError) as caught:
        member(*args)

    assert str(caught.value) == message
    assert Membership.objects.count() == 0


def test_help_lists_the_actions_and_examples():
    result = subprocess.run(
        [sys.executable, "manage.py", "member", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert "{add,remove,list}" in result.stdout and "examples:" in result.stdout
    assert "python manage.py member add --project support-bot --user alice --role labeler" in result.stdout
    assert "python manage.py member list --project support-bot" in result.stdout


def test_add_without_role_is_a_usage_error_naming_the_option():
    result = subprocess.run(
        [sys.executable, "manage.py", "member", "add", "--project", "x", "--user", "y"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode == 2
    assert "--role" in result.stderr
