"""Policy runs through the platform: creating PPO/SFT/DPO/GRPO/chain runs (their input files, the tokenizer check
before anything is queued, permissions), the run page's samples and warnings, and PPO trained by the REAL worker
(`manage.py rlhf_worker` as a subprocess over a throwaway SQLite file, tiny models on CPU, offline)."""

import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotation.exports.options import ExportOptions
from rlhf.models import TrainingRun
from rlhf.services.ppo import best_responses_get, policy_run_create, prompt_split_get
from rlhf.services.prepare import run_inputs_prepare
from rlhf.training.ppo_config import PPO_RECIPES, PPORunConfig
from tests.annotation.api._helpers import api_client
from tests.factories import AdminFactory, ProjectFactory, PromptFactory, labeler, manager
from tests.rlhf.conftest import make_run, rank
from tests.rlhf.test_worker import Platform, _tensors
from tests.rlhf.training.causal_models import (
    demo_rows,
    save_tiny_bert_reward_model,
    save_tiny_policy_and_reward_model,
    write_jsonl,
)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """A tiny GPT-2 policy and reward model sharing a tokenizer, and a tiny BERT reward model on its own."""
    root = tmp_path_factory.mktemp("models")
    policy, reward = save_tiny_policy_and_reward_model(root, demo_rows(16))
    return {"policy": policy, "reward": reward, "bert": save_tiny_bert_reward_model(root, demo_rows(16))}


@pytest.fixture
def world(db, tiny_models, settings):
    # The tiny models lie outside the runs directory: an admin allows their directory for managers (issue #12 item 3).
    settings.RLHF_ALLOWED_MODEL_DIRS = [str(Path(tiny_models["policy"]).parent)]
    w = type("World", (), {})()
    w.project = ProjectFactory(slug="alpha")
    w.manager, w.labeler, w.admin = manager(w.project), labeler(w.project), AdminFactory()
    w.other_labeler = labeler(w.project)
    w.prompts = [PromptFactory(project=w.project, responses=3, category="qa") for _ in range(20)]
    for prompt in w.prompts:
        rank(prompt, w.labeler, [2, 1, 3])
        rank(prompt, w.other_labeler, [3, 1, 2])
    w.gold = PromptFactory(project=w.project, is_gold=True)
    done = {"status": "succeeded", "kind": "reward_model"}
    w.reward = make_run(w.project, name="gpt2 rm", output_dir=str(tiny_models["reward"]), **done)
    w.bert = make_run(w.project, name="bert rm", output_dir=str(tiny_models["bert"]), **done)
    w.policy = str(tiny_models["policy"])
    return w


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def test_ppo_run_create_writes_train_side_prompts_and_keeps_test_prompts_held_out(world):
    run = policy_run_create(
        project=world.project, kind="ppo", policy=world.policy, reward_run=world.reward,
        config={"total_episodes": 16}, export_options={"test_ratio": 0.3}, enqueue=False,
    )  # fmt: skip
    assert run.config["train_file"] == "" and run.export["pending"] is True  # the worker writes the inputs
    run_inputs_prepare(run)

    sides = prompt_split_get(project=world.project, options=ExportOptions(test_ratio=0.3))
    train, held = _lines(run.config["train_file"]), _lines(run.config["eval_file"])
    assert {r["prompt_id"] for r in train} == {pid for pid, side in sides.items() if side == "train"}
    assert {r["prompt_id"] for r in held} == {pid for pid, side in sides.items() if side == "test"}
    assert held and world.gold.pk not in {r["prompt_id"] for r in train + held}
    assert run.config["policy"] == world.policy and run.config["reward_model"] == world.reward.output_dir
    assert run.config["total_episodes"] == 16 and run.config["output_dir"].endswith(f"/{run.pk}/model")
    assert (run.status, run.kind, run.export["reward_run"]) == ("queued", "ppo", world.reward.pk)


