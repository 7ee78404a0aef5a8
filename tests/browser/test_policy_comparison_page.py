"""A blind comparison batch in a real browser: two labelers see the same four responses in different orders and no
model name anywhere; the run page shows the policy's win rate next to the reward model's prediction, marked as the
simulated labelers' where it is, without sideways scrolling on a phone."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from annotation.demo.simulated import SIMULATED_SOURCE
from annotation.models import Prompt, Response
from rlhf.models import TrainingRun
from tests.browser.conftest import fits_width, log_in, screenshot
from tests.factories import ProjectFactory, labeler, manager
from tests.rlhf.conftest import rank

pytestmark = pytest.mark.browser

POLICY, REFERENCE = "run-1:ppo secret-name", "/srv/models/secret-reference"


def _batch(project, run, n_prompts: int = 3) -> list[Prompt]:
    """A comparison round as rlhf/services/comparison.py writes it: 2 + 2 responses per prompt, sides in metadata."""
    prompts = []
    for i in range(n_prompts):
        prompt = Prompt.objects.create(
            project=project, text=f"How do I brew tea? ({i})", content_hash=f"h{i}", round=2,
            metadata={"source_prompt_id": 0, "comparison": {"run_id": run.pk, "policy": POLICY,
                                                            "reference": REFERENCE}},
        )  # fmt: skip
        sides = [("reference", 0.1), ("policy", 0.9), ("reference", 0.2), ("policy", 0.8)]
        Response.objects.bulk_create(
            Response(prompt=prompt, text=f"Answer {'ABCD'[j]} to prompt {i}.", index=j,
                     model_name=POLICY if side == "policy" else REFERENCE,
                     metadata={"side": side, "rm_score": score, "generated": True, "run_id": run.pk})
            for j, (side, score) in enumerate(sides)
        )  # fmt: skip
        prompts.append(prompt)
    return prompts


@pytest.fixture
def runs_dir_setting(settings, tmp_path):
    settings.RLHF_RUNS_DIR = str(tmp_path / "runs")
    return tmp_path / "runs"


@pytest.mark.parametrize("page", ["desktop", "mobile"], indirect=True)
def test_labelers_rank_blind_and_the_run_page_shows_the_win_rate(page, runs_dir_setting):
    project = ProjectFactory(slug="loop", name="Loop", overlap=2)
    boss, people = manager(project), [labeler(project), labeler(project)]
    run = TrainingRun.objects.create(project=project, kind="ppo", name="ppo secret-name", status="succeeded",
                                     output_dir=str(runs_dir_setting / "1" / "model"))  # fmt: skip
    prompts = _batch(project, run)

    orders = []
    for person in people:
        log_in(page, person, next_url="/projects/loop/label/")
        expect(page.get_by_text("How do I brew tea? (0)")).to_be_visible()
        html = page.content()
        assert "secret" not in html and "rm_score" not in html and '"side"' not in html
        orders.append([t.strip() for t in page.locator(".response-text").all_inner_texts()])
        page.context.clear_cookies()
    assert sorted(orders[0]) == sorted(orders[1]) == [f"Answer {c} to prompt 0." for c in "ABCD"]
    assert orders[0] != orders[1]  # each labeler's own order

    for prompt in prompts:  # the policy's responses (B, D) first, by one person and one simulated labeler
        rank(prompt, people[0], [2, 1, 2, 1])
        ranking = rank(prompt, people[1], [3, 1, 4, 2])
        ranking.metadata = {"source": SIMULATED_SOURCE}
        ranking.save(update_fields=["metadata"])
    log_in(page, boss, next_url=f"/runs/{run.pk}/")
    row = page.locator("#comparisons-table tbody tr")
    expect(row.locator("[data-human-win-rate]")).to_contain_text("100%")
    expect(row.locator("[data-rm-win-rate]")).to_contain_text("100%")
    expect(row.locator("[data-simulated]")).to_have_text("3 by simulated labelers")
    expect(page.locator("#comparison-form")).to_be_visible()
    assert fits_width(page)
    screenshot(page, f"run-page-comparison-{page.viewport_size['width']}")


def test_the_comparison_status_follows_the_job_and_the_page_reloads_when_it_ends(page, runs_dir_setting):
    project = ProjectFactory(slug="loop", name="Loop")
    boss = manager(project)
    run = TrainingRun.objects.create(
        project=project, kind="ppo", name="ppo", status="succeeded", output_dir=str(runs_dir_setting / "1" / "model"),
        comparison={"status": "queued", "project": "loop"},
    )  # fmt: skip
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))

    log_in(page, boss, next_url=f"/runs/{run.pk}/")
    expect(page.locator("#comparison-status")).to_contain_text("Latest: queued")

    # The worker takes the job and reports progress: the line follows without a reload.
    beat = timezone.now().isoformat()  # a live worker's heartbeat (the page's sweep fails a job without one)
    TrainingRun.objects.filter(pk=run.pk).update(comparison={"status": "running", "project": "loop", "done": 2,
                                                             "total": 6, "heartbeat_at": beat})  # fmt: skip
    expect(page.locator("#comparison-status")).to_have_text("Latest: running — 2 / 6", timeout=8000)

    # It ends: the page reloads once and shows the round it made.
    TrainingRun.objects.filter(pk=run.pk).update(comparison={
        "status": "succeeded", "project": "loop", "done": 6, "total": 6, "round": 2, "prompts": 3, "responses": 12,
    })  # fmt: skip
    expect(page.locator("#comparison-status")).to_contain_text("round 2: 3 prompts, 12 responses", timeout=8000)
    assert not problems, problems
