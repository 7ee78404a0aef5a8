"""The training-run pages: who may see them, the new-run form, the run page, its JSON progress endpoint, cancel,
compare, scoring and the model-vs-labelers page."""

import json

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from rlhf.models import ResponseScore, RunMetric, TrainingRun
from tests.factories import AdminFactory, ProjectFactory, PromptFactory, labeler, manager
from tests.rlhf.conftest import make_run, rank

METRICS = {
    "eval/accuracy": 0.8125,
    "eval/pairs": 16,
    "eval/margin_mean": 0.42,
    "eval/margin_histogram": {"edges": [-1.0, 0.0, 1.0], "counts": [3, 13]},
    "eval/accuracy_by_category": {"qa": {"accuracy": 0.75, "pairs": 8}, "chat": {"accuracy": 0.875, "pairs": 8}},
    "eval/accuracy_by_guideline_version": {"1": {"accuracy": 0.8125, "pairs": 16}},
    "train/truncated_pairs": 2,
}
CEILING = {"overall": 0.71, "compared_pairs": 7, "prompts": 4, "by_category": {"qa": {"agreement": 0.66}},
           "by_guideline": {"1": {"agreement": 0.71}}}  # fmt: skip


@pytest.fixture
def world(db):
    project = ProjectFactory(slug="alpha")
    other = ProjectFactory(slug="beta")
    w = type("World", (), {})()
    w.project, w.other = project, other
    w.labeler, w.manager, w.other_manager = labeler(project), manager(project), manager(other)
    w.admin = AdminFactory()
    w.labelers = [labeler(project) for _ in range(2)]
    w.prompts = [PromptFactory(project=project, responses=3, category="qa") for _ in range(6)]
    for prompt in w.prompts:
        rank(prompt, w.labelers[0], [1, 2, 3])
        rank(prompt, w.labelers[1], [1, 3, 2])
    export = {"human_agreement": CEILING, "train_pairs": 30, "test_pairs": 6}
    w.done = make_run(project, status="succeeded", metrics=METRICS, export=export, output_dir="/srv/runs/1/model",
                      total_steps=10, step=10, config={"base_model": "default", "learning_rate": 3e-5},
                      log_tail="line one\nSucceeded.")  # fmt: skip
    w.running = make_run(project, status="running", step=4, total_steps=10, eta_s=90.0, started_at=timezone.now(),
                         config={"base_model": "tiny", "learning_rate": 1e-3})  # fmt: skip
    for step, loss in ((1, 0.9), (2, 0.7), (3, 0.6)):
        RunMetric.objects.create(run=w.running, step=step, name="train/loss", value=loss)
    return w


def _client(client, user):
    client.force_login(user)
    return client


RUN_URLS = ["/runs/{done}/", "/runs/{done}/progress.json", "/runs/{done}/disagreements/", "/runs/project/alpha/",
            "/runs/project/alpha/new/", "/runs/compare/?a={done}&b={running}"]  # fmt: skip


@pytest.mark.parametrize("url", RUN_URLS)
def test_labelers_and_other_managers_get_404_on_run_pages(world, client, url):
    url = url.format(done=world.done.pk, running=world.running.pk)
    for user in (world.labeler, world.other_manager):
        assert _client(client, user).get(url).status_code == 404


@pytest.mark.parametrize("url", RUN_URLS)
def test_managers_and_admins_see_run_pages(world, client, url):
    url = url.format(done=world.done.pk, running=world.running.pk)
    for user in (world.manager, world.admin):
        assert _client(client, user).get(url).status_code == 200


