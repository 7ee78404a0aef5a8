"""Training runs through the real background worker: `manage.py rlhf_worker` (django-tasks-db's db_worker) as a
subprocess over a throwaway SQLite file, with tiny models on CPU, offline.

The module's platform: a project imported from a pairwise file; a run trained in the foreground by the CLI (its model
is then the base of the queued runs, a local path); then, queued by the CLI before the worker starts: a run that
succeeds, a long run to cancel, and a run whose base model does not exist; plus a 'running' run left behind by a dead
worker. The tests run in file order and read the database with plain sqlite3.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SLUG = "worker-demo"
MAX_LENGTH = 64
WAIT_S = 150

pytestmark = pytest.mark.slow


def _pairs_file(path: Path) -> Path:
    """24 synthetic preference pairs in two categories: a helpful answer beats a curt one."""
    rows = []
    for i in range(24):
        topic = ["tea", "bread", "bikes", "rain", "maps", "clocks"][i % 6]
        rows.append(
            {
                "prompt": f"\n\nHuman: Question {i}: how do {topic} work?\n\nAssistant:",
                "chosen": f" Good question. {topic.title()} work in a few steps; here is a short clear answer {i}.",
                "rejected": " No idea.",
                "category": "qa" if i % 2 else "howto",
            }
        )
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


class Platform:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.db_path = tmp / "worker.sqlite3"
        self.env = dict(os.environ)
        self.env.update(
            DATABASE_URL=f"sqlite:///{self.db_path}",
            RLHF_RUNS_DIR=str(tmp / "runs"),
            DJANGO_SETTINGS_MODULE="config.settings",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            HF_DATASETS_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            OMP_NUM_THREADS="1",
            PYTHONPATH=str(REPO),
        )
        self.worker: subprocess.Popen | None = None
        self.worker_log = tmp / "worker.log"
        self.runs: dict[str, int] = {}

    def manage(self, *args: str, check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return done

    def queue_run(self, *flags: str) -> int:
        out = self.manage("train_reward_model", "--project", SLUG, *flags).stdout
        assert "queued" in out, out
        return int(out.split("Run ", 1)[1].split()[0])

    def start_worker(self) -> None:
        log = self.worker_log.open("wb")
        command = [sys.executable, "manage.py", "rlhf_worker", "--no-reload", "--interval", "0.2", "--no-startup-delay"]
        self.worker = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def stop_worker(self) -> None:
        if self.worker is None or self.worker.poll() is not None:
            return
        self.worker.send_signal(signal.SIGTERM)
        try:
            self.worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.worker.kill()
            self.worker.wait(timeout=10)

    def log(self) -> str:
        return self.worker_log.read_text(errors="replace")[-4000:] if self.worker_log.exists() else ""

    def query(self, sql: str, *params) -> list[tuple]:
        with sqlite3.connect(self.db_path, timeout=30) as db:
            return db.execute(sql, params).fetchall()

    def run(self, run_id: int) -> dict:
        with sqlite3.connect(self.db_path, timeout=30) as db:
            db.row_factory = sqlite3.Row
            return dict(db.execute("SELECT * FROM rlhf_trainingrun WHERE id = ?", (run_id,)).fetchone())

    def wait(self, run_id: int, until, what: str, timeout: float = WAIT_S) -> tuple[dict, set[str]]:
        """Poll the run until `until(row)`; returns the row and every status seen on the way."""
        seen, deadline = set(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.run(run_id)
            seen.add(row["status"])
            if until(row):
                return row, seen
            if self.worker is not None and self.worker.poll() is not None:
                raise AssertionError(f"the worker exited ({self.worker.returncode}):\n{self.log()}")
            time.sleep(0.2)
        raise AssertionError(f"run {run_id}: not {what} after {timeout}s: {self.run(run_id)}\n{self.log()}")


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("worker")
    platform = Platform(tmp)
    platform.manage("migrate", "--noinput", "-v0")
    platform.manage("import_prompts", str(_pairs_file(tmp / "pairs.jsonl")), "--project", SLUG, "--kind", "pairwise")
    common = ["--max-length", str(MAX_LENGTH), "--logging-steps", "1", "--warmup-ratio", "0", "--test-ratio", "0.25"]
    platform.foreground = platform.manage(
        "train_reward_model", "--project", SLUG, "--base-model", "tiny", "--max-steps", "2", "--foreground", *common
    )
    platform.base_dir = Path(platform.query("SELECT output_dir FROM rlhf_trainingrun WHERE id = 1")[0][0])
    base = ["--base-model", str(platform.base_dir), *common]
    platform.runs["ok"] = platform.queue_run(*base, "--max-steps", "3", "--learning-rate", "1e-3", "--name", "ok")
    platform.runs["long"] = platform.queue_run(*base, "--max-steps", "100000", "--name", "to cancel")
    platform.runs["crash"] = platform.queue_run("--base-model", str(tmp / "no-such-model"), *common, "--name", "crash")
    platform.manage("shell", "-c", STALE_RUN.format(pid=_dead_pid()))
    platform.runs["stale"] = platform.query("SELECT id FROM rlhf_trainingrun WHERE name = 'stale'")[0][0]
    platform.queued_before_worker = {k: platform.run(v)["status"] for k, v in platform.runs.items()}
    platform.start_worker()
    yield platform
    platform.stop_worker()


STALE_RUN = """
import socket
from django.utils import timezone
from rlhf.models import TrainingRun
TrainingRun.objects.create(name="stale", status="running", worker_pid={pid}, worker_host=socket.gethostname(),
                           started_at=timezone.now(), heartbeat_at=timezone.now(), step=3, total_steps=10)