def test_a_second_reward_run_goes_into_the_ppo_config_and_is_refused_for_other_kinds(world):
    run = policy_run_create(
        project=world.project, kind="ppo", policy=world.policy, reward_run=world.reward,
        second_reward_run=world.bert.pk, enqueue=False,
    )  # fmt: skip
    assert run.config["second_reward_model"] == world.bert.output_dir
    assert run.export["second_reward_run"] == world.bert.pk

    with pytest.raises(ValidationError, match="for PPO runs only"):
        policy_run_create(project=world.project, kind="dpo", second_reward_run=world.bert.pk, enqueue=False)
    with pytest.raises(ValidationError):  # a config may not name its own second reward model: it is managed
        policy_run_create(project=world.project, kind="ppo", policy=world.policy, reward_run=world.reward,
                          config={"second_reward_model": "/etc"}, enqueue=False)  # fmt: skip
    assert TrainingRun.objects.filter(kind__in=["ppo", "dpo"]).count() == 1

    body = {"project": "alpha", "kind": "ppo", "policy": world.policy, "reward_run": world.reward.pk,
            "second_reward_run": world.bert.pk}  # fmt: skip
    response = api_client(world.manager).post("/api/runs/", body, format="json")
    assert response.status_code == 201, response.content
    assert TrainingRun.objects.get(pk=response.json()["id"]).config["second_reward_model"] == world.bert.output_dir


def test_an_ensemble_of_reward_runs_goes_into_the_ppo_config_from_the_service_the_api_and_the_form(world, client):
    done = {"status": "succeeded", "kind": "reward_model"}
    third = make_run(world.project, name="bert rm seed 2", output_dir=str(Path(world.bert.output_dir)), **done)
    run = policy_run_create(
        project=world.project, kind="ppo", policy=world.policy, reward_run=world.reward,
        ensemble_reward_runs=[world.bert.pk, third, world.bert.pk, world.reward.pk], enqueue=False,
    )  # fmt: skip
    # duplicates and the reward run itself dropped, in the order given
    assert run.config["reward_ensemble"] == [world.bert.output_dir, third.output_dir]
    assert run.export["ensemble_reward_runs"] == [world.bert.pk, third.pk]
    assert PPORunConfig.from_dict(run.config).reward_ensemble_mode == "mean"

    queued = make_run(world.project, name="unfinished rm", kind="reward_model", output_dir="/tmp/x")
    refusals = [
        ({"kind": "dpo", "ensemble_reward_runs": [world.bert.pk]}, "for PPO runs only"),
        ({"kind": "ppo", "ensemble_reward_runs": [world.bert.pk], "second_reward_run": world.bert.pk},
         "both in the ensemble PPO optimises and the second opinion"),
        ({"kind": "ppo", "ensemble_reward_runs": [queued.pk]}, "queued"),
        ({"kind": "ppo", "config": {"reward_ensemble": ["/etc"]}}, "Unknown config field"),  # managed: from runs
        ({"kind": "ppo", "config": {"reward_ensemble_mode": "median"}}, "mean, mean-std, min"),
        ({"kind": "ppo", "config": {"reward_ensemble_normalize": True}}, "only applies to a reward-model ensemble"),
        ({"kind": "ppo", "config": {"reward_ensemble_mode": "min"}}, "reward_ensemble_mode only applies"),
    ]  # fmt: skip
    for arguments, message in refusals:
        with pytest.raises(ValidationError, match=message):
            policy_run_create(project=world.project, policy=world.policy, reward_run=world.reward, enqueue=False,
                              **arguments)  # fmt: skip
    assert TrainingRun.objects.filter(kind__in=["ppo", "dpo"]).count() == 1

    body = {"project": "alpha", "kind": "ppo", "policy": world.policy, "reward_run": world.bert.pk,
            "ensemble_reward_runs": [third.pk], "config": {"reward_ensemble_mode": "mean-std"}}  # fmt: skip
    response = api_client(world.manager).post("/api/runs/", body, format="json")
    assert response.status_code == 201, response.content
    created = TrainingRun.objects.get(pk=response.json()["id"])
    assert (created.config["reward_ensemble"], created.config["reward_ensemble_mode"]) == (
        [third.output_dir],
        "mean-std",
    )

    client.force_login(world.manager)
    form = {"algorithm": "ppo", "policy_path": world.policy, "reward_run": world.reward.pk, "kl_coef": 0.05,
            "total_episodes": 16, "response_length": 8, "batch_size": 8, "num_ppo_epochs": 1, "temperature": 0.7,
            "seed": 1, "test_ratio": 0.2, "ensemble_reward_runs": [world.bert.pk, third.pk]}  # fmt: skip
    assert client.post(reverse("rlhf:policy-run-create", args=["alpha"]), form).status_code == 302
    assert TrainingRun.objects.filter(kind="ppo").latest("id").config["reward_ensemble"] == [
        world.bert.output_dir,
        third.output_dir,
    ]


