"""Several `manage.py rlhf_worker` processes on one PostgreSQL database: no job runs twice, jobs are taken oldest
first, and a worker skips a job another worker holds instead of waiting for it.

Real processes over the test database (pytest-django's, on the throwaway server of scripts/pg_tests.sh), with tiny
reward models on CPU. `make test` runs this file in its PostgreSQL pass; a hand-run without DATABASE_URL=postgres://
skips it.
"""

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django_tasks_db.models import DBTaskResult

from rlhf.models import TrainingRun
from tests.rlhf.test_worker import SLUG, _pairs_file

REPO = Path(__file__).resolve().parents[2]
RUNS = 6
WAIT_S = 420

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.slow,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="several workers: PostgreSQL only"),
]


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Workers:
    """`rlhf_worker` subprocesses on the test database; each logs to its own file."""

    def __init__(self, tmp: Path, runs_dir: Path):
        self.tmp, self.procs = tmp, {}
        self.env = dict(os.environ)
        self.env.update(
            DATABASE_URL=_database_url(), RLHF_RUNS_DIR=str(runs_dir), DJANGO_SETTINGS_MODULE="config.settings",
            HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
            OMP_NUM_THREADS="1", PYTHONPATH=str(REPO),
        )  # fmt: skip

    def start(self, name: str, *flags: str) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("wb")
        command = [sys.executable, "manage.py", "rlhf_worker", "--no-reload", "--no-startup-delay", "--interval",
                   "0.2", "--worker-id", name, *flags]  # fmt: skip
        self.procs[name] = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self.procs[name]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.tmp.glob("*.log"))

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def workers(transactional_db, tmp_path, runs_dir):
    workers = Workers(tmp_path, runs_dir)
    yield workers
    workers.stop()  # before the test database is flushed


def queue_runs(tmp_path: Path, count: int) -> list[int]:
    """A project from a pairwise file and `count` tiny reward-model runs queued through the CLI, oldest first."""
    quiet = io.StringIO()
    call_command("import_prompts", str(_pairs_file(tmp_path / "pairs.jsonl")), "--project", SLUG, "--kind", "pairwise",
                 stdout=quiet)  # fmt: skip
    for i in range(count):
        call_command("train_reward_model", "--project", SLUG, "--base-model", "tiny", "--max-steps", "1",
                     "--max-length", "32", "--logging-steps", "1", "--test-ratio", "0.25", "--name", f"run {i}",
                     stdout=quiet)  # fmt: skip
    return list(TrainingRun.objects.order_by("created_at", "id").values_list("id", flat=True))


def wait_for(workers: Workers, done, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        for name, proc in workers.procs.items():
            if proc.poll() is not None and proc.returncode != 0:
                raise AssertionError(f"worker {name} exited ({proc.returncode}):\n{workers.logs()}")
        time.sleep(0.5)
    raise AssertionError(f"not {what} after {timeout}s:\n{workers.logs()}")


def tasks_by_run() -> dict[int, DBTaskResult]:
    """The training tasks by run id."""
    tasks = DBTaskResult.objects.filter(task_path="rlhf.tasks.training_run_task")
    return {task.args_kwargs["kwargs"]["run_id"]: task for task in tasks}


def test_two_workers_share_the_queue_each_run_once_and_oldest_first(workers, tmp_path):
    run_ids = queue_runs(tmp_path, RUNS)
    assert len(run_ids) == RUNS and set(TrainingRun.objects.values_list("status", flat=True)) == {"queued"}
    first, second = workers.start("worker-a"), workers.start("worker-b")

    wait_for(workers, lambda: not TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE).exists(), "all finished")
    workers.stop()

    runs = {run.pk: run for run in TrainingRun.objects.all()}
    tasks = tasks_by_run()
    assert {pk: run.status for pk, run in runs.items()} == dict.fromkeys(run_ids, "succeeded"), workers.logs()
    # each job taken by one worker, once: one claim on the task, one start of the run
    assert all(len(tasks[pk].worker_ids) == 1 and tasks[pk].status == "SUCCESSFUL" for pk in run_ids)
    assert all(runs[pk].log_tail.count("Started by worker pid") == 1 for pk in run_ids)
    by_worker = {name: [pk for pk in run_ids if tasks[pk].worker_ids == [name]] for name in ("worker-a", "worker-b")}
    assert sorted(by_worker["worker-a"] + by_worker["worker-b"]) == sorted(run_ids)
    assert by_worker["worker-a"] and by_worker["worker-b"], by_worker  # both took jobs
    pids = {"worker-a": first.pid, "worker-b": second.pid}
    assert all(runs[pk].worker_pid == pids[name] for name, pks in by_worker.items() for pk in pks)

    # FIFO: each worker took its jobs oldest first, and the k-th claim overall was among the k+2 oldest (two workers
    # claim concurrently, so the one that started a moment later may hold the next-older job)
    claimed = sorted(run_ids, key=lambda pk: tasks[pk].started_at)
    assert all(run_ids.index(pk) <= k + 1 for k, pk in enumerate(claimed)), (claimed, run_ids)
    for pks in by_worker.values():
        assert sorted(pks, key=lambda pk: tasks[pk].started_at) == pks