def test_anonymous_users_are_sent_to_log_in(world, client):
    response = client.get(f"/runs/{world.done.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_labelers_cannot_cancel_or_score_runs(world, client):
    _client(client, world.labeler)
    assert client.post(f"/runs/{world.running.pk}/cancel/").status_code == 404
    assert client.post(f"/runs/{world.done.pk}/score/").status_code == 404
    assert not TrainingRun.objects.get(pk=world.running.pk).cancel_requested
    assert not DBTaskResult.objects.exists()


def test_run_list_shows_only_the_runs_of_managed_projects(world, client):
    theirs = make_run(world.other, name="beta run")
    body = _client(client, world.manager).get("/runs/").content.decode()
    assert f"/runs/{world.done.pk}/" in body and f"/runs/{theirs.pk}/" not in body
    assert f"/runs/{world.done.pk}/" not in _client(client, world.labeler).get("/runs/").content.decode()


def test_new_run_form_has_sensible_defaults(world, client):
    body = _client(client, world.manager).get("/runs/project/alpha/new/").content.decode()
    for snippet in (
        'name="base_model" value="default"', 'name="learning_rate" value="3e-05"', 'name="test_ratio"',
        'name="use_lora"', 'name="lora_r" value="16"', 'name="strategy"', 'name="max_length" value="512"',
    ):  # fmt: skip
        assert snippet in body


def test_new_run_form_creates_a_queued_run_and_enqueues_it(world, client, django_capture_on_commit_callbacks):
    _client(client, world.manager)
    form = {"base_model": "tiny", "num_train_epochs": "1", "learning_rate": "0.001", "per_device_train_batch_size": "4",
            "max_length": "64", "lora_r": "8", "use_lora": "on", "max_steps": "3", "seed": "1", "strategy": "majority",
            "test_ratio": "0.3"}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/runs/project/alpha/new/", form)

    run = TrainingRun.objects.exclude(pk__in=[world.done.pk, world.running.pk]).get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    assert run.status == "queued" and run.created_by == world.manager
    assert run.config["use_lora"] is True and run.config["lora_r"] == 8 and run.config["max_length"] == 64
    assert run.export["options"]["strategy"] == "majority" and run.export["options"]["test_ratio"] == 0.3
    assert DBTaskResult.objects.get().args_kwargs["kwargs"] == {"run_id": run.pk}


def test_new_run_form_shows_why_nothing_could_be_trained(world, client):
    _client(client, world.other_manager)
    form = {"base_model": "tiny", "num_train_epochs": "1", "learning_rate": "0.001", "per_device_train_batch_size": "4",
            "max_length": "64", "lora_r": "8", "max_steps": "3", "seed": "1", "strategy": "all",
            "test_ratio": "0.1"}  # fmt: skip
    response = client.post("/runs/project/beta/new/", form)
    assert response.status_code == 200 and "no training pairs yet" in response.content.decode()
    assert not TrainingRun.objects.filter(project=world.other).exists()


def test_run_page_shows_status_metrics_ceiling_model_and_log(world, client):
    body = _client(client, world.manager).get(f"/runs/{world.done.pk}/").content.decode()
    assert 'class="status status-succeeded"' in body and "Succeeded" in body
    assert '<dd id="final-accuracy">0.813</dd>' in body and '<dd id="final-ceiling">0.710</dd>' in body
    assert "/srv/runs/1/model" in body and "AutoModelForSequenceClassification.from_pretrained" in body
    assert "<td>qa</td>" in body and "<td>0.750</td>" in body and "<td>0.660</td>" in body  # model next to humans
    assert "Succeeded." in body and "learning_rate" in body
    chart_data = json.loads(body.split('id="run-data" type="application/json">')[1].split("</script>")[0])
    assert chart_data["margin_histogram"] == {"edges": [-1.0, 0.0, 1.0], "counts": [3, 13]}
    assert chart_data["active"] is False and chart_data["progress_url"] == f"/runs/{world.done.pk}/progress.json"
    assert "Cancel run" not in body


def test_run_page_of_a_running_run_has_progress_and_a_cancel_button(world, client):
    body = _client(client, world.manager).get(f"/runs/{world.running.pk}/").content.decode()
    assert 'value="40"' in body and "4 / 10" in body and "90 s" in body and "Cancel run" in body


def test_progress_endpoint_returns_status_and_only_newer_points(world, client):
    _client(client, world.manager)
    data = client.get(f"/runs/{world.running.pk}/progress.json").json()
    assert (data["status"], data["step"], data["total_steps"], data["percent"], data["active"]) == (
        "running", 4, 10, 40, True)  # fmt: skip
    assert [p["value"] for p in data["points"]] == [0.9, 0.7, 0.6]
    newer = client.get(f"/runs/{world.running.pk}/progress.json?after={data['points'][1]['id']}").json()
    assert [p["value"] for p in newer["points"]] == [0.6] and newer["last_id"] == data["last_id"]
    assert client.get(f"/runs/{world.running.pk}/progress.json?after={data['last_id']}").json()["points"] == []


def test_cancel_button_asks_a_running_run_to_stop_and_cancels_a_queued_one(world, client):
    _client(client, world.manager)
    response = client.post(f"/runs/{world.running.pk}/cancel/", follow=True)
    assert "Cancel requested" in response.content.decode()
    assert TrainingRun.objects.get(pk=world.running.pk).cancel_requested
    queued = make_run(world.project)
    client.post(f"/runs/{queued.pk}/cancel/")
    assert TrainingRun.objects.get(pk=queued.pk).status == "cancelled"
    response = client.post(f"/runs/{world.done.pk}/cancel/", follow=True)
    assert "already finished" in response.content.decode()


def test_compare_page_shows_two_runs_side_by_side(world, client):
    body = _client(client, world.manager).get(f"/runs/compare/?a={world.done.pk}&b={world.running.pk}").content.decode()
    assert f"Run #{world.done.pk} vs run #{world.running.pk}" in body
    assert "<code>eval/accuracy</code></th><td>0.8125</td><td>—</td>" in body
    assert "<code>learning_rate</code></th><td><code>0.00003</code></td><td><code>0.001</code></td>" in body


def test_score_button_enqueues_scoring(world, client, django_capture_on_commit_callbacks):
    _client(client, world.manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/runs/{world.done.pk}/score/")
    assert response.status_code == 302
    task = DBTaskResult.objects.get()
    assert task.task_path == "rlhf.tasks.response_scores_task"
    assert task.args_kwargs["kwargs"] == {"run_id": world.done.pk, "project_id": world.project.pk}
    assert TrainingRun.objects.get(pk=world.done.pk).scoring["status"] == "queued"


def test_disagreement_page_lists_the_prompts_where_model_and_labelers_disagree(world, client):
    worst, fine = world.prompts[0], world.prompts[1]
    for prompt, scores in ((worst, [0.0, 1.0, 2.0]), (fine, [2.0, 1.0, 0.5])):
        for response, score in zip(prompt.responses.order_by("index"), scores, strict=True):
            ResponseScore.objects.create(run=world.done, response=response, score=score)

    body = _client(client, world.manager).get(f"/runs/{world.done.pk}/disagreements/").content.decode()

    # worst: majority says 1 > 2 and 1 > 3 (2 vs 3 split evenly); the model says 3 > 2 > 1: 2 of 2 pairs disagree.
    assert body.index(f"Prompt {worst.pk}") < body.index(f"Prompt {fine.pk}")
    assert "2 / 2 pairs disagree (100%)" in body and "0 / 2 pairs disagree (0%)" in body
    assert '<dd id="disagreement-rate">50%</dd>' in body
    assert "model-0" not in body  # model names never shown


# --- length-aware evaluation and the length-bias warning -----------------------------------------------------------

LENGTH_BIASED = {"eval/accuracy": 0.61, "eval/pairs": 40, "eval/accuracy_chosen_longer": 0.72,
                 "eval/accuracy_chosen_shorter": 0.44, "eval/pairs_chosen_longer": 25, "eval/pairs_chosen_shorter": 14,
                 "eval/pairs_equal_length": 1, "eval/length_balanced_accuracy": 0.58,
                 "eval/length_baseline_accuracy": 0.606, "eval/margin_length_correlation": 0.41,
                 "eval/length_bias_warning": True}  # fmt: skip
LENGTH_FINE = LENGTH_BIASED | {"eval/accuracy_chosen_shorter": 0.6, "eval/length_balanced_accuracy": 0.66,
                               "eval/margin_length_correlation": None, "eval/length_bias_warning": False}  # fmt: skip
WARNING = "This reward model may have learned response length"


def test_run_page_warns_when_the_model_may_have_learned_length_with_the_figures(world, client):
    run = make_run(world.project, status="succeeded", metrics=LENGTH_BIASED, export={"test_pairs": 40})
    body = _client(client, world.manager).get(f"/runs/{run.pk}/").content.decode()

    warning = body.split('id="length-warning"')[1].split("</div>")[0]
    assert WARNING in warning and 'role="alert"' in body.split(WARNING)[0].rsplit("<div", 1)[1]
    assert "<strong>0.580</strong>" in warning and "<strong>0.440</strong>" in warning  # the two figures
    assert "below 0.55" in warning and "below 0.5;" in warning and "14 pairs" in warning
    assert '<dd id="acc-chosen-longer">0.720</dd>' in body and '<dd id="acc-chosen-shorter">0.440</dd>' in body
    assert '<dd id="length-balanced">0.580</dd>' in body and '<dd id="margin-length-r">0.410</dd>' in body
    assert "1 pair of equal length belongs to neither group" in body


def test_run_page_shows_length_figures_without_a_warning_when_they_are_fine(world, client):
    run = make_run(world.project, status="succeeded", metrics=LENGTH_FINE, export={"test_pairs": 40})
    body = _client(client, world.manager).get(f"/runs/{run.pk}/").content.decode()

    assert WARNING not in body and 'id="length-warning"' not in body
    assert '<dd id="length-balanced">0.660</dd>' in body and '<dd id="margin-length-r">—</dd>' in body
    assert 'id="no-heldout"' not in body


def test_run_page_computes_the_warning_for_runs_stored_without_it(world, client):
    metrics = {k: v for k, v in LENGTH_BIASED.items() if k != "eval/length_bias_warning"}
    run = make_run(world.project, status="succeeded", metrics=metrics, export={"test_pairs": 40})
    assert WARNING in _client(client, world.manager).get(f"/runs/{run.pk}/").content.decode()
    old = make_run(world.project, status="succeeded", metrics=METRICS, export={"test_pairs": 16})  # before the split
    body = client.get(f"/runs/{old.pk}/").content.decode()
    assert WARNING not in body and 'id="length-metrics"' not in body


@pytest.mark.parametrize(
    ("options", "test_prompts", "reason"),
    [
        ({"test_ratio": 0.0}, 0, "used a test ratio of 0, so every prompt went to training"),
        ({"test_ratio": 0.1}, 0, "(test ratio 0.1) held out none of the 6 ranked prompts"),
        ({"test_ratio": 0.1}, 2, "the 2 held-out prompt(s) gave no preference pair"),
    ],
)
def test_run_page_says_why_there_is_no_held_out_figure(world, client, options, test_prompts, reason):
    splits = {"train": {"prompts": 6 - test_prompts}, "test": {"prompts": test_prompts}}
    export = {"options": options, "train_pairs": 30, "test_pairs": 0, "counts": {"splits": splits}}
    run = make_run(world.project, status="succeeded", metrics={"train/steps": 3}, export=export)
    body = _client(client, world.manager).get(f"/runs/{run.pk}/").content.decode()
    note = body.split('id="no-heldout"')[1].split("</p>")[0]
    assert "No held-out evaluation" in note and reason in note
    assert WARNING not in body