def test_a_ppo_recipe_sets_the_run_and_the_callers_fields_win_in_the_service_the_api_the_form_and_the_command(
    world, client
):
    recipe = PPO_RECIPES["smollm2-cpu"]
    run = policy_run_create(project=world.project, kind="ppo", policy=world.policy, reward_run=world.reward,
                            recipe="smollm2-cpu", config={"total_episodes": 128, "seed": 3}, enqueue=False)  # fmt: skip
    assert {key: run.config[key] for key in recipe} == recipe | {"total_episodes": 128}
    assert (run.config["seed"], run.export["recipe"]) == (3, "smollm2-cpu")
    plain = policy_run_create(project=world.project, kind="ppo", policy=world.policy, reward_run=world.reward,
                              enqueue=False)  # fmt: skip
    assert (plain.config["kl_target"], plain.config["use_lora"], "recipe" in plain.export) == (None, False, False)
    refusals = [
        ({"kind": "ppo", "recipe": "gpu"}, "Unknown PPO recipe 'gpu'"),
        ({"kind": "dpo", "recipe": "smollm2-cpu"}, "for PPO runs only, not dpo"),
        # the recipe's rollout batch (64) is more than the caller's episodes
        ({"kind": "ppo", "recipe": "smollm2-cpu", "config": {"total_episodes": 16}}, "smaller than one rollout"),
    ]
    for arguments, message in refusals:  # fmt: skip
        with pytest.raises(ValidationError, match=message):
            policy_run_create(project=world.project, policy=world.policy, reward_run=world.reward, enqueue=False,
                              **arguments)  # fmt: skip
    runs = TrainingRun.objects.count()

    api = api_client(world.manager)
    body = {"project": "alpha", "kind": "ppo", "policy": world.policy, "reward_run": world.reward.pk,
            "recipe": "smollm2-cpu", "config": {"temperature": 0.8}}  # fmt: skip
    response = api.post("/api/runs/", body, format="json")
    assert response.status_code == 201, response.content
    created = TrainingRun.objects.get(pk=response.json()["id"])
    assert (created.config["temperature"], created.config["kl_target"], created.config["lora_top_layers"]) == (
        0.8,
        4.0,
        8,
    )
    for bad, message in (
        ({"recipe": "gpu"}, "is not a valid choice"),
        ({"kind": "sft", "config": {}}, "for PPO runs only"),
    ):
        refused = api.post("/api/runs/", body | bad, format="json")
        assert refused.status_code == 400 and message in refused.content.decode(), refused.content
    assert TrainingRun.objects.count() == runs + 1

    # The form: the fields left as shown take the recipe's values; the ones the user changed win.
    client.force_login(world.manager)
    url = reverse("rlhf:policy-run-create", args=["alpha"])
    form = {"algorithm": "ppo", "recipe": "smollm2-cpu", "policy_path": world.policy, "reward_run": world.reward.pk,
            "kl_coef": 0.05, "total_episodes": 256, "response_length": 48, "batch_size": 8, "num_ppo_epochs": 4,
            "temperature": 0.7, "seed": 42, "test_ratio": 0.1}  # fmt: skip
    assert client.post(url, form | {"response_length": 24}).status_code == 302
    formed = TrainingRun.objects.latest("id")
    assert {key: formed.config[key] for key in recipe} == recipe | {"response_length": 24}
    assert formed.export["recipe"] == "smollm2-cpu"
    page = client.get(reverse("rlhf:run-detail", args=[formed.pk])).content.decode()
    assert "Started from the PPO recipe <code>smollm2-cpu</code>" in page
    assert "PPO recipe" not in client.get(reverse("rlhf:run-detail", args=[plain.pk])).content.decode()
    assert client.post(url, form | {"kl_target": 2, "kl_coef": 0.2}).status_code == 302
    adapted = TrainingRun.objects.latest("id").config
    assert (adapted["kl_target"], adapted["kl_horizon"], adapted["kl_coef"], adapted["kl_coef_min"]) == (
        2.0,
        128,  # the recipe's horizon: measured with it, not the form's quarter of the episodes it shows
        0.2,
        0.05,
    )
    refused = client.post(url, form | {"algorithm": "dpo"})
    assert refused.status_code == 200 and "A PPO recipe is for PPO runs" in refused.content.decode()

    out = StringIO()
    call_command("run_ppo", "--project", "alpha", "--reward-run", str(world.reward.pk), "--policy", world.policy,
                 "--recipe", "smollm2-cpu", "--total-episodes", "512", stdout=out)  # fmt: skip
    commanded = TrainingRun.objects.latest("id")
    assert {key: commanded.config[key] for key in recipe} == recipe | {"total_episodes": 512}
    with pytest.raises(CommandError, match="invalid choice: 'gpu'"):
        call_command("run_ppo", "--project", "alpha", "--reward-run", str(world.reward.pk), "--recipe", "gpu")