def test_a_worker_skips_the_job_another_transaction_holds_and_takes_the_next(workers, tmp_path):
    """SKIP LOCKED: the oldest task's row is held (as another worker's claim would hold it); a worker started now
    takes the second-oldest at once instead of queueing behind it."""
    run_ids = queue_runs(tmp_path, 2)
    tasks = tasks_by_run()
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                DBTaskResult.objects.select_for_update().get(pk=tasks[run_ids[0]].pk)
                locked.set()
                release.wait(WAIT_S)
        finally:
            connection.close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert locked.wait(10)
    try:
        worker = workers.start("worker-c", "--max-tasks", "1")
        wait_for(workers, lambda: worker.poll() == 0, "one task done")
    finally:
        release.set()
        holder.join(10)

    tasks = tasks_by_run()
    assert tasks[run_ids[1]].worker_ids == ["worker-c"] and tasks[run_ids[1]].status == "SUCCESSFUL"
    assert tasks[run_ids[0]].worker_ids == [] and tasks[run_ids[0]].status == "READY"
    assert TrainingRun.objects.get(pk=run_ids[0]).status == "queued"


def test_queue_names_route_training_to_gpu_workers(workers, tmp_path):
    """A `--queue gpu` worker takes only training runs; `--queue default` only the jobs on finished runs (scoring,
    generation). Quick jobs: the run is cancelled while queued (its task ends at once) and the scoring job fails
    at once on a run that did not succeed."""
    from annotation.models import Project
    from rlhf.tasks import response_scores_task

    run_ids = queue_runs(tmp_path, 1)
    TrainingRun.objects.filter(pk=run_ids[0]).update(status="cancelled", cancel_requested=True)
    scoring = response_scores_task.enqueue(run_id=run_ids[0], project_id=Project.objects.get(slug=SLUG).pk)

    gpu = workers.start("gpu-1", "--queue", "gpu", "--batch")
    wait_for(workers, lambda: gpu.poll() is not None, "the gpu worker done")
    training = tasks_by_run()[run_ids[0]]
    assert gpu.returncode == 0 and training.queue_name == "gpu", workers.logs()
    assert training.worker_ids == ["gpu-1"] and training.return_value == "cancelled"
    assert DBTaskResult.objects.get(pk=scoring.id).status == "READY"  # not its queue

    cpu = workers.start("cpu-1", "--queue", "default", "--batch")
    wait_for(workers, lambda: cpu.poll() is not None, "the default worker done")
    task = DBTaskResult.objects.get(pk=scoring.id)
    assert task.queue_name == "default" and task.worker_ids == ["cpu-1"] and task.status == "FAILED"
    assert "ValidationError" in task.exception_class_path
