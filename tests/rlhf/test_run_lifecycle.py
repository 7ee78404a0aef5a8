"""Cancelling runs and failing the runs a dead worker left 'running'."""

import os
import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from rlhf.models import TrainingRun
from rlhf.services import training_run_cancel, training_run_execute, training_run_mark_stale
from tests.factories import ProjectFactory
from tests.rlhf.conftest import make_run


@pytest.fixture
def project(db):
    return ProjectFactory()


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_cancel_of_a_queued_run_cancels_it_at_once_and_the_worker_skips_it(project):
    run = make_run(project)
    run = training_run_cancel(run=run)
    assert run.status == "cancelled" and run.finished_at is not None

    assert training_run_execute(run_id=run.pk) == "cancelled"  # the task, when it comes, does nothing
    run.refresh_from_db()
    assert run.status == "cancelled" and run.started_at is None


def test_cancel_of_a_running_run_asks_the_worker_to_stop(project):
    run = make_run(project, status="running")
    run = training_run_cancel(run=run)
    assert run.status == "running" and run.cancel_requested
    assert TrainingRun.objects.get(pk=run.pk).cancel_requested


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_cancel_of_a_finished_run_is_refused(project, status):
    run = make_run(project, status=status)
    with pytest.raises(ValidationError, match="already finished"):
        training_run_cancel(run=run)
    assert TrainingRun.objects.get(pk=run.pk).status == status


def test_mark_stale_fails_a_running_run_whose_worker_process_is_gone(project):
    now = timezone.now()
    dead = make_run(project, status="running", worker_pid=_dead_pid(), worker_host=socket.gethostname(),
                    started_at=now, heartbeat_at=now)  # fmt: skip
    alive = make_run(project, status="running", worker_pid=os.getppid(), worker_host=socket.gethostname(),
                     started_at=now, heartbeat_at=now)  # fmt: skip

    assert training_run_mark_stale() == [dead.pk]

    dead.refresh_from_db()
    assert dead.status == "failed" and dead.finished_at is not None
    assert f"worker process {dead.worker_pid}" in dead.error and "is gone" in dead.error
    assert "is gone" in dead.log_tail
    assert TrainingRun.objects.get(pk=alive.pk).status == "running"


def test_mark_stale_fails_a_run_of_another_host_only_when_its_heartbeat_is_old(project):
    old = timezone.now() - timedelta(minutes=30)
    silent = make_run(
        project, status="running", worker_pid=1, worker_host="elsewhere", started_at=old, heartbeat_at=old
    )
    fresh = make_run(project, status="running", worker_pid=1, worker_host="elsewhere", started_at=old,
                     heartbeat_at=timezone.now())  # fmt: skip
    queued = make_run(project)

    assert training_run_mark_stale(stale_after_s=600) == [silent.pk]
    assert "no heartbeat since" in TrainingRun.objects.get(pk=silent.pk).error
    assert TrainingRun.objects.get(pk=fresh.pk).status == "running"
    assert TrainingRun.objects.get(pk=queued.pk).status == "queued"