def test_sft_files_hold_the_consensus_best_response_of_each_ranked_prompt(world):
    # both labelers put the second response first: it is the best of every prompt
    best = best_responses_get(project=world.project, prompt_ids=[p.pk for p in world.prompts])
    assert best == {p.pk: p.responses.get(index=1).pk for p in world.prompts}

    run = policy_run_create(project=world.project, kind="sft", enqueue=False, config={"max_steps": 2})
    run_inputs_prepare(run)
    rows = _lines(run.config["train_file"]) + _lines(run.config["eval_file"] or "/dev/null")
    assert len(rows) == 20 and all(row["completion"].startswith("Answer 1 to") for row in rows)
    assert run.config["base_model"] == "default"  # SmolLM2; 'tiny' is a test fixture


def test_ppo_with_a_reward_model_on_another_tokenizer_is_accepted(world):
    # The run re-encodes the policy's responses for the BERT reward model (rlhf.training.reward_wrapper).
    run = policy_run_create(
        project=world.project, kind="ppo", policy=world.policy, reward_run=world.bert, enqueue=False
    )  # fmt: skip

    assert run.config["reward_model"] == world.bert.output_dir and run.status == "queued"


def test_ppo_form_accepts_a_reward_run_and_stores_the_settings(world, client):
    client.force_login(world.manager)
    url = reverse("rlhf:policy-run-create", args=["alpha"])
    form = {"algorithm": "ppo", "policy_path": world.policy, "reward_run": world.bert.pk, "kl_coef": 0.05,
            "total_episodes": 16, "response_length": 8, "batch_size": 8, "num_ppo_epochs": 1, "temperature": 0.7,
            "seed": 1, "test_ratio": 0.2}  # fmt: skip

    accepted = client.post(url, form)
    run = TrainingRun.objects.get(kind="ppo")
    assert accepted.status_code == 302 and accepted["Location"] == f"/runs/{run.pk}/"
    assert run.config["reward_model"] == world.bert.output_dir
    assert (run.config["kl_coef"], run.config["total_episodes"], run.config["response_length"]) == (0.05, 16, 8)
    assert run.config["kl_target"] is None  # empty field: a fixed coefficient


