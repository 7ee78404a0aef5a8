"""The reward model's boundary through the platform: the check before a PPO run or a scoring job (a warning in the
API response and on the page, never a refusal), the reports the scoring and generation jobs keep, and the run page
showing the share, the list (escaped) and the reward model's held-out accuracy per category next to it. Real MiniLM
embeddings, tiny policy and reward models, CPU, offline."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils.html import escape

from rlhf.models import TrainingRun
from rlhf.services.loop import responses_generate
from rlhf.services.scoring import response_scores_execute
from rlhf.training import boundary
from tests.annotation.api._helpers import api_client
from tests.factories import AdminFactory, ProjectFactory, PromptFactory, manager
from tests.rlhf.conftest import make_run
from tests.rlhf.training.causal_models import demo_rows, save_tiny_policy_and_reward_model

COOKING = [
    "How long should I boil an egg for a soft yolk?",
    "What can I use instead of buttermilk in pancakes?",
    "How do I keep pasta from sticking together?",
    "What temperature should I roast a chicken at?",
    "How do I make a simple tomato sauce?",
    "Why did my bread not rise?",
    "How do I caramelize onions?",
    "What spices go well with lentil soup?",
    "How can I make rice less mushy?",
    "How do I sear a steak properly?",
]
HELD_OUT = ["How do I thicken a stew?", "Can I freeze cooked rice?", "How do I poach an egg?"]
FOREIGN = [
    "def quicksort(xs): return xs if len(xs) < 2 else quicksort([x for x in xs[1:] if x < xs[0]])",
    "SELECT name, COUNT(*) FROM users GROUP BY name HAVING COUNT(*) > 1;",
    "Wie funktioniert die Einkommensteuererklärung in Deutschland?",
    "Expliquez la théorie de la relativité restreinte.",
    "<script>alert('x')</script> while (true) { fork(); }",
    "import numpy as np; np.linalg.svd(np.random.rand(3, 3))",
    "Erkläre mir bitte die Quantenchromodynamik.",
    'fn main() { println!("hello"); }',
]
WARNED = "are unlike the reward model's training prompts"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny policy and reward model; the reward model's boundary index is built on the cooking prompts."""
    root = tmp_path_factory.mktemp("boundary-models")
    policy, reward = save_tiny_policy_and_reward_model(root, demo_rows(16))
    boundary.build_index(reward, COOKING, HELD_OUT)
    no_index = root / "no-index"
    no_index.mkdir()
    return {"policy": policy, "reward": reward, "no_index": no_index}


@pytest.fixture
def world(db, models):
    w = type("World", (), {})()
    w.kitchen, w.code = ProjectFactory(slug="kitchen"), ProjectFactory(slug="code")
    w.admin, w.manager = AdminFactory(), manager(w.code)
    for text in COOKING:
        PromptFactory(project=w.kitchen, text=text, category="cooking", responses=2)
    for text in FOREIGN:
        PromptFactory(project=w.code, text=text, category="code", responses=2)
    PromptFactory(project=w.code, text=COOKING[0], category="cooking", responses=2)
    metrics = {"eval/accuracy": 0.7, "eval/accuracy_by_category": {"cooking": {"accuracy": 0.8333, "pairs": 16}}}
    w.reward = make_run(w.code, kind="reward_model", status="succeeded", output_dir=str(models["reward"]),
                        metrics=metrics, name="kitchen rm")  # fmt: skip
    w.policy = str(models["policy"])
    return w


def ppo_body(project: str, reward_run: int, policy: str) -> dict:
    return {"project": project, "kind": "ppo", "policy": policy, "reward_run": reward_run,
            "config": {"total_episodes": 8}}  # fmt: skip


