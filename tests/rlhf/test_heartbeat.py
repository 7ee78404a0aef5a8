"""Dead workers are noticed: the jobs' heartbeats, the sweep that fails jobs without one, the worker's periodic sweep
and the run page's."""

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from rlhf.models import TrainingRun
from rlhf.services import response_scores_execute, training_run_sweep_stale
from rlhf.services.heartbeat import JobState, heartbeat, sweeper_start
from tests.annotation.api._helpers import api_client
from tests.factories import ProjectFactory, manager
from tests.rlhf.conftest import make_run

NOW = timezone.now()


@pytest.fixture
def project(db):
    return ProjectFactory(slug="alpha")


def _running(project, tmp_path: Path, beat_age: timedelta | None, started_age: timedelta = timedelta(hours=1), now=NOW):
    run_dir = tmp_path / f"run-{TrainingRun.objects.count()}"
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "model" / "checkpoint.bin").write_bytes(b"partial")
    return make_run(
        project, status="running", started_at=now - started_age, heartbeat_at=now - beat_age if beat_age else None,
        run_dir=str(run_dir), output_dir=str(run_dir / "model"), log_tail="step 3",
    )  # fmt: skip


def test_sweep_fails_a_stale_running_run_keeps_a_fresh_one_and_leaves_queued_runs(project, tmp_path):
    fresh = _running(project, tmp_path, timedelta(seconds=30))
    stale = _running(project, tmp_path, timedelta(minutes=3))
    silent = _running(project, tmp_path, None)  # never beat, started an hour ago
    young = _running(project, tmp_path, None, started_age=timedelta(seconds=10))
    queued = make_run(project, created_at=NOW - timedelta(hours=1))

    marked = training_run_sweep_stale(now=NOW)

    assert sorted(marked) == sorted([(stale.pk, "training"), (silent.pk, "training")])
    stale.refresh_from_db()
    assert stale.status == "failed" and stale.finished_at == NOW and stale.eta_s is None
    since = f"{NOW - timedelta(minutes=3):%Y-%m-%d %H:%M:%S}"
    assert stale.error.startswith(f"worker stopped (no heartbeat since {since}")
    assert "worker stopped" in stale.log_tail and stale.log_tail.startswith("step 3")
    assert Path(stale.output_dir, "checkpoint.bin").read_bytes() == b"partial"  # partial files kept
    assert TrainingRun.objects.get(pk=silent.pk).error.startswith("worker stopped (no heartbeat since")
    for run in (fresh, young):
        assert TrainingRun.objects.get(pk=run.pk).status == "running"
    assert TrainingRun.objects.get(pk=queued.pk).status == "queued"
    assert training_run_sweep_stale(now=NOW) == []  # once


def test_sweep_max_age_decides_what_is_stale(project, tmp_path):
    run = _running(project, tmp_path, timedelta(seconds=30))
    assert training_run_sweep_stale(now=NOW, max_age=timedelta(minutes=1)) == []
    assert training_run_sweep_stale(now=NOW, max_age=timedelta(seconds=10)) == [(run.pk, "training")]


def test_sweep_fails_scoring_and_generation_jobs_without_a_heartbeat(project):
    old, fresh = (NOW - timedelta(minutes=5)).isoformat(), (NOW - timedelta(seconds=5)).isoformat()
    run = make_run(project, status="succeeded", output_dir="/tmp/rm",
                   scoring={"status": "running", "done": 256, "total": 1000, "heartbeat_at": old, "started_at": old},
                   generation={"status": "running", "heartbeat_at": fresh, "started_at": old})  # fmt: skip
    legacy = make_run(project, status="succeeded", scoring={"status": "running", "done": 0})  # no times at all
    finished = make_run(project, status="succeeded", scoring={"status": "succeeded", "heartbeat_at": old})

    assert sorted(training_run_sweep_stale(now=NOW)) == sorted([(run.pk, "scoring"), (legacy.pk, "scoring")])

    run.refresh_from_db()
    assert run.status == "succeeded"  # the run itself is not the job
    assert run.scoring["status"] == "failed" and run.scoring["done"] == 256
    since = f"{NOW - timedelta(minutes=5):%Y-%m-%d %H:%M:%S}"
    assert run.scoring["error"].startswith(f"worker stopped (no heartbeat since {since}")
    assert run.generation["status"] == "running"
    assert TrainingRun.objects.get(pk=legacy.pk).scoring["error"].startswith("worker stopped")
    assert TrainingRun.objects.get(pk=finished.pk).scoring["status"] == "succeeded"