def test_ppo_form_with_a_kl_target_configures_the_adaptive_controller(world, client):
    client.force_login(world.manager)
    form = {"algorithm": "ppo", "policy_path": world.policy, "reward_run": world.reward.pk, "kl_coef": 0.05,
            "kl_target": 4, "total_episodes": 64, "response_length": 8, "batch_size": 8, "num_ppo_epochs": 1,
            "temperature": 0.7, "seed": 1, "test_ratio": 0.2}  # fmt: skip
    url = reverse("rlhf:policy-run-create", args=["alpha"])
    assert client.post(url, form).status_code == 302
    run = TrainingRun.objects.get(kind="ppo")
    runs = TrainingRun.objects.count()
    assert (run.config["kl_target"], run.config["kl_horizon"]) == (4.0, 16)  # a quarter of the episodes
    assert PPORunConfig.from_dict(run.config).kl_target == 4.0

    refused = client.post(url, form | {"kl_target": 0})
    assert refused.status_code == 200 and TrainingRun.objects.count() == runs
    assert "Ensure this value is greater than or equal to 0.01" in refused.content.decode()


def test_default_chain_from_the_form_needs_no_policy_nor_reward_model(world, client):
    client.force_login(world.manager)
    form = {"algorithm": "ppo", "policy_run": "chain", "kl_coef": 0.1, "total_episodes": 32, "response_length": 8,
            "batch_size": 8, "num_ppo_epochs": 1, "temperature": 0.7, "seed": 1, "test_ratio": 0.2}  # fmt: skip
    response = client.post(reverse("rlhf:policy-run-create", args=["alpha"]), form)

    run = TrainingRun.objects.get(kind="chain")
    assert response.status_code == 302
    assert (run.config["ppo_kl_coef"], run.config["ppo_total_episodes"]) == (0.1, 32)
    assert run.config["ppo_kl_target"] is None
    run_inputs_prepare(run)
    assert _lines(run.config["sft_file"]) and _lines(run.config["pairs_file"])
    assert run.config["base_model"] == "default" and run.config["sft_use_lora"] is True  # SmolLM2's preset

    client.post(reverse("rlhf:policy-run-create", args=["alpha"]), form | {"policy_path": "tiny"})
    fixture = TrainingRun.objects.filter(kind="chain").latest("id")
    assert fixture.config["base_model"] == "tiny" and fixture.config["sft_learning_rate"] == 2e-3


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (lambda w: {"kind": "ppo", "policy": "x"}, "A PPO run needs a finished reward-model run"),
        (lambda w: {"kind": "ppo", "policy": "x", "reward_run": w.done_policy.pk}, "is a PPO run, not a reward model"),
        (lambda w: {"kind": "dpo", "policy": f"run:{w.reward.pk}"}, "is a Reward model run, not a policy"),
        (lambda w: {"kind": "ppo", "policy": "x", "reward_run": w.reward.pk, "config": {"kl": 1}},
         "config: Unknown field: kl."),
        (lambda w: {"kind": "grpo", "policy": "x", "reward_run": w.bert.pk, "config": {"num_generations": 1}},
         "Invalid config: num_generations must be at least 2"),
    ],
)  # fmt: skip
def test_policy_run_api_rejects_bad_input_with_readable_errors(world, body, error):
    world.done_policy = make_run(world.project, kind="ppo", status="succeeded", output_dir="/tmp/x")
    response = api_client(world.manager).post("/api/runs/", {"project": "alpha", **body(world)}, format="json")

    assert response.status_code == 400, response.content
    assert any(error in message for message in response.json()["errors"]), response.json()
    assert TrainingRun.objects.count() == 3


def test_labelers_can_neither_start_policy_runs_nor_see_them(world, client):
    run = make_run(world.project, kind="ppo", status="succeeded", output_dir="/tmp/none")
    body = {"project": "alpha", "kind": "ppo", "policy": world.policy, "reward_run": world.reward.pk}

    assert api_client(world.labeler).post("/api/runs/", body, format="json").status_code == 403
    assert api_client(world.labeler).post(f"/api/runs/{run.pk}/generate/", {"k": 2}, format="json").status_code == 404
    client.force_login(world.labeler)
    assert client.get(reverse("rlhf:policy-run-create", args=["alpha"])).status_code == 404
    assert client.post(reverse("rlhf:run-generate", args=[run.pk]), {"k": 2}).status_code == 404
    assert TrainingRun.objects.filter(kind="ppo").count() == 1 and run.generation == {}


