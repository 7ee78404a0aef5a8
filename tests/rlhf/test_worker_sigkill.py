"""A worker killed outright (SIGKILL) mid-run: its run is failed by the sweep once its heartbeat is older than the
limit, with its partial files kept. `manage.py rlhf_worker` runs as a subprocess over a throwaway SQLite file."""

import json
import signal
import time
from pathlib import Path

import pytest

from tests.rlhf.test_worker import SLUG, Platform, _pairs_file

pytestmark = pytest.mark.slow

SWEEP = """
import json
from datetime import timedelta
from django.utils import timezone
from rlhf.models import TrainingRun
from rlhf.services import training_run_sweep_stale
beat = TrainingRun.objects.get(pk={run_id}).heartbeat_at
now = training_run_sweep_stale()  # a fresh heartbeat: nothing to do
late = training_run_sweep_stale(now=beat + timedelta(minutes=2, seconds=1))
print(json.dumps({{"now": now, "late": late, "age_s": (timezone.now() - beat).total_seconds()}}))
"""


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_sigkilled_worker_leaves_a_run_the_sweep_fails_within_two_minutes_of_heartbeat_age(tmp_path):
    platform = Platform(tmp_path)
    try:
        platform.manage("migrate", "--noinput", "-v0")
        platform.manage("import_prompts", str(_pairs_file(tmp_path / "pairs.jsonl")), "--project", SLUG, "--kind",
                        "pairwise")  # fmt: skip
        run_id = platform.queue_run("--base-model", "tiny", "--max-steps", "100000", "--max-length", "64",
                                    "--logging-steps", "1", "--warmup-ratio", "0", "--test-ratio", "0.25")  # fmt: skip
        platform.start_worker()
        row, _ = platform.wait(run_id, lambda r: r["status"] == "running" and r["heartbeat_at"] and r["step"] >= 1,
                               "running with a heartbeat", timeout=90)  # fmt: skip
        platform.worker.send_signal(signal.SIGKILL)
        platform.worker.wait(timeout=10)
        killed_at = time.monotonic()
        files = _files(Path(row["run_dir"]))
        assert platform.run(run_id)["status"] == "running"  # nobody could say otherwise: the worker is gone

        out = platform.manage("shell", "-c", SWEEP.format(run_id=run_id)).stdout
        swept = json.loads(out.strip().splitlines()[-1])
        assert swept["now"] == [] and swept["age_s"] < 30 + (time.monotonic() - killed_at)
        assert swept["late"] == [[run_id, "training"]]
        row = platform.run(run_id)
        assert row["status"] == "failed" and row["finished_at"]
        assert row["error"].startswith("worker stopped (no heartbeat since")
        assert "worker stopped" in row["log_tail"]
        assert _files(Path(row["run_dir"])).items() >= files.items()  # partial files kept
    finally:
        platform.stop_worker()
