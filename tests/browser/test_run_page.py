"""The training-run page in a real browser: curves drawn from the stored points, then live updates from the JSON
endpoint while the run trains (the test writes progress as the worker would), and the final metrics once it ends."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from rlhf.models import RunMetric, TrainingRun
from tests.browser.conftest import log_in, page_value, screenshot
from tests.factories import ProjectFactory, manager

pytestmark = pytest.mark.browser

FINAL_METRICS = {
    "eval/accuracy": 0.6875,
    "eval/pairs": 64,
    "eval/margin_mean": 0.31,
    "eval/length_baseline_accuracy": 0.59,
    "eval/margin_histogram": {"edges": [-2, -1, 0, 1, 2, 3], "counts": [4, 16, 22, 15, 7]},
    "eval/accuracy_by_category": {"chat": {"accuracy": 0.7, "pairs": 40}, "qa": {"accuracy": 0.66, "pairs": 24}},
    "eval/accuracy_by_guideline_version": {"1": {"accuracy": 0.69, "pairs": 64}},
    "train/truncated_pairs": 3,
}


def _points(run, steps):
    for step in steps:
        RunMetric.objects.create(run=run, step=step, name="train/loss", value=0.7 - 0.02 * step)
        RunMetric.objects.create(run=run, step=step, name="train/accuracy", value=0.5 + 0.02 * step)


def test_run_page_updates_live_and_shows_final_metrics(page, runs_dir_setting):
    project = ProjectFactory(slug="hh", name="HH helpful")
    user = manager(project)
    run = TrainingRun.objects.create(
        project=project, name="MiniLM reward model", status="running", step=3, total_steps=10, eta_s=140,
        stage="train", started_at=timezone.now(), output_dir="/srv/runs/1/model", data_dir="/srv/runs/1/data",
        config={"base_model": "default", "learning_rate": 3e-5, "max_length": 512, "num_train_epochs": 1.0},
        export={"train_pairs": 576, "test_pairs": 64, "human_agreement": {"overall": 0.74, "compared_pairs": 90,
                "by_category": {"chat": {"agreement": 0.76}, "qa": {"agreement": 0.71}}}},
        log_tail="10:00:00 Started by worker pid 4242 on host.\n10:00:05 step 3/10 train/loss=0.64",
    )  # fmt: skip
    _points(run, [1, 2, 3])
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))

    log_in(page, user, next_url=f"/runs/{run.pk}/")
    expect(page.locator("h1")).to_have_text(f"Run #{run.pk} · MiniLM reward model")
    expect(page.locator("#run-status")).to_have_text("Running")
    expect(page.locator("#run-step")).to_have_text("3 / 10")
    assert page_value(page, "window.runCharts.loss.data.datasets[0].data.length") == 3

    # The worker reports progress: the page picks it up by polling.
    _points(run, [4, 5, 6, 7])
    TrainingRun.objects.filter(pk=run.pk).update(step=7, eta_s=65, log_tail=run.log_tail + "\nstep 7/10 loss=0.56")
    expect(page.locator("#run-step")).to_have_text("7 / 10", timeout=8000)
    expect(page.locator("#run-eta")).to_have_text("1 min 5 s")
    expect(page.locator("#log-tail")).to_contain_text("step 7/10 loss=0.56")
    assert page.evaluate("window.runCharts.loss.data.datasets[0].data.length") == 7
    assert page.evaluate("window.runCharts.accuracy.data.datasets[0].data.at(-1).y") == pytest.approx(0.64)

    # It finishes: the page reloads once and shows the final metrics next to the human ceiling.
    _points(run, [8, 9, 10])
    RunMetric.objects.create(run=run, step=10, name="eval/accuracy", value=0.6875)
    TrainingRun.objects.filter(pk=run.pk).update(
        status="succeeded", step=10, eta_s=0, stage="done", finished_at=timezone.now(), metrics=FINAL_METRICS,
        log_tail=run.log_tail + "\nSucceeded.",
    )  # fmt: skip
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=8000)
    expect(page.locator("#final-accuracy")).to_have_text("0.688", timeout=8000)
    expect(page.locator("#final-ceiling")).to_have_text("0.740")
    expect(page.locator("#model-dir")).to_have_text("/srv/runs/1/model")
    expect(page.locator("#run-progress-bar")).to_have_attribute("value", "100")
    assert page.evaluate("window.runCharts.margins.data.datasets[0].data") == [4, 16, 22, 15, 7]
    assert page.evaluate("window.runCharts.accuracy.data.datasets.map(d => d.label)") == [
        "train/accuracy", "eval/accuracy"]  # fmt: skip
    screenshot(page, "run")
    assert not problems, problems


@pytest.fixture
def runs_dir_setting(settings, tmp_path):
    settings.RLHF_RUNS_DIR = str(tmp_path / "runs")


def test_chain_page_names_its_stages_and_follows_them(page, runs_dir_setting):
    project = ProjectFactory(slug="chain", name="Chain")
    user = manager(project)
    run = TrainingRun.objects.create(
        project=project, kind=TrainingRun.Kind.CHAIN, name="chain", status="running", step=2, total_steps=10,
        eta_s=80, stage="2/4 SFT", started_at=timezone.now(), config={"base_model": "default"},
    )  # fmt: skip
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, user, next_url=f"/runs/{run.pk}/")
    stages = page.locator("#chain-stages li")
    expect(stages).to_have_text(["base", "SFT", "reward model", "PPO"])
    expect(page.locator("#run-stage")).to_have_text("2/4 SFT")
    expect(stages.nth(0)).to_have_class("stage-done")
    expect(stages.nth(1)).to_have_attribute("aria-current", "step")
    expect(stages.nth(2)).to_have_class("stage-waiting")

    TrainingRun.objects.filter(pk=run.pk).update(step=5, total_steps=50, eta_s=45, stage="3/4 reward model")
    expect(page.locator("#run-stage")).to_have_text("3/4 reward model", timeout=8000)
    expect(stages.nth(1)).to_have_class("stage-done")
    expect(stages.nth(2)).to_have_attribute("aria-current", "step")
    expect(page.locator("#run-step")).to_have_text("5 / 50")
    expect(page.locator("#run-eta")).to_have_text("45 s")
    assert not problems, problems
