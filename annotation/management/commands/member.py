"""`manage.py member add|remove|list --project SLUG ...`: a project's members from the command line."""

from argparse import RawDescriptionHelpFormatter

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Membership, Project
from annotation.selectors import membership_role_get, memberships_for_project
from annotation.services.projects import membership_remove, membership_set

ROLES = [choice.value for choice in Membership.Role]
EXAMPLES = """
Roles: labeler (ranks prompts) or manager (also edits the project, its guidelines and members). Adding someone who
is already a member changes their role. Removing a member keeps their rankings.

examples:
  python manage.py member add --project support-bot --user alice --role labeler
  python manage.py member add --project support-bot --user carol --role manager   # or promote a labeler
  python manage.py member remove --project support-bot --user alice
  python manage.py member list --project support-bot
"""
NO_PROJECT = "No project with slug {slug!r}."
NO_USER = "No user named {username!r}."
NOT_A_MEMBER = "{username} is not a member of {slug}."


class Command(BaseCommand):
    help = "Add, remove or list the members of a project (labelers and managers)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, epilog=EXAMPLES, **kwargs
        )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{add,remove,list}")
        add = actions.add_parser("add", help="Add a user to the project, or change their role.")
        remove = actions.add_parser("remove", help="Remove a user from the project (their rankings stay).")
        listing = actions.add_parser("list", help="List the project's members and their roles.")
        for sub in (add, remove, listing):
            sub.add_argument("--project", required=True, metavar="SLUG", help="The project's slug.")
        for sub in (add, remove):
            sub.add_argument("--user", required=True, metavar="NAME", help="The user's username.")
        # Not argparse `choices`: an unknown role is a CommandError that names the valid ones, like the other errors.
        add.add_argument("--role", required=True, metavar="|".join(ROLES), help="The member's role.")

    def handle(self, *args, action: str, project: str, **options):
        found = Project.objects.filter(slug=project).first()
        if found is None:
            raise CommandError(NO_PROJECT.format(slug=project))
        if action == "list":
            self._list(found)
        elif action == "add":
            self._add(found, _user(options["user"]), options["role"])
        else:
            self._remove(found, _user(options["user"]))

    def _add(self, project: Project, user, role: str) -> None:
        if role not in ROLES:
            raise CommandError(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
        before = membership_role_get(project=project, user=user)
        membership_set(project=project, user=user, role=role)
        if before is None:
            self.stdout.write(f"Added {user.username} to {project.slug} as {role}.")
        elif before != role:
            self.stdout.write(f"{user.username} in {project.slug}: {before} -> {role}.")
        else:
            self.stdout.write(f"{user.username} is already a {role} of {project.slug}; nothing changed.")

    def _remove(self, project: Project, user) -> None:
        if membership_role_get(project=project, user=user) is None:
            raise CommandError(NOT_A_MEMBER.format(username=user.username, slug=project.slug))
        membership_remove(project=project, user=user)
        self.stdout.write(f"Removed {user.username} from {project.slug} (their rankings stay).")

    def _list(self, project: Project) -> None:
        members = list(memberships_for_project(project=project))
        if not members:
            self.stdout.write(f"{project.slug} has no members.")
            return
        width = max(len("user"), *(len(m.user.username) for m in members))
        self.stdout.write(f"{'user':<{width}}  {'role':<8}  excluded")
        for m in members:
            self.stdout.write(f"{m.user.username:<{width}}  {m.role:<8}  {'yes' if m.excluded else 'no'}")
        self.stdout.write(f"{len(members)} member(s) of {project.slug}.")


def _user(username: str):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(NO_USER.format(username=username))
    return user
