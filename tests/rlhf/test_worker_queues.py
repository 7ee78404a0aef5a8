"""Queue names: training runs go to the 'gpu' queue, the jobs on finished runs to 'default'; `rlhf_worker --queue`
names the ones a worker takes (the routing itself, with real workers: tests/rlhf/test_workers_postgresql.py)."""

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from rlhf.tasks import response_scores_task, responses_generate_task, training_run_task


def test_training_goes_to_the_gpu_queue_and_the_rest_to_default():
    assert training_run_task.queue_name == "gpu"
    assert response_scores_task.queue_name == responses_generate_task.queue_name == "default"
    assert set(settings.TASKS["default"]["QUEUES"]) == {"gpu", "default"}  # enqueue refuses a queue not listed


def test_worker_refuses_an_unknown_queue_before_taking_anything(db):
    with pytest.raises(CommandError, match="Unknown queue 'cpu': the queues are default, gpu"):
        call_command("rlhf_worker", "--queue", "gpu,cpu", "--batch", "--no-reload")


def test_worker_help_names_the_queues(capsys):
    with pytest.raises(SystemExit):
        call_command("rlhf_worker", "--help")
    text = capsys.readouterr().out
    assert "--queue NAME[,NAME]" in text and "rlhf_worker --queue gpu" in text and "SKIP LOCKED" in text


def test_deploy_docs_show_every_queue_and_the_proof():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    for queue in settings.TASKS["default"]["QUEUES"]:
        assert f"rlhf_worker --queue {queue}" in docs
    assert "SKIP LOCKED" in docs and "tests/rlhf/test_workers_postgresql.py" in docs