def test_a_ppo_run_on_mostly_foreign_prompts_is_created_with_a_warning(world):
    response = api_client(world.admin).post(
        "/api/runs/", ppo_body("code", world.reward.pk, world.policy), format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert len(body["warnings"]) == 1 and WARNED in body["warnings"][0]
    report = body["export"]["boundary"]
    assert report["available"] and report["share_out_of_range"] > 0.5 and report["reward_run"] == world.reward.pk
    assert report["accuracy_by_category"]["cooking"]["accuracy"] == 0.8333
    assert COOKING[0] not in [item["prompt"] for item in report["out_of_range"]]  # a training prompt: in range
    assert TrainingRun.objects.get(pk=body["id"]).status == "queued"  # a warning, not a refusal


def test_a_ppo_run_on_the_reward_models_own_prompts_has_no_warning_and_embeds_nothing(world, monkeypatch):
    def no_embedding(*args, **kwargs):
        raise AssertionError("the training prompts are found by their hash")

    monkeypatch.setattr(boundary, "embed", no_embedding)
    response = api_client(world.admin).post(
        "/api/runs/", ppo_body("kitchen", world.reward.pk, world.policy), format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["warnings"] == [] and body["export"]["boundary"]["share_out_of_range"] == 0.0
    assert body["export"]["boundary"]["checked"] == body["export"]["boundary"]["n"] > 0


def test_a_reward_model_without_an_index_is_reported_as_such_without_a_warning(world, models):
    old = make_run(world.kitchen, kind="reward_model", status="succeeded", output_dir=str(models["no_index"]))
    response = api_client(world.admin).post("/api/runs/", ppo_body("code", old.pk, world.policy), format="json")
    assert response.status_code == 201 and response.json()["warnings"] == []
    assert response.json()["export"]["boundary"]["reason"] == boundary.NO_INDEX


def test_the_form_warns_and_the_run_page_shows_the_share_the_escaped_list_and_accuracy_by_category(world, client):
    client.force_login(world.admin)
    form = {"algorithm": "ppo", "policy_path": world.policy, "reward_run": world.reward.pk, "kl_coef": 0.05,
            "total_episodes": 8, "response_length": 4, "batch_size": 4, "num_ppo_epochs": 1, "temperature": 0.7,
            "seed": 1, "test_ratio": 0.1}  # fmt: skip
    page = client.post(reverse("rlhf:policy-run-create", args=["code"]), form, follow=True)

    assert page.status_code == 200
    html = page.content.decode()
    run = TrainingRun.objects.get(kind="ppo")
    report = run.export["boundary"]
    assert html.count(WARNED.replace("'", "&#x27;")) >= 3  # the flash message, the warnings box, the report's own
    assert 'id="ppo-warnings"' in html
    assert "The reward model's boundary" in html and 'id="boundary-export"' in html
    assert f"{round(report['share_out_of_range'] * 100)}%" in html
    assert all(escape(item["prompt"]) in html for item in report["out_of_range"]) and report["out_of_range"]
    assert "<script>alert('x')" not in html
    assert "0.833" in html  # the reward model's held-out accuracy on 'cooking', next to its share out of range


def test_scoring_warns_before_it_is_queued_and_the_job_checks_every_prompt(world):
    response = api_client(world.admin).post(f"/api/runs/{world.reward.pk}/score/", {"project": "code"}, format="json")
    assert response.status_code == 202
    assert WARNED in response.json()["warnings"][0] and response.json()["scoring"]["boundary"]["n"] == len(FOREIGN) + 1

    response_scores_execute(run_id=world.reward.pk, project_id=world.code.pk)
    world.reward.refresh_from_db()
    report = world.reward.scoring["boundary"]
    assert world.reward.scoring["status"] == "succeeded"
    assert report["checked"] == len(FOREIGN) + 1 and report["out_of_range_count"] == len(FOREIGN)
    assert report["by_category"]["cooking"] == {"prompts": 1, "out_of_range": 0, "share_out_of_range": 0.0}


def test_the_reward_model_page_shows_its_index_and_the_scoring_report(world, client):
    world.reward.scoring = {
        "status": "succeeded",
        "boundary": {
            **boundary.report(
                world.reward.output_dir, FOREIGN[4:6] + COOKING[:2], ["code", "code", "cooking", "cooking"]
            ),
            "accuracy_by_category": world.reward.metrics["eval/accuracy_by_category"],
            "reward_run": world.reward.pk,
        },
    }
    world.reward.save()
    client.force_login(world.admin)
    html = client.get(reverse("rlhf:run-detail", args=[world.reward.pk])).content.decode()

    threshold = boundary.index_info(world.reward.output_dir)["threshold"]
    assert 'id="boundary-index"' in html and f"{threshold:.3f}" in html and "held-out prompts" in html
    assert 'id="boundary-scoring"' in html and "50%" in html and "np.linalg.svd" in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html and "<script>alert('x')" not in html
    assert "0.833" in html


def test_labelers_and_other_managers_do_not_see_the_boundary(world, client):
    other = manager(ProjectFactory(slug="elsewhere"))
    client.force_login(other)
    assert client.get(reverse("rlhf:run-detail", args=[world.reward.pk])).status_code == 404


def test_generation_records_its_prompts_against_the_policy_runs_reward_model(world):
    ppo = make_run(world.code, kind="ppo", status="succeeded", output_dir=world.policy,
                   export={"reward_run": world.reward.pk})  # fmt: skip
    result = responses_generate(project=world.code, model=ppo, k=2, scope="all", max_new_tokens=3)
    report = result.as_dict()["boundary"]
    assert report["n"] == len(FOREIGN) + 1 and report["out_of_range_count"] == len(FOREIGN)
    assert WARNED in report["warning"]


def test_the_score_responses_command_warns_and_prints_the_share(world):
    out, err = StringIO(), StringIO()
    call_command("score_responses", "--run", str(world.reward.pk), "--project", "code", stdout=out, stderr=err)
    assert WARNED in err.getvalue()
    share = len(FOREIGN) / (len(FOREIGN) + 1)
    assert f"out of the reward model's range: {share:.1%} ({len(FOREIGN)} of {len(FOREIGN) + 1})" in out.getvalue()


def test_before_a_run_a_large_prompt_set_is_checked_on_a_sample(world, monkeypatch):
    from rlhf.services import boundary as service

    monkeypatch.setattr(service, "PRECHECK_SAMPLE", 3)
    response = api_client(world.admin).post(f"/api/runs/{world.reward.pk}/score/", {"project": "code"}, format="json")
    report = response.json()["scoring"]["boundary"]
    assert (report["n"], report["checked"], report["sampled"]) == (len(FOREIGN) + 1, 3, True)