def test_ppo_run_page_shows_curves_samples_side_by_side_and_warnings(world, client, tmp_path):
    out = tmp_path / "ppo"
    out.mkdir()
    samples = [{"prompt": [{"role": "user", "content": "Why tea?"}], "before": "No.", "before_reward": -1.25,
                "after": "Because it is warm.", "after_reward": 0.75}]  # fmt: skip
    (out / "samples.json").write_text(json.dumps(samples))
    warning = "Entropy collapsed to 0.100 nats per token at step 3 (from 2.000): the policy's outputs are losing"
    metrics = {"ppo/eval_reward_before": -1.25, "ppo/eval_reward_after": 0.75, "ppo/kl_final": 2.5,
               "ppo/eval_score_gain_std": 1.375, "warnings": [warning]}  # fmt: skip
    run = make_run(world.project, kind="ppo", status="succeeded", output_dir=str(out), metrics=metrics)
    run.metric_points.create(step=1, name="ppo/kl", value=0.5)
    client.force_login(world.manager)

    html = client.get(f"/runs/{run.pk}/").content.decode()

    assert 'id="ppo-warnings"' in html and "Entropy collapsed to 0.100" in html
    assert "Because it is warm." in html and "user: Why tea?" in html and "-1.250" in html and "0.750" in html
    assert 'id="chart-kl"' in html and "Generate responses for labeling" in html
    assert 'id="chart-kl-coef"' in html  # the KL coefficient per batch (changes with an adaptive kl_target)
    assert "Gain, reward model alone (SDs)" in html and "1.375" in html
    data = json.loads(html.split('id="run-data" type="application/json">')[1].split("</script>")[0])
    assert data["series"]["ppo/kl"] == [[1, 0.5]]
    assert {"id": "chart-kl", "title": "KL to the reference (nats)", "names": ["ppo/kl", "grpo/kl", "rloo/kl"]} in data[
        "extra_charts"
    ]


def test_ppo_run_page_shows_what_rl_cost_the_second_opinion_and_best_of_n(world, client, tmp_path):
    out = tmp_path / "ppo"
    out.mkdir()
    samples = [{"prompt": "Why <b>tea</b>?", "before": "No.", "before_reward": -1.0, "after": "<script>x</script>",
                "after_reward": 0.5, "before_second": -0.25, "after_second": 0.125}]  # fmt: skip
    (out / "samples.json").write_text(json.dumps(samples))
    metrics = {"ppo/distinct2_before": 0.8, "ppo/distinct2_after": 0.6, "ppo/distinct2_ratio": 0.75,
               "ppo/perplexity_before": 3.0, "ppo/perplexity_after": 4.5, "ppo/perplexity_ratio": 1.5,
               "ppo/eval_second_gain_std": 0.4, "ppo/best_of_4_reward_gain_std": 0.9, "warnings": []}  # fmt: skip
    run = make_run(world.project, kind="ppo", status="succeeded", output_dir=str(out), metrics=metrics)
    client.force_login(world.manager)

    html = client.get(f"/runs/{run.pk}/").content.decode()
    costs = html.split('id="ppo-costs"')[1].split("</table>")[0]
    assert "distinct-2" in costs and "0.750" in costs and "Perplexity under the reference" in costs and "1.500" in costs
    assert "Gain, second reward model (SDs)" in html and "0.400" in html
    assert "Best-of-4 from the reference (SDs)" in html and "0.900" in html
    assert "-0.250 → 0.125" in html  # the second reward model's scores of the same two samples
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;tea" in html


def test_ppo_run_page_lists_each_ensemble_members_gain_after_the_combined_rewards(world, client):
    metrics = {"ppo/eval_score_gain_std": 0.9, "ppo/eval_member0_gain_std": 0.81,
               "ppo/eval_member1_gain_std": 0.69, "ppo/eval_second_gain_std": 0.4, "warnings": []}  # fmt: skip
    run = make_run(world.project, kind="ppo", status="succeeded", output_dir="", metrics=metrics)
    client.force_login(world.manager)

    html = client.get(f"/runs/{run.pk}/").content.decode()
    order = [html.index(label) for label in ("Gain, reward model alone", "Gain, ensemble member 0 (SDs)",
                                             "Gain, ensemble member 1 (SDs)", "Gain, second reward model")]  # fmt: skip
    assert order == sorted(order) and "0.810" in html and "0.690" in html
    assert 'id="chart-hacking"' in html and 'id="chart-length"' in html


