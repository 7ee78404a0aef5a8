"""The training-run API beyond the role matrix: input validation, polling metrics, and the error shape."""

from pathlib import Path

import pytest
from django_tasks_db.models import DBTaskResult

from rlhf.models import RunMetric, TrainingRun
from tests.annotation.api._helpers import api_client
from tests.factories import ProjectFactory, PromptFactory, labeler, manager
from tests.rlhf.conftest import make_run, rank


@pytest.fixture
def world(db):
    project = ProjectFactory(slug="alpha")
    a, b = labeler(project), labeler(project)
    for _ in range(4):
        prompt = PromptFactory(project=project, responses=3)
        rank(prompt, a, [1, 2, 3])
        rank(prompt, b, [2, 1, 3])
    return project, manager(project)


def test_create_returns_at_once_with_a_queued_run_and_an_enqueued_task(world, django_capture_on_commit_callbacks):
    project, boss = world
    body = {"project": "alpha", "kind": "reward_model", "name": "api run",
            "config": {"base_model": "tiny", "max_steps": 3, "use_lora": True, "lora_r": 4, "learning_rate": 1e-3},
            "export": {"strategy": "majority", "test_ratio": 0.5}}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(boss).post("/api/runs/", body, format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["status"], data["name"], data["step"], data["metrics"]) == ("queued", "api run", 0, {})
    assert data["config"]["use_lora"] is True and data["config"]["lora_r"] == 4
    assert data["config"]["train_file"] == "" and data["export"]["pending"] is True  # the worker exports
    assert data["export"]["options"]["strategy"] == "majority" and not Path(data["data_dir"]).exists()
    assert DBTaskResult.objects.get().args_kwargs["kwargs"] == {"run_id": data["id"]}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"project": "alpha", "config": {"epochs": 2}}, "config: Unknown field: epochs."),
        ({"project": "alpha", "config": {"output_dir": "/etc"}}, "config: Unknown field: output_dir."),
        ({"project": "alpha", "config": {"max_length": "long"}}, "config.max_length: A valid integer is required."),
        ({"project": "alpha", "export": {"strategy": "vote"}}, 'export.strategy: "vote" is not a valid choice.'),
        ({"project": "alpha", "kind": "ppo"}, "A PPO run needs a finished reward-model run"),
        ({"project": "alpha", "config": {"bf16": "maybe"}}, "Invalid config: bf16 must be auto, true or false"),
    ],
)
def test_create_rejects_bad_input_with_readable_errors(world, body, error):
    response = api_client(world[1]).post("/api/runs/", body, format="json")
    assert response.status_code == 400
    assert any(message.startswith(error) for message in response.json()["errors"]), response.json()
    assert not TrainingRun.objects.exists()


def test_metrics_polling_returns_only_points_after_the_last_id(world):
    project, boss = world
    run = make_run(project, status="running", step=2, total_steps=8)
    first = RunMetric.objects.create(run=run, step=1, name="train/loss", value=0.7)
    RunMetric.objects.create(run=run, step=2, name="train/loss", value=0.6)

    data = api_client(boss).get(f"/api/runs/{run.pk}/metrics/?after={first.pk}").json()
    assert [p["value"] for p in data["points"]] == [0.6]
    assert (data["status"], data["step"], data["total_steps"]) == ("running", 2, 8)


def test_cancel_of_a_finished_run_is_a_400(world):
    run = make_run(world[0], status="succeeded")
    response = api_client(world[1]).post(f"/api/runs/{run.pk}/cancel/")
    assert response.status_code == 400 and response.json()["errors"] == [
        f"Run {run.pk} has already finished (succeeded)."
    ]


def test_scoring_a_run_without_a_model_is_a_400(world):
    run = make_run(world[0], status="failed")
    response = api_client(world[1]).post(f"/api/runs/{run.pk}/score/")
    assert response.status_code == 400 and "has no trained model" in response.json()["errors"][0]
    assert not DBTaskResult.objects.exists()


def test_list_filters_by_project_and_refuses_a_labeler_of_it(world):
    project, boss = world
    mine, other = make_run(project), make_run(ProjectFactory(slug="beta"))
    assert [r["id"] for r in api_client(boss).get("/api/runs/?project=alpha").json()["results"]] == [mine.pk]
    assert api_client(boss).get("/api/runs/?project=beta").status_code == 404
    assert api_client(labeler(project)).get("/api/runs/?project=alpha").status_code == 403
    assert other.pk


def test_run_detail_exposes_the_length_figures_and_warning_and_the_schema_documents_them(world):
    from tests.rlhf.test_run_pages import LENGTH_BIASED, LENGTH_FINE

    project, boss = world
    biased = make_run(project, status="succeeded", metrics=LENGTH_BIASED, export={"test_pairs": 40})
    fine = make_run(project, status="succeeded", metrics=LENGTH_FINE, export={"test_pairs": 40})
    client = api_client(boss)

    data = client.get(f"/api/runs/{biased.pk}/").json()
    assert data["metrics"]["eval/length_balanced_accuracy"] == 0.58  # metrics.json as stored
    length = data["length_evaluation"]
    assert (length["accuracy_chosen_longer"], length["accuracy_chosen_shorter"]) == (0.72, 0.44)
    assert (length["pairs_chosen_longer"], length["pairs_chosen_shorter"], length["pairs_equal_length"]) == (25, 14, 1)
    assert length["length_balanced_accuracy"] == 0.58 and length["margin_length_correlation"] == 0.41
    assert length["warning"] is True and length["warning_reasons"] == [
        "accuracy where the chosen response is shorter 0.440 < 0.5"
    ]
    assert (length["balanced_threshold"], length["shorter_threshold"]) == (0.55, 0.5)
    assert data["no_heldout_reason"] is None

    length = client.get(f"/api/runs/{fine.pk}/").json()["length_evaluation"]
    assert length["warning"] is False and length["warning_reasons"] == []
    assert length["margin_length_correlation"] is None

    schema = client.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]
    run_fields = schema["TrainingRun"]["properties"]
    assert {"length_evaluation", "no_heldout_reason"} <= set(run_fields)
    assert "eval/length_balanced_accuracy" in run_fields["metrics"]["description"]
    assert {"accuracy_chosen_longer", "accuracy_chosen_shorter", "length_balanced_accuracy", "warning",
            "margin_length_correlation"} <= set(schema["LengthEvaluation"]["properties"])  # fmt: skip


def test_run_detail_says_why_a_run_has_no_held_out_figure(world):
    project, boss = world
    export = {"options": {"test_ratio": 0.0}, "test_pairs": 0, "counts": {"splits": {"test": {"prompts": 0}}}}
    run = make_run(project, status="queued", export=export)
    data = api_client(boss).get(f"/api/runs/{run.pk}/").json()
    assert data["length_evaluation"] is None and "test ratio of 0" in data["no_heldout_reason"]