def test_sweep_fails_a_comparison_job_without_a_heartbeat(project):
    old = (NOW - timedelta(minutes=5)).isoformat()
    run = make_run(project, kind="ppo", status="succeeded", comparison={"status": "running", "heartbeat_at": old})
    assert training_run_sweep_stale(now=NOW) == [(run.pk, "comparison")]
    run.refresh_from_db()
    assert run.comparison["status"] == "failed" and run.comparison["error"].startswith("worker stopped")


def test_a_job_state_beats_while_running_and_never_revives_a_swept_job(project):
    run = make_run(project, status="succeeded")
    job = JobState(run_id=run.pk, field="scoring", project="alpha", done=0, total=10)
    job.write(done=5)
    run.refresh_from_db()
    assert run.scoring["status"] == "running" and run.scoring["done"] == 5 and run.scoring["heartbeat_at"]

    later = timezone.now() + timedelta(minutes=5)
    assert training_run_sweep_stale(now=later) == [(run.pk, "scoring")]
    job.beat()
    run.refresh_from_db()
    assert run.scoring["status"] == "failed"


def test_heartbeat_calls_beat_periodically_and_survives_a_failing_beat():
    calls = []

    def beat():
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("database is locked")

    with heartbeat(beat, every_s=0.02):
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(calls) >= 3


@pytest.mark.django_db(transaction=True)
def test_the_worker_sweeper_thread_fails_a_stale_run(tmp_path):
    run = _running(ProjectFactory(), tmp_path, timedelta(minutes=10))
    stop = threading.Event()
    thread = sweeper_start(every_s=0.05, max_age=timedelta(minutes=2), stop=stop)
    deadline = time.monotonic() + 10
    while TrainingRun.objects.get(pk=run.pk).status == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert TrainingRun.objects.get(pk=run.pk).error.startswith("worker stopped (no heartbeat since")


@pytest.mark.django_db(transaction=True)
def test_the_worker_sweeper_thread_also_cleans_up_an_import_whose_process_died():
    """Issue #12 item 9: a staging import that stopped writing loses its staged rows and is marked failed."""
    from annotation.models import ImportBatch, Prompt
    from annotation.services.imports import STALE_AFTER

    project = ProjectFactory()
    batch = ImportBatch.objects.create(project=project, filename="dead.jsonl")
    Prompt.all_objects.create(project=project, text="p", content_hash="h", import_batch=batch, staged=True)
    ImportBatch.objects.filter(pk=batch.pk).update(updated_at=timezone.now() - STALE_AFTER - timedelta(minutes=1))
    stop = threading.Event()
    thread = sweeper_start(every_s=0.05, max_age=timedelta(minutes=2), stop=stop)
    deadline = time.monotonic() + 10
    while ImportBatch.objects.get(pk=batch.pk).status == "staging" and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)
    assert ImportBatch.objects.get(pk=batch.pk).status == "failed"
    assert not Prompt.all_objects.exists()


def test_the_run_page_and_api_show_a_stale_running_run_failed(project, client, tmp_path):
    boss = manager(project)
    client.force_login(boss)
    stale = _running(project, tmp_path, timedelta(minutes=3))
    page = client.get(f"/runs/{stale.pk}/")
    assert page.status_code == 200 and b"worker stopped (no heartbeat since" in page.content
    assert TrainingRun.objects.get(pk=stale.pk).status == "failed"

    other = _running(project, tmp_path, timedelta(minutes=4))
    data = client.get(f"/runs/{other.pk}/progress.json").json()
    assert data["status"] == "failed" and data["error"].startswith("worker stopped")

    third = _running(project, tmp_path, timedelta(minutes=5))
    body = api_client(boss).get(f"/api/runs/{third.pk}/").json()
    assert body["status"] == "failed" and body["error"].startswith("worker stopped")


def test_the_run_page_leaves_a_beating_run_running(project, client, tmp_path):
    client.force_login(manager(project))
    # The page sweeps against the clock, so the heartbeat is 10 s before the real now (NOW is import time, which
    # can be minutes earlier in a full run).
    run = _running(project, tmp_path, timedelta(seconds=10), now=timezone.now())
    assert client.get(f"/runs/{run.pk}/").status_code == 200
    assert TrainingRun.objects.get(pk=run.pk).status == "running"


def test_the_scoring_job_records_when_it_started_and_beat_even_when_it_fails(project):
    run = make_run(project, status="failed")
    with pytest.raises(ValidationError, match="no trained model"):
        response_scores_execute(run_id=run.pk, project_id=project.pk)
    run.refresh_from_db()
    assert run.scoring["status"] == "failed" and "no trained model" in run.scoring["error"]
    assert run.scoring["started_at"] <= run.scoring["heartbeat_at"]