def test_a_running_ppo_run_shows_the_monitors_live_samples(world, client, tmp_path):
    out = tmp_path / "ppo"
    out.mkdir()
    live = [{"prompt": "Why tea?", "before": "Old answer.", "before_reward": 0.1, "after": "New answer.",
             "after_reward": 0.3, "step": 4}]  # fmt: skip
    (out / "samples_live.json").write_text(json.dumps(live))
    run = make_run(world.project, kind="ppo", status="running", output_dir=str(out))
    client.force_login(world.manager)

    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="ppo-live"' in html and "at step 4" in html and "New answer." in html and "Old answer." in html


def test_a_running_ppo_run_shows_warnings_from_its_log(world, client):
    log = "2025-01-01 00:00:00 step 4 WARNING: KL to the reference reached 12.00 nats per response at step 4"
    run = make_run(world.project, kind="ppo", status="running", log_tail=log)
    client.force_login(world.manager)
    assert "KL to the reference reached 12.00" in client.get(f"/runs/{run.pk}/").content.decode()


def test_generate_button_queues_a_generation_job_for_a_finished_policy_run(world, client):
    run = make_run(world.project, kind="sft", status="succeeded", output_dir="/tmp/sft")
    client.force_login(world.manager)
    form = {"k": 3, "max_new_tokens": 16, "scope": "all", "include_original": "on"}
    response = client.post(reverse("rlhf:run-generate", args=[run.pk]), form)
    run.refresh_from_db()
    assert response.status_code == 302 and run.generation["status"] == "queued"
    assert run.generation["options"] == {"k": 3, "max_new_tokens": 16, "scope": "all", "include_original": True}
    refused = client.post(reverse("rlhf:run-generate", args=[world.reward.pk]), form)
    world.reward.refresh_from_db()
    assert refused.status_code == 302 and world.reward.generation == {}


# --- the real worker --------------------------------------------------------------------------------------------------

SLUG = "ppo-demo"
PPO_FLAGS = ["--total-episodes", "16", "--per-device-train-batch-size", "8", "--num-mini-batches", "2",
             "--num-ppo-epochs", "2", "--response-length", "8", "--learning-rate", "1e-3", "--num-eval-prompts", "2",
             "--eval-samples-per-prompt", "1", "--test-ratio", "0.2"]  # fmt: skip
