"""`manage.py load_demo`: demo users and a demo project with guidelines and prompts (idempotent)."""

import os
import secrets
from argparse import RawDescriptionHelpFormatter

from django.core.management.base import BaseCommand

from annotation.demo import demo_load

EXAMPLES = """
examples:
  python manage.py load_demo                       # create or update the demo (safe to run again)
  python manage.py load_demo --reset               # delete the demo project's prompts and rankings, start over
  DEMO_PASSWORD=s3cret python manage.py load_demo  # choose the demo users' password

Logins: admin (superuser), maria (project manager, may use /admin/), alice, bob and carol (labelers).
The password is $DEMO_PASSWORD (`make` writes a random one into the git-ignored .env), or a new random one
when it is not set. The logins are printed at the end.
"""


class Command(BaseCommand):
    help = "Create demo users and the 'demo' project (guidelines, members, prompts). Running it twice is safe."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, epilog=EXAMPLES, **kwargs
        )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset", action="store_true", help="Delete the demo project (prompts, rankings) and build it again."
        )

    def handle(self, *args, reset: bool, **options):
        password = os.environ.get("DEMO_PASSWORD") or "-".join(secrets.token_hex(3) for _ in range(3))
        result = demo_load(password=password, reset=reset)
        imported = result.imported
        state = "created" if result.project_created else "already there"
        self.stdout.write(f"Project '{result.project.name}' (slug {result.project.slug}): {state}.")
        self.stdout.write(
            f"Prompts imported: {imported.prompts_created} ({imported.responses_created} responses); "
            f"already present, skipped: {imported.duplicates_skipped}."
        )
        self.stdout.write(self.style.SUCCESS("\nOpen http://127.0.0.1:8000/ and log in as:"))
        for username, user_password, role in result.logins:
            self.stdout.write(f"  {username:<8} password: {user_password:<20} ({role})")
        self.stdout.write("Admin site: http://127.0.0.1:8000/admin/ (admin, maria)")