"""


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _tensors(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    tensors = {}
    for path in sorted(model_dir.glob("*.safetensors")):
        tensors |= load_file(str(path))
    return tensors


def test_foreground_cli_trains_in_process_and_reports_metrics(platform):
    run = platform.run(1)
    assert run["status"] == "succeeded" and run["worker_pid"] and run["task_id"] == ""
    assert "Run 1 succeeded" in platform.foreground.stdout and "held-out accuracy" in platform.foreground.stdout
    assert (platform.base_dir / "metrics.json").is_file() and (platform.base_dir / "training_config.json").is_file()


def test_cli_queues_runs_and_returns_before_any_worker_runs(platform):
    assert platform.queued_before_worker == {"ok": "queued", "long": "queued", "crash": "queued", "stale": "running"}
    tasks = platform.query("SELECT task_path, status FROM django_tasks_database_dbtaskresult")
    assert sorted(tasks) == [("rlhf.tasks.training_run_task", "READY")] * 3


def test_worker_start_marks_a_run_left_by_a_dead_worker_failed(platform):
    row, _ = platform.wait(platform.runs["stale"], lambda r: r["status"] != "running", "marked stale", timeout=60)
    assert row["status"] == "failed" and row["finished_at"]
    assert "stopped without finishing" in row["error"] and "is gone" in row["error"]


def test_run_goes_queued_running_succeeded_through_the_worker(platform):
    run_id = platform.runs["ok"]
    row, seen = platform.wait(run_id, lambda r: r["status"] not in ("queued", "running"), "finished")

    assert row["status"] == "succeeded", row["error"]
    assert {"running", "succeeded"} <= seen
    assert (row["step"], row["total_steps"], row["stage"]) == (3, 3, "done")
    assert row["started_at"] and row["finished_at"] and row["heartbeat_at"] and row["worker_pid"]
    metrics = json.loads(row["metrics"])
    assert 0.0 <= metrics["eval/accuracy"] <= 1.0 and metrics["train/steps"] == 3
    assert metrics["train/pairs"] == json.loads(row["export"])["train_pairs"]
    history = platform.query("SELECT step, name FROM rlhf_runmetric WHERE run_id = ? ORDER BY id", run_id)
    assert [step for step, name in history if name == "train/loss"] == [1, 2, 3]
    assert ("eval/accuracy" in {name for _, name in history}) and "Succeeded." in row["log_tail"]
    # The weights moved away from the base model's (a local path: the foreground run's model).
    model_dir = Path(row["output_dir"])
    base, trained = _tensors(platform.base_dir), _tensors(model_dir)
    shared = sorted(set(base) & set(trained))
    assert shared and any(not np.array_equal(base[k], trained[k]) for k in shared)
    assert json.loads((model_dir / "metrics.json").read_text()) == metrics


def test_cancelling_a_running_run_stops_it_and_the_worker_goes_on(platform):
    run_id = platform.runs["long"]
    platform.wait(run_id, lambda r: r["status"] == "running" and r["step"] >= 1, "running")
    platform.manage("shell", "-c", f"{CANCEL}(run=TrainingRun.objects.get(pk={run_id}))")

    row, _ = platform.wait(run_id, lambda r: r["status"] != "running", "stopped", timeout=60)
    assert row["status"] == "cancelled" and row["cancel_requested"] and row["finished_at"] and not row["error"]
    assert row["step"] < 100000 and "Cancelled." in row["log_tail"]
    assert platform.worker.poll() is None  # the worker is still there, and takes the next run


CANCEL = "from rlhf.models import TrainingRun; from rlhf.services import training_run_cancel; training_run_cancel"


def test_a_crashing_run_ends_failed_with_its_error(platform):
    row, _ = platform.wait(platform.runs["crash"], lambda r: r["status"] not in ("queued", "running"), "finished")
    assert row["status"] == "failed" and row["finished_at"]
    assert "no-such-model" in row["error"] and "Traceback" in row["error"]
    assert "Failed:" in row["log_tail"]


def test_export_preferences_output_is_what_the_run_trained_on(platform):
    """The export of the previous issue trains unchanged: the command's files equal the run's snapshot."""
    out = platform.tmp / "export"
    platform.manage("export_preferences", "--project", SLUG, "--format", "jsonl", "--out", str(out), "--test-ratio",
                    "0.25", "--no-progress")  # fmt: skip
    data = Path(platform.run(platform.runs["ok"])["data_dir"])
    for name in ("train.jsonl", "test.jsonl"):
        assert (out / name).read_bytes() == (data / name).read_bytes()


def test_score_responses_stores_a_score_per_response(platform):
    run_id = platform.runs["ok"]
    done = platform.manage("score_responses", "--run", str(run_id), "--project", SLUG)
    responses = platform.query("SELECT COUNT(*) FROM annotation_response")[0][0]
    scores = platform.query("SELECT response_id, score FROM rlhf_responsescore WHERE run_id = ?", run_id)
    assert len(scores) == responses == 48
    assert len({round(score, 6) for _, score in scores}) > 1
    assert f"Scored 48 responses of '{SLUG}' with run {run_id}" in done.stdout
    assert "pairwise disagreement with the labelers' majority" in done.stdout


def test_scoring_queued_from_the_web_is_run_by_the_worker(platform):
    run_id = platform.runs["ok"]
    platform.manage("shell", "-c", SCORE.format(run=run_id))
    row, _ = platform.wait(
        run_id, lambda r: json.loads(r["scoring"]).get("status") in ("succeeded", "failed"), "scored"
    )
    scoring = json.loads(row["scoring"])
    assert scoring["status"] == "succeeded" and scoring["done"] == scoring["total"] == 48, scoring
    task = platform.query("SELECT status FROM django_tasks_database_dbtaskresult WHERE task_path LIKE '%scores%'")
    assert task == [("SUCCESSFUL",)]


SCORE = (
    "from rlhf.models import TrainingRun; from rlhf.services import scoring_enqueue; "
    "run = TrainingRun.objects.get(pk={run}); scoring_enqueue(run=run, project=run.project)"
)