REGISTER = """
from rlhf.models import TrainingRun
for name, path in (("gpt2 rm", {reward!r}), ("bert rm", {bert!r})):
    TrainingRun.objects.create(name=name, kind="reward_model", status="succeeded", output_dir=path,
                               config={{"base_model": {policy!r}}})
"""
SNEAKY = """
from rlhf.models import TrainingRun
from rlhf.services.runs import training_run_enqueue
ok = TrainingRun.objects.get(name="queued ppo")
# Its inputs are still to be written by the worker, like every queued run's (export "pending"), into its own folder.
run = TrainingRun.objects.create(name="sneaky", kind="ppo", project=ok.project, export=dict(ok.export),
                                 data_dir=ok.data_dir + "-sneaky", run_dir=ok.run_dir + "-sneaky",
                                 config=dict(ok.config, reward_model={bert!r},
                                             output_dir=ok.config["output_dir"] + "-sneaky"))
training_run_enqueue(run=run)
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory, tiny_models):
    tmp = tmp_path_factory.mktemp("ppo-worker")
    platform = Platform(tmp)
    platform.manage("migrate", "--noinput", "-v0")
    pairs = write_jsonl(tmp / "pairs.jsonl", [dict(row, prompt=f"{row['prompt']}"[:200]) for row in _pair_rows()])
    platform.manage("import_prompts", str(pairs), "--project", SLUG, "--kind", "pairwise")
    platform.manage("shell", "-c", REGISTER.format(reward=str(tiny_models["reward"]), bert=str(tiny_models["bert"]),
                                                   policy=str(tiny_models["policy"])))  # fmt: skip
    platform.foreground = platform.manage("run_ppo", "--project", SLUG, "--reward-run", "1", "--foreground",
                                          "--name", "foreground ppo", *PPO_FLAGS)  # fmt: skip
    queued = platform.manage("run_ppo", "--project", SLUG, "--reward-run", "1", "--name", "queued ppo", *PPO_FLAGS)
    platform.runs["ppo"] = int(queued.stdout.split("Run ", 1)[1].split()[0])
    platform.manage("shell", "-c", SNEAKY.format(bert=str(tiny_models["bert"])))
    platform.runs["sneaky"] = platform.query("SELECT id FROM rlhf_trainingrun WHERE name = 'sneaky'")[0][0]
    platform.start_worker()
    yield platform
    platform.stop_worker()


def _pair_rows() -> list[dict]:
    rows = []
    for i in range(20):
        topic = ["tea", "bread", "bikes", "rain", "maps"][i % 5]
        rows.append({"prompt": f"Can you tell me something useful about {topic}? ({i})",
                     "chosen": f"Sure! Here is a clear explanation about {topic}, with an example.",
                     "rejected": f"No. I do not want to talk about {topic}."})  # fmt: skip
    return rows


@pytest.mark.slow
def test_run_ppo_command_trains_in_the_foreground(platform, tiny_models):
    row = platform.run(3)
    assert row["status"] == "succeeded" and row["kind"] == "ppo", row["error"]
    assert "Run 3 succeeded" in platform.foreground.stdout and "held-out reward" in platform.foreground.stdout
    assert platform.query("SELECT COUNT(*) FROM rlhf_trainingrun WHERE kind = 'ppo'")[0][0] == 3  # 3, queued, sneaky


@pytest.mark.slow
def test_ppo_run_through_the_worker_records_ppo_metrics_and_changes_the_policy(platform, tiny_models):
    run_id = platform.runs["ppo"]
    row, seen = platform.wait(run_id, lambda r: r["status"] not in ("queued", "running"), "finished")

    assert row["status"] == "succeeded", row["error"]
    assert "running" in seen and row["stage"] == "done" and row["step"] == row["total_steps"] == 2
    names = {name for (name,) in platform.query("SELECT DISTINCT name FROM rlhf_runmetric WHERE run_id = ?", run_id)}
    assert {"ppo/mean_reward", "ppo/kl", "ppo/entropy", "ppo/policy_loss", "ppo/value_loss", "ppo/clipfrac"} <= names
    kl_steps = platform.query("SELECT step FROM rlhf_runmetric WHERE run_id = ? AND name = 'ppo/kl'", run_id)
    assert sorted({step for (step,) in kl_steps}) == [1, 2]  # one per rollout batch (the final figures at step 2)
    metrics = json.loads(row["metrics"])
    assert "history" not in metrics and isinstance(metrics["warnings"], list) and metrics["ppo/steps"] == 2
    out = Path(row["output_dir"])
    assert len(json.loads((out / "samples.json").read_text())) == 2
    before, after = _tensors(tiny_models["policy"]), _tensors(out)
    shared = sorted(set(before) & set(after))
    assert shared and any(not np.array_equal(before[k], after[k]) for k in shared if before[k].shape == after[k].shape)


@pytest.mark.slow
def test_a_ppo_run_with_a_reward_model_on_another_tokenizer_trains_through_the_worker(platform):
    run_id = platform.runs["sneaky"]  # registered behind the service's back, with the BERT reward model
    row, _ = platform.wait(run_id, lambda r: r["status"] not in ("queued", "running"), "finished")

    assert row["status"] == "succeeded", row["error"]
    names = {name for (name,) in platform.query("SELECT DISTINCT name FROM rlhf_runmetric WHERE run_id = ?", run_id)}
    assert {"ppo/mean_reward", "ppo/value_loss"} <= names
