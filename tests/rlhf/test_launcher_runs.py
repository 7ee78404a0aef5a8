"""A run with `launcher: accelerate:cpu_2proc` through the worker's own code path (training_run_execute): trained by
two processes under `accelerate launch`, its progress, curves and log on the run, cancelled mid-training (the process
group stopped), failed with the stage's error on a non-zero exit; and who may name which accelerate config."""

import contextlib

import pytest
from django.core.exceptions import ValidationError

from rlhf.models import RunMetric, TrainingRun
from rlhf.services import training_run_execute, worker
from rlhf.services.model_refs import launcher_check
from tests.factories import ProjectFactory, UserFactory
from tests.rlhf.conftest import make_run
from tests.rlhf.training.conftest import pair_rows, write_jsonl


@pytest.fixture
def project(db):
    return ProjectFactory()


@pytest.fixture(autouse=True)
def no_heartbeat_thread(monkeypatch):
    monkeypatch.setattr(worker, "_heartbeat", lambda run_id: contextlib.nullcontext())


def _run(project, tmp_path, **config) -> TrainingRun:
    train = write_jsonl(tmp_path / "train.jsonl", pair_rows(24, seed=1))
    test = write_jsonl(tmp_path / "test.jsonl", pair_rows(10, seed=2))
    values = {"train_file": str(train), "eval_file": str(test), "base_model": "tiny", "output_dir": str(tmp_path / "m"),
              "max_length": 64, "per_device_train_batch_size": 4, "max_steps": 4, "logging_steps": 1,
              "learning_rate": 1e-3, "tiny_vocab_size": 500, "launcher": "accelerate:cpu_2proc"}  # fmt: skip
    return make_run(project, kind="reward_model", config=values | config, run_dir=str(tmp_path))


@pytest.mark.slow
def test_a_launched_run_trains_in_two_processes_and_reports_like_an_inprocess_one(project, tmp_path):
    run = _run(project, tmp_path)
    status = training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert status == "succeeded", f"{run.error}\n{run.log_tail}"  # a rare failure here: say why
    assert run.metrics["train/world_size"] == 2 and run.metrics["eval/pairs"] == 10
    assert run.step == run.total_steps == 4 and run.stage == "done"
    assert RunMetric.objects.filter(run=run, name="train/loss").count() >= 1
    assert "launch: accelerate.commands.launch --config_file" in run.log_tail and "cpu_2proc.yaml" in run.log_tail
    assert (tmp_path / "launch_config.yaml").read_text().count("launcher: inprocess") == 1  # the child trains itself


@pytest.mark.slow
def test_cancelling_a_launched_run_stops_it(project, tmp_path):
    run = _run(project, tmp_path, max_steps=400)

    def cancel_once_training(event):
        if event.stage == "train" and event.step >= 1:
            TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    assert training_run_execute(run_id=run.pk, observer=cancel_once_training) == "cancelled"
    run.refresh_from_db()
    assert run.status == "cancelled" and run.step < 400 and not (tmp_path / "m" / "metrics.json").exists()


@pytest.mark.slow
def test_a_launched_run_that_exits_non_zero_is_failed_with_the_error(project, tmp_path):
    run = _run(project, tmp_path, train_file=str(tmp_path / "gone.jsonl"), launcher="accelerate:cpu_single")
    assert training_run_execute(run_id=run.pk) == "failed"
    run.refresh_from_db()
    assert "LaunchError: accelerate launch exited with status" in run.error and "gone.jsonl" in run.error


def test_managers_name_a_shipped_accelerate_config_admins_any_file(project, tmp_path):
    manager, admin = UserFactory(), UserFactory(is_superuser=True)
    own = tmp_path / "mine.yaml"
    own.write_text("distributed_type: 'NO'\n")
    launcher_check(config={"launcher": "accelerate:gpu_ddp"}, user=manager)
    launcher_check(config={}, user=manager)
    with pytest.raises(ValidationError, match="outside configs/accelerate"):
        launcher_check(config={"launcher": f"accelerate:{own}"}, user=manager)
    launcher_check(config={"launcher": f"accelerate:{own}"}, user=admin)
    launcher_check(config={"launcher": f"accelerate:{own}"}, user=None)  # the command line
    with pytest.raises(ValidationError, match="No accelerate config"):
        launcher_check(config={"launcher": "accelerate:tpu_pod"}, user=admin)
    with pytest.raises(ValidationError, match="launcher must be"):
        launcher_check(config={"launcher": "slurm"}, user=admin)
