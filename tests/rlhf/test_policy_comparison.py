"""Closing the loop with evidence: a blind batch of a new policy's responses against its reference's (tiny models,
CPU, offline), its win rate from the labelers' rankings next to the reward model's prediction, from the service, the
background job, the command, the API, the pages and the demo's simulated labelers."""

import json
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.test import Client

from annotation.demo import DEMO_SLUG, demo_load
from annotation.demo.simulated import SIMULATED_SOURCE, demo_rankings_simulate, likeness_ranks
from annotation.models import Assignment, Membership, Project, Prompt, Response
from annotation.selectors_comparisons import policy_comparisons_get
from annotation.services.rankings import ranking_submit
from rlhf.models import TrainingRun
from rlhf.services.comparison import comparison_execute, policy_comparison_create
from tests.annotation.api._helpers import api_client
from tests.factories import ProjectFactory, PromptFactory, labeler, manager
from tests.rlhf.conftest import make_run, rank
from tests.rlhf.training.causal_models import demo_rows, save_tiny_policy_and_reward_model

OPTIONS = {"k": 2, "limit": 3, "max_new_tokens": 5}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(policy, reference, reward model) dirs: two different tiny GPT-2s and a reward model on their tokenizer."""
    root = tmp_path_factory.mktemp("comparison")
    policy, reward = save_tiny_policy_and_reward_model(root / "new", demo_rows(16))
    reference, _ = save_tiny_policy_and_reward_model(root / "old", demo_rows(16), seed=1)
    return policy, reference, reward


@pytest.fixture
def world(db, models):
    policy, reference, reward = models
    w = type("World", (), {})()
    w.project = ProjectFactory(slug="alpha", overlap=3)
    w.manager = manager(w.project)
    w.labelers = [labeler(w.project) for _ in range(3)]
    w.prompts = [PromptFactory(project=w.project, responses=2, text=f"Tell me about tea, please ({i}).")
                 for i in range(4)]  # fmt: skip
    config = {"policy": str(reference), "reward_model": str(reward)}
    w.run = make_run(w.project, kind="ppo", name="ppo v3", status="succeeded", output_dir=str(policy), config=config)
    w.reference = str(reference)
    return w


def _sides(prompt: Prompt) -> dict[str, list[Response]]:
    responses = list(prompt.responses.order_by("index"))
    return {side: [r for r in responses if r.metadata["side"] == side] for side in ("policy", "reference")}


def _rank_policy_first(prompt: Prompt, labeler_, tie: bool = False, **metadata):
    """A ranking (in index order) with every policy response above every reference one (or all tied)."""
    ranks = [1 if tie or r.metadata["side"] == "policy" else 2 for r in prompt.responses.order_by("index")]
    ranking = rank(prompt, labeler_, ranks)
    if metadata:
        ranking.metadata = metadata
        ranking.save(update_fields=["metadata"])
    return ranking


def test_a_comparison_batch_holds_k_samples_of_each_model_in_a_new_shuffled_round(world, models):
    from rlhf.training.generation import generate_responses

    result = policy_comparison_create(project=world.project, run=world.run, **OPTIONS)

    new = list(Prompt.objects.filter(project=world.project, round=2).order_by("id"))
    assert (result.round, result.prompts, result.responses) == (2, 3, 12) and result.prompt_ids == [p.pk for p in new]
    assert [p.metadata["source_prompt_id"] for p in new] == [p.pk for p in world.prompts[:3]]
    label = f"run-{world.run.pk}:ppo v3"
    assert all(p.metadata["comparison"] == {"run_id": world.run.pk, "policy": label, "reference": world.reference}
               for p in new)  # fmt: skip
    # Each side is that model's own samples: the same prompts, seed and settings, only the model differs.
    texts = [p.text for p in world.prompts[:3]]
    settings = {"k": 2, "max_new_tokens": 5, "temperature": 0.7, "seed": 0}
    expected = {"policy": generate_responses(str(models[0]), texts, **settings),
                "reference": generate_responses(str(models[1]), texts, **settings)}  # fmt: skip
    patterns = set()
    for i, prompt in enumerate(new):
        sides = _sides(prompt)
        for side, responses in sides.items():
            assert [r.text for r in sorted(responses, key=lambda r: r.metadata["sample"])] == expected[side][i]
            assert {r.model_name for r in responses} == {label if side == "policy" else world.reference}
        patterns.add(tuple(r.metadata["side"] for r in prompt.responses.order_by("index")))
    assert len(patterns) > 1  # created in a shuffled order: index (and id) do not give the sides away
    # The reward model's predicted win rate: the share of same-prompt (policy, reference) pairs it scores higher.
    wins = pairs = 0
    for prompt in new:
        sides = _sides(prompt)
        for p in sides["policy"]:
            for r in sides["reference"]:
                a, b = p.metadata["rm_score"], r.metadata["rm_score"]
                wins, pairs = wins + (a > b) + 0.5 * (a == b), pairs + 1
    assert result.rm["win_rate"] == pytest.approx(wins / pairs) and result.rm["pairs"] == pairs == 12
    assert result.rm["low"] <= result.rm["win_rate"] <= result.rm["high"]


def test_labelers_see_the_batch_blind_each_in_their_own_order_and_rank_only_what_they_were_shown(world):
    result = policy_comparison_create(project=world.project, run=world.run, **OPTIONS)
    Prompt.objects.filter(round=1).update(is_complete=True)  # the first round is done
    secrets = [f"run-{world.run.pk}", "ppo v3", world.reference, "rm_score", "model-0"]
    orders = []
    for person in world.labelers:
        client = Client()
        client.force_login(person)
        html = client.get("/projects/alpha/label/").content.decode()
        assignment = Assignment.objects.get(labeler=person)
        assert assignment.prompt_id == result.prompt_ids[0]
        assert not [secret for secret in secrets if secret in html]
        assert all(f'"{rid}"' in html or f"={rid}" in html or str(rid) in html for rid in assignment.shown_order)
        orders.append(assignment.shown_order)
        body = api_client(person).post("/api/projects/alpha/tasks/next/", format="json").content.decode()
        assert json.loads(body)["assignment_id"] == assignment.pk
        assert not [secret for secret in secrets if secret in body]
    assert sorted(orders[0]) == sorted(orders[1]) == sorted(orders[2])
    assert len({tuple(order) for order in orders}) > 1  # shuffled per labeler
    stray = Response.objects.filter(prompt_id=result.prompt_ids[1]).first()
    shown = orders[0]
    with pytest.raises(ValidationError):
        ranking_submit(labeler=world.labelers[0], assignment_id=Assignment.objects.get(labeler=world.labelers[0]).pk,
                       ranks={**{rid: 1 for rid in shown[1:]}, stray.pk: 2})  # fmt: skip


def test_the_win_rate_counts_every_policy_reference_pair_of_each_ranking(world):
    result = policy_comparison_create(project=world.project, run=world.run, **OPTIONS)
    new = list(Prompt.objects.filter(pk__in=result.prompt_ids).order_by("id"))
    for prompt in new:  # two labelers prefer the policy's responses; the third ties everything on the first prompt
        _rank_policy_first(prompt, world.labelers[0])
        _rank_policy_first(prompt, world.labelers[1], source=SIMULATED_SOURCE)
    _rank_policy_first(new[0], world.labelers[2], tie=True)

    [report] = policy_comparisons_get(project=world.project, run_id=world.run.pk)
    human = report["human"]
    assert (report["round"], report["prompts"], report["rankings"], report["simulated_rankings"]) == (2, 3, 7, 3)
    assert (human["pairs"], human["wins"], human["prompts"], human["judgments"]) == (28, 26.0, 3, 7)
    assert human["win_rate"] == pytest.approx(26 / 28) and human["low"] <= human["win_rate"] <= human["high"]
    assert report["rm"]["win_rate"] == pytest.approx(result.rm["win_rate"])
    assert (report["policy"], report["reference"]) == (f"run-{world.run.pk}:ppo v3", world.reference)
    assert report["few_prompts"] is True  # 3 prompts: the interval is flagged as rough
    # a labeler the manager excluded does not count (as in the agreement figures)
    Membership.objects.filter(user=world.labelers[2]).update(excluded=True)
    [report] = policy_comparisons_get(project=world.project, run_id=world.run.pk)
    assert report["human"]["win_rate"] == 1.0 and report["rankings"] == 6
    assert policy_comparisons_get(project=world.project, run_id=world.run.pk + 1) == []


def test_bad_requests_are_refused_and_write_nothing(world):
    before = Prompt.objects.count()
    Project.objects.filter(pk=world.project.pk).update(responses_per_task=4)
    world.project.refresh_from_db()
    with pytest.raises(ValidationError, match="k must be between 1 and 2"):
        policy_comparison_create(project=world.project, run=world.run, k=3)
    with pytest.raises(ValidationError, match="has not succeeded"):
        policy_comparison_create(project=world.project, run=make_run(world.project, kind="ppo"), k=1)
    reward = make_run(world.project, kind="reward_model", status="succeeded", output_dir="/tmp/rm")
    with pytest.raises(ValidationError, match="not a policy"):
        policy_comparison_create(project=world.project, run=reward, k=1)
    empty = ProjectFactory(slug="empty")
    with pytest.raises(ValidationError, match="has no prompts"):
        policy_comparison_create(project=empty, run=world.run, k=1)
    assert Prompt.objects.count() == before


def test_a_run_without_a_reward_model_gets_a_batch_without_a_prediction(world, models):
    dpo = make_run(world.project, kind="dpo", name="dpo", status="succeeded", output_dir=str(models[0]),
                   config={"policy": str(models[1])})  # fmt: skip
    result = policy_comparison_create(project=world.project, run=dpo, k=1, limit=2, max_new_tokens=3)
    assert result.rm is None and result.responses == 4
    assert not Response.objects.filter(prompt_id__in=result.prompt_ids, metadata__has_key="rm_score").exists()
    [report] = policy_comparisons_get(project=world.project, run_id=dpo.pk)
    assert report["rm"] is None and report["human"]["win_rate"] is None


def test_the_comparison_job_keeps_its_state_on_the_run(world):
    summary = comparison_execute(run_id=world.run.pk, project_id=world.project.pk, options=OPTIONS)
    world.run.refresh_from_db()
    state = world.run.comparison
    assert state["status"] == "succeeded" and (state["done"], state["total"]) == (9, 9)  # 3 prompts x 2 models + RM
    assert (state["round"], state["prompts"], summary["rm"]) == (2, 3, state["rm"])
    with pytest.raises(ValidationError):
        comparison_execute(run_id=world.run.pk, project_id=world.project.pk, options={**OPTIONS, "k": 9})
    world.run.refresh_from_db()
    assert world.run.comparison["status"] == "failed" and "k must be between" in world.run.comparison["error"]


def test_compare_policy_command_makes_the_batch_and_prints_the_prediction(world):
    out = StringIO()
    call_command("compare_policy", "--run", str(world.run.pk), "--project", "alpha", "--k", "1", "--limit", "2",
                 "--max-new-tokens", "3", stdout=out, stderr=StringIO())  # fmt: skip
    assert "Round 2 of 'alpha': 2 prompts, 4 responses (1 from the policy and 1 from the reference" in out.getvalue()
    assert "Reward model's predicted win rate of the policy:" in out.getvalue()
    with pytest.raises(CommandError, match="No training run"):
        call_command("compare_policy", "--run", "999", "--project", "alpha", stdout=StringIO(), stderr=StringIO())
    help_text = load_command_class("rlhf", "compare_policy").create_parser("manage.py", "compare_policy").format_help()
    assert "examples:" in help_text and "manage.py compare_policy --run" in help_text


def test_the_api_queues_a_batch_and_reports_its_win_rate(world, django_capture_on_commit_callbacks):
    client = api_client(world.manager)
    url = f"/api/runs/{world.run.pk}/comparisons/"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url, {"k": 2, "limit": 3, "max_new_tokens": 5}, format="json")
    assert response.status_code == 202, response.content
    assert (response.json()["comparison"]["status"], len(callbacks)) == ("queued", 1)
    assert TrainingRun.objects.get(pk=world.run.pk).comparison["options"]["limit"] == 3
    for body in ({"k": 9}, {"k": 2, "seed": -1}, {"k": 2, "typo": 1}):
        refused = client.post(url, body, format="json")
        assert refused.status_code == 400 and refused.json()["errors"]
    assert TrainingRun.objects.get(pk=world.run.pk).comparison["options"]["limit"] == 3  # unchanged
    assert api_client(world.labelers[0]).get(url).status_code == 404

    result = policy_comparison_create(project=world.project, run=world.run, **OPTIONS)
    for prompt in Prompt.objects.filter(pk__in=result.prompt_ids):
        _rank_policy_first(prompt, world.labelers[0])
    [body] = client.get(url).json()
    assert (body["round"], body["rankings"], body["human"]["win_rate"]) == (2, 3, 1.0)
    assert body["rm"]["win_rate"] == pytest.approx(result.rm["win_rate"])
    board = client.get("/api/projects/alpha/agreement/leaderboard/").json()
    assert board["comparisons"][0]["human"]["win_rate"] == 1.0


def test_the_run_page_and_the_agreement_page_show_the_win_rate_next_to_the_prediction(world):
    result = policy_comparison_create(project=world.project, run=world.run, **OPTIONS)
    for prompt in Prompt.objects.filter(pk__in=result.prompt_ids):
        _rank_policy_first(prompt, world.labelers[0], source=SIMULATED_SOURCE)
    client = Client()
    client.force_login(world.manager)
    page = client.get(f"/runs/{world.run.pk}/").content.decode()
    assert 'id="comparison-form"' in page and f'action="/runs/{world.run.pk}/comparison/"' in page
    assert "<strong>100%</strong>" in page and "3 by simulated labelers" in page
    assert "few prompts: a rough interval" in page
    rm = round(100 * result.rm["win_rate"])
    assert f"data-rm-win-rate>{rm}%" in page
    agreement = client.get("/projects/alpha/agreement/").content.decode()
    assert 'id="comparisons-table"' in agreement and "<strong>100%</strong>" in agreement
    # the page's form queues the job (and a bad k is an error message, nothing queued)
    response = client.post(f"/runs/{world.run.pk}/comparison/", {"k": 9, "limit": 2, "max_new_tokens": 4,
                                                                  "scope": "all"}, follow=True)  # fmt: skip
    assert TrainingRun.objects.get(pk=world.run.pk).comparison == {} and response.status_code == 200
    client.post(f"/runs/{world.run.pk}/comparison/", {"k": 1, "limit": 2, "max_new_tokens": 4, "scope": "all"})
    assert TrainingRun.objects.get(pk=world.run.pk).comparison["status"] == "queued"
    labeler_client = Client()
    labeler_client.force_login(world.labelers[0])
    assert labeler_client.get(f"/runs/{world.run.pk}/").status_code == 404


def test_likeness_ranks_prefer_the_response_closest_to_the_best_answer():
    best = ["Boil water, then steep the tea for three minutes."]
    texts = ["Steep the tea for three minutes in boiled water.", "Bikes have two wheels.", "Bikes have two wheels."]
    assert likeness_ranks(texts, best) == [1, 2, 2]


def test_the_demo_simulated_labelers_rank_a_comparison_batch_end_to_end(db, models):
    demo = demo_load(password="demo-pass", with_rankings=True)
    run = make_run(demo.project, kind="ppo", name="demo ppo", status="succeeded", output_dir=str(models[0]),
                   config={"policy": str(models[1]), "reward_model": str(models[2])})  # fmt: skip
    result = policy_comparison_create(project=demo.project, run=run, k=2, limit=2, max_new_tokens=8)
    assert demo_rankings_simulate(project=demo.project) == 6  # three simulated labelers x two prompts

    [report] = policy_comparisons_get(project=demo.project, run_id=run.pk)
    assert (report["prompts"], report["rankings"], report["simulated_rankings"]) == (2, 6, 6)
    assert report["human"]["pairs"] == 24 and 0.0 <= report["human"]["win_rate"] <= 1.0
    assert report["rm"]["win_rate"] == pytest.approx(result.rm["win_rate"])
    assert demo.project.slug == DEMO_SLUG


def test_each_kind_is_compared_with_the_policy_it_started_from(db, tmp_path):
    from dataclasses import astuple

    from rlhf.services.comparison import comparison_models as resolved

    def comparison_models(run) -> tuple:
        return astuple(resolved(run))

    project = ProjectFactory(slug="kinds")
    out = tmp_path / "chain" / "model"
    chain = make_run(project, kind="chain", name="chain", status="succeeded", output_dir=str(out),
                     metrics={"chain/dirs": {"sft": str(out / "sft")}})  # fmt: skip
    assert comparison_models(chain) == (
        str(out / "ppo"), f"run-{chain.pk}:chain", str(out / "sft"), f"run-{chain.pk}:chain (sft stage)",
        str(out / "reward"),
    )  # fmt: skip
    sft = make_run(project, kind="sft", name="sft", status="succeeded", output_dir="/runs/2/model",
                   config={"base_model": "default"})  # fmt: skip
    assert comparison_models(sft)[2:] == ("default", "default", None)  # SmolLM2 as shipped; no reward model
    ppo = make_run(project, kind="ppo", name="ppo", status="succeeded", output_dir="/runs/3/model",
                   config={"policy": "/runs/2/model", "reward_model": "/runs/1/model"},
                   export={"policy_run": sft.pk})  # fmt: skip
    assert comparison_models(ppo)[2:] == ("/runs/2/model", f"run-{sft.pk}:sft", "/runs/1/model")
    bare = make_run(project, kind="ppo", name="ppo", status="succeeded", output_dir="/runs/4/model", config={})
    assert comparison_models(bare)[2] == "default"  # a PPO run without a policy started from the default
