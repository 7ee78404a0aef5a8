"""training_run_create: the export snapshot (byte for byte the platform's export), the queued run, the enqueued task,
and what is refused (nothing saved)."""

import contextlib
import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django_tasks_db.models import DBTaskResult

from annotation.exports.options import ExportOptions
from annotation.models import Ranking
from annotation.services.exports import preference_export_create
from rlhf.models import TrainingRun
from rlhf.services import training_run_create
from rlhf.services.prepare import run_inputs_prepare
from tests.factories import ProjectFactory, PromptFactory, labeler, manager
from tests.rlhf.conftest import rank


@pytest.fixture
def project(db):
    """10 prompts with 3 responses, each ranked by two labelers (guideline v1 and v2)."""
    project = ProjectFactory(slug="rm")
    a, b = labeler(project), labeler(project)
    for i in range(10):
        prompt = PromptFactory(project=project, responses=3, category="qa" if i % 2 else "chat")
        rank(prompt, a, [1, 2, 3])
        rank(prompt, b, [1, 3, 2] if i % 3 else [1, 2, 3], guideline_version=2)
    return project


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_create_queues_the_run_and_the_worker_snapshots_the_export_unchanged(project, runs_dir, tmp_path):
    user = manager(project)
    run = training_run_create(
        project=project, user=user, config={"base_model": "tiny", "max_steps": 2},
        export_options={"test_ratio": 0.3}, enqueue=False,
    )  # fmt: skip

    assert run.status == "queued" and run.created_by == user and run.name == f"rm reward model #{run.pk}"
    data = runs_dir / str(run.pk) / "data"
    # Nothing is exported in the request: the worker writes the snapshot when it takes the run.
    assert not data.exists() and run.config["train_file"] == "" and run.export["pending"] is True
    assert run_inputs_prepare(run).startswith("Exported: ")
    run = TrainingRun.objects.get(pk=run.pk)
    assert "pending" not in run.export and run_inputs_prepare(run) == "Inputs already written."
    # The run trains on exactly what `export_preferences` writes for the same options.
    reference = preference_export_create(project=project, out=tmp_path / "ref", options=ExportOptions(test_ratio=0.3))
    for name in ("train.jsonl", "test.jsonl"):
        assert (data / name).read_bytes() == (reference.out / name).read_bytes()
    assert run.export["content_hash"] == reference.meta["content_hash"]
    train, test = _lines(data / "train.jsonl"), _lines(data / "test.jsonl")
    assert run.export["train_pairs"] == len(train) > 0 and run.export["test_pairs"] == len(test) > 0
    # eval.jsonl = test.jsonl plus each pair's guideline version.
    evaluation = _lines(data / "eval.jsonl")
    assert [{k: v for k, v in row.items() if k != "guideline_version"} for row in evaluation] == test
    assert {row["guideline_version"] for row in evaluation} == {1, 2}
    assert run.config | {"base_model": "tiny", "max_steps": 2} == run.config
    assert run.config["train_file"] == str(data / "train.jsonl") and run.config["eval_file"] == str(data / "eval.jsonl")
    assert run.config["output_dir"] == str(runs_dir / str(run.pk) / "model") == run.output_dir
    # The ceiling: the two labelers' agreement on the test prompts, also handed to the training config.
    ceiling = run.export["human_agreement"]
    assert ceiling["prompts"] == len({row["prompt_id"] for row in test})
    assert run.config["human_agreement"] == ceiling["overall"] is not None
    assert set(ceiling["by_guideline"]) == {"1", "2"}


def test_create_enqueues_the_task_after_commit(project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = training_run_create(project=project, config={"base_model": "tiny"})
    task = DBTaskResult.objects.get()
    assert task.task_path == "rlhf.tasks.training_run_task" and task.status == "READY"
    assert task.args_kwargs == {"args": [], "kwargs": {"run_id": run.pk}}
    assert TrainingRun.objects.get(pk=run.pk).task_id == str(task.id)


def test_create_with_margins_exports_the_margin_column(project, runs_dir):
    run = training_run_create(project=project, config={"use_margin": True}, enqueue=False)
    assert run.export["options"]["margin"] == "rank-diff"
    run_inputs_prepare(run)
    assert all("margin" in row for row in _lines(Path(run.config["train_file"])))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"config": {"epochs": 3}}, "Unknown config field(s): epochs"),
        ({"config": {"output_dir": "/etc"}}, "Unknown config field(s): output_dir"),
        ({"config": {"bf16": "maybe"}}, "Invalid config: bf16 must be"),
        ({"export_options": {"strategy": "vote"}}, "Invalid export options"),
        ({"kind": "ppo"}, "A PPO run needs a finished reward-model run"),  # any kind, by the registry
        ({"kind": "bogus"}, "Unknown run kind 'bogus'"),
    ],
)
def test_create_refuses_bad_input_and_saves_nothing(project, runs_dir, kwargs, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        training_run_create(project=project, enqueue=False, **kwargs)
    assert not TrainingRun.objects.exists()
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_create_refuses_a_project_without_ranked_prompts(db, runs_dir):
    project = ProjectFactory(slug="empty")
    PromptFactory(project=project)
    with pytest.raises(ValidationError, match="no training pairs yet"):
        training_run_create(project=project, enqueue=False)
    assert not TrainingRun.objects.exists()
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_the_worker_fails_a_run_whose_project_has_nothing_to_train_on_by_then(project, runs_dir, monkeypatch):
    from rlhf.services import training_run_execute, worker

    monkeypatch.setattr(worker, "_heartbeat", lambda run_id: contextlib.nullcontext())
    run = training_run_create(project=project, config={"base_model": "tiny"}, enqueue=False)
    Ranking.objects.filter(project=project).update(is_current=False)  # withdrawn after the run was queued

    assert training_run_execute(run_id=run.pk) == "failed"
    run.refresh_from_db()
    assert run.error.startswith("RunInputsError: The export of project 'rm' has no training pairs yet")
    assert "Writing the run's inputs from the project." in run.log_tail and run.export["pending"] is True


def test_a_queued_run_page_says_the_worker_writes_its_export(project, client):
    run = training_run_create(project=project, config={"base_model": "tiny"}, enqueue=False)
    client.force_login(manager(project))
    body = client.get(f"/runs/{run.pk}/").content.decode()
    assert "written by the worker when it takes the run" in body and "no held-out" not in body.lower()
    run_inputs_prepare(run)
    body = client.get(f"/runs/{run.pk}/").content.decode()
    assert f"{TrainingRun.objects.get(pk=run.pk).export['train_pairs']} training pairs" in body
