"""`manage.py rlhf_worker [db_worker options]`: mark runs whose worker died as failed, start the periodic sweep of
jobs without a heartbeat, then run django-tasks-db's `db_worker` with the same options."""

from datetime import timedelta

from django.conf import settings
from django.core.management import call_command, load_command_class
from django.core.management.base import BaseCommand, CommandError

from rlhf.services import STALE_AFTER_S, training_run_mark_stale
from rlhf.services.heartbeat import SWEEP_EVERY_S, sweeper_start
from rlhf.tasks import DEFAULT_QUEUE, TRAINING_QUEUE

ALL_QUEUES = "*"
QUEUE_UNKNOWN = "Unknown queue {name!r}: the queues are {known} (settings.TASKS), or '*' for all."

EXAMPLES = """
A run left 'running' by a worker that was killed (its process is gone from this host, or it has sent no heartbeat
for --stale-after seconds) is marked failed with an explanation before this worker takes new tasks. While it lives,
the worker sweeps every --sweep-every seconds: any running job (training, scoring, generation) of any worker whose
heartbeat is older than --stale-after is marked failed ("worker stopped"); its partial files are kept.

Queues: training runs of every kind go to the 'gpu' queue, the jobs on a finished run (scoring, generation) to
'default' (rlhf/tasks.py). A worker takes every queue unless told --queue. Each takes the oldest ready job of its
queues (FIFO by enqueue time), claimed under a row lock with SKIP LOCKED, so any number of workers on any hosts
sharing one PostgreSQL database never run a job twice (docs/deploy.md).

examples:
  python manage.py rlhf_worker                       # what `make demo` starts: every queue
  python manage.py rlhf_worker --queue gpu           # a GPU host: training runs only
  python manage.py rlhf_worker --queue default       # a CPU host: scoring and generation only
  python manage.py rlhf_worker --no-reload --interval 0.5
  python manage.py rlhf_worker --batch               # run what is queued, then exit
"""


class Command(BaseCommand):
    help = "Run the background worker (training runs, scoring) after failing runs whose worker died."

    def create_parser(self, prog_name, subcommand, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        return super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, epilog=EXAMPLES, **kwargs
        )

    def add_arguments(self, parser):
        self.worker = load_command_class("django_tasks_db", "db_worker")
        self.worker.add_arguments(parser)
        parser.add_argument(
            "--queue",
            dest="queue_name",
            metavar="NAME[,NAME]",
            help=f"The queues this worker takes: {TRAINING_QUEUE} (training runs), {DEFAULT_QUEUE} (scoring, "
            f"generation), comma-separated, or '{ALL_QUEUES}' for all (default). Same as --queue-name.",
        )
        parser.set_defaults(queue_name=ALL_QUEUES)
        parser.add_argument(
            "--stale-after",
            type=float,
            default=STALE_AFTER_S,
            metavar="SECONDS",
            help="A running job without a heartbeat for this long is failed (default: %(default)s).",
        )
        parser.add_argument(
            "--sweep-every",
            type=float,
            default=SWEEP_EVERY_S,
            metavar="SECONDS",
            help="How often this worker sweeps for jobs without a heartbeat (default: %(default)s).",
        )

    def handle(self, *args, stale_after: float, sweep_every: float, **options):
        known = settings.TASKS[options.get("backend_name") or "default"].get("QUEUES") or []
        for name in str(options["queue_name"]).split(","):
            if name != ALL_QUEUES and name not in known:
                raise CommandError(QUEUE_UNKNOWN.format(name=name, known=", ".join(known)))
        marked = training_run_mark_stale(stale_after_s=stale_after)
        if marked:
            self.stdout.write(self.style.WARNING(f"Marked failed (worker gone): runs {', '.join(map(str, marked))}"))
        sweeper_start(every_s=sweep_every, max_age=timedelta(seconds=stale_after))
        options = {k: v for k, v in options.items() if k not in ("skip_checks",)}
        call_command("db_worker", *args, **options)
