"""`manage.py load_demo`: demo users and a demo project with guidelines and prompts (idempotent), optionally with
the rankings of three simulated labelers."""

import os
import secrets
from argparse import RawDescriptionHelpFormatter

from django.core.management.base import BaseCommand

from annotation.demo import DEMO_SLUG, demo_load
from annotation.demo.simulated import SIMULATED_LABELERS

# On 27 prompts the default 10% held-out split happens to hold out none: 20% gives the reward model a test set.
CHAIN_FLAGS = "--foreground --test-ratio 0.2"

EXAMPLES = f"""
examples:
  python manage.py load_demo                       # create or update the demo (safe to run again), no rankings
  python manage.py load_demo --with-rankings       # plus simulated rankings to train on (what `make demo` runs)
  python manage.py run_chain --project demo {CHAIN_FLAGS}   # then SFT -> reward model -> PPO
  python manage.py compare_policy --run ID --project demo --k 2 --limit 3 --max-new-tokens 48
  python manage.py load_demo --with-rankings       # again: the simulated labelers rank that blind comparison batch
  python manage.py load_demo --reset               # delete the demo project's prompts and rankings, start over
  DEMO_PASSWORD=s3cret python manage.py load_demo  # choose the demo users' password

Logins: admin (superuser), maria (project manager, may use /admin/), alice, bob and carol (labelers).
The password is $DEMO_PASSWORD (`make` writes a random one into the git-ignored .env), or a new random one
when it is not set. The logins are printed at the end.

--with-rankings adds dave, erin and frank, simulated labelers nobody can log in as. Each ranks every demo prompt
in the order its writer intended, with seeded noise: a smoke test for training, not real judgments. Generated
responses (a new round, a blind comparison batch) they rank by likeness to the prompt's best demo answer, with
noise. The project's overlap becomes 6, so that alice, bob and carol still get every prompt to rank.
"""


class Command(BaseCommand):
    help = (
        "Create demo users and the 'demo' project (guidelines, members, prompts), optionally with simulated "
        "rankings. Running it twice is safe."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, epilog=EXAMPLES, **kwargs
        )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset", action="store_true", help="Delete the demo project (prompts, rankings) and build it again."
        )
        parser.add_argument(
            "--with-rankings",
            action="store_true",
            help="Add the rankings of three simulated labelers (dave, erin, frank), so the project can be trained on.",
        )

    def handle(self, *args, reset: bool, with_rankings: bool, **options):
        password = os.environ.get("DEMO_PASSWORD") or "-".join(secrets.token_hex(3) for _ in range(3))
        result = demo_load(password=password, reset=reset, with_rankings=with_rankings)
        imported = result.imported
        state = "created" if result.project_created else "already there"
        self.stdout.write(f"Project '{result.project.name}' (slug {result.project.slug}): {state}.")
        self.stdout.write(
            f"Prompts imported: {imported.prompts_created} ({imported.responses_created} responses); "
            f"already present, skipped: {imported.duplicates_skipped}."
        )
        if result.simulated_rankings is not None:
            names = ", ".join(labeler.username for labeler in SIMULATED_LABELERS)
            self.stdout.write(
                f"Simulated rankings ({names}): {result.simulated_rankings} added; overlap {result.project.overlap}."
            )
            self.stdout.write(f"Train on them: python manage.py run_chain --project {DEMO_SLUG} {CHAIN_FLAGS}")
            self.stdout.write(
                f"Then a blind comparison batch of its policy: python manage.py compare_policy --run ID --project "
                f"{DEMO_SLUG} --k 2 --limit 3, and `load_demo --with-rankings` again to have it ranked (simulated)."
            )
        self.stdout.write(self.style.SUCCESS("\nOpen http://127.0.0.1:8000/ and log in as:"))
        for username, user_password, role in result.logins:
            self.stdout.write(f"  {username:<8} password: {user_password:<20} ({role})")
        self.stdout.write("Admin site: http://127.0.0.1:8000/admin/ (admin, maria)")
