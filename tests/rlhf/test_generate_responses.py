"""Closing the loop: a policy's sampled responses become a new labeling round (model recorded, hidden from labelers),
from the service, the command, the background job and the default chain run end to end (tiny models, CPU, offline)."""

import contextlib
import json
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Prompt, Response
from annotation.services.assignments import assignment_next
from rlhf.models import TrainingRun
from rlhf.services import training_run_execute, worker
from rlhf.services.loop import generation_execute, responses_generate
from rlhf.services.ppo import policy_run_create
from tests.annotation.api._helpers import api_client
from tests.factories import ProjectFactory, PromptFactory, labeler, manager
from tests.rlhf.conftest import make_run, rank
from tests.rlhf.training.causal_models import demo_rows, save_tiny_policy_and_reward_model


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    return save_tiny_policy_and_reward_model(tmp_path_factory.mktemp("policy"), demo_rows(16))[0]


@pytest.fixture
def world(db, policy_dir):
    w = type("World", (), {})()
    w.project = ProjectFactory(slug="alpha", overlap=1, responses_per_task=9)
    w.manager, w.labeler = manager(w.project), labeler(w.project)
    w.prompts = [PromptFactory(project=w.project, responses=2, text=f"Tell me about tea, please ({i}).")
                 for i in range(6)]  # fmt: skip
    w.gold = PromptFactory(project=w.project, is_gold=True)
    w.run = make_run(w.project, kind="ppo", name="ppo v2", status="succeeded", output_dir=str(policy_dir))
    return w


def test_generated_responses_land_in_a_new_round_with_their_model_recorded(world):
    result = responses_generate(project=world.project, model=world.run, k=3, scope="all", max_new_tokens=6)

    new = list(Prompt.objects.filter(project=world.project, round=2).order_by("id"))
    assert (result.round, result.prompts, result.generated, result.copied) == (2, 6, 18, 12)
    assert [p.metadata["source_prompt_id"] for p in new] == [p.pk for p in world.prompts]  # the gold one left out
    assert [p.text for p in new] == [p.text for p in world.prompts] and not any(p.is_gold for p in new)
    for prompt, source in zip(new, world.prompts, strict=True):
        responses = list(prompt.responses.order_by("index"))
        assert [r.model_name for r in responses] == [f"run-{world.run.pk}:ppo v2"] * 3 + ["model-0", "model-1"]
        assert [r.text for r in responses[3:]] == [r.text for r in source.responses.order_by("index")]
        assert all(r.metadata == {"generated": True, "run_id": world.run.pk, "sample": i}
                   for i, r in enumerate(responses[:3]))  # fmt: skip
    assert Prompt.objects.filter(project=world.project, round=1).count() == 7  # the originals are untouched


def test_labelers_get_the_new_round_without_ever_seeing_model_names(world):
    for prompt in world.prompts:  # the first round is done
        rank(prompt, world.labeler, [1, 2])
        Prompt.objects.filter(pk=prompt.pk).update(is_complete=True)
    responses_generate(project=world.project, model=world.run, k=2, scope="all", max_new_tokens=6)

    assignment = assignment_next(project=world.project, labeler=world.labeler)
    assert assignment is not None and assignment.prompt.round == 2
    assert sorted(assignment.shown_order) == sorted(assignment.prompt.responses.values_list("id", flat=True))
    Prompt.objects.filter(project=world.project, is_gold=True).update(is_complete=True)
    body = api_client(world.labeler).post("/api/projects/alpha/tasks/next/", format="json").content.decode()
    assert f"run-{world.run.pk}" not in body and "ppo v2" not in body and "model-0" not in body
    assert json.loads(body)["assignment_id"] == assignment.pk


def test_generation_loads_the_policy_once_for_every_chunk_with_a_seed_per_chunk(world, policy_dir, monkeypatch):
    from rlhf.services import loop
    from rlhf.training import causal_defaults
    from rlhf.training.generation import generate_responses

    loads = []
    real_load = causal_defaults.load_causal_lm

    def counting_load(name_or_path: str):
        loads.append(name_or_path)
        return real_load(name_or_path)

    monkeypatch.setattr(causal_defaults, "load_causal_lm", counting_load)
    monkeypatch.setattr(loop, "CHUNK_PROMPTS", 2)  # 6 prompts: 3 chunks
    seen, options = [], {"k": 2, "max_new_tokens": 5, "temperature": 1.0, "seed": 7}

    result = responses_generate(project=world.project, model=str(policy_dir), scope="all", include_original=False,
                                progress=lambda *p: seen.append(p), **options)  # fmt: skip

    assert loads == [str(policy_dir)] and seen == [(2, 6), (4, 6), (6, 6)]
    new = Prompt.objects.filter(project=world.project, round=result.round).order_by("id")
    stored = [list(p.responses.order_by("index").values_list("text", flat=True)) for p in new]
    # the same samples as loading the model afresh for each chunk with that chunk's seed (seed + start)
    chunks = [[p.text for p in world.prompts[start : start + 2]] for start in (0, 2, 4)]
    expected = [group for start, chunk in zip((0, 2, 4), chunks, strict=True)
                for group in generate_responses(str(policy_dir), chunk, **{**options, "seed": 7 + start})]  # fmt: skip
    assert stored == expected and len(loads) == 4


def test_generation_from_a_path_records_the_path_and_the_train_side_only(world, policy_dir):
    result = responses_generate(project=world.project, model=str(policy_dir), k=2, max_new_tokens=4,
                                include_original=False)  # fmt: skip
    assert result.model_name == str(policy_dir) and result.copied == 0
    assert set(Response.objects.filter(prompt__round=2).values_list("model_name", flat=True)) == {str(policy_dir)}
    assert 0 < result.prompts <= 6  # the held-out side of the split gets no new responses


def test_generation_refuses_bad_requests_and_writes_nothing(world):
    with pytest.raises(ValidationError, match="k must be between 2 and 10"):
        responses_generate(project=world.project, model=world.run, k=1, include_original=False)
    with pytest.raises(ValidationError, match="k must be between 1 and 8"):
        responses_generate(project=world.project, model=world.run, k=9)
    reward = make_run(world.project, kind="reward_model", status="succeeded", output_dir="/tmp/rm")
    with pytest.raises(ValidationError, match="not a policy"):
        responses_generate(project=world.project, model=reward, k=2)
    responses_generate(project=world.project, model=world.run, k=1, scope="all", max_new_tokens=2, round=5)
    with pytest.raises(ValidationError, match="Round 5 already has prompts"):
        responses_generate(project=world.project, model=world.run, k=1, scope="all", max_new_tokens=2, round=5)
    assert set(Prompt.objects.values_list("round", flat=True)) == {1, 5}


def test_the_generation_job_keeps_its_state_on_the_run(world):
    options = {"k": 2, "scope": "all", "max_new_tokens": 4}
    summary = generation_execute(run_id=world.run.pk, project_id=world.project.pk, options=options)
    world.run.refresh_from_db()
    assert summary["round"] == 2 and world.run.generation["status"] == "succeeded"
    assert (world.run.generation["done"], world.run.generation["total"], world.run.generation["generated"]) == (
        6,
        6,
        12,
    )

    with pytest.raises(ValidationError):
        generation_execute(run_id=world.run.pk, project_id=world.project.pk, options={**options, "k": 50})
    world.run.refresh_from_db()
    assert world.run.generation["status"] == "failed" and "k must be between" in world.run.generation["error"]


def test_generate_responses_command_adds_a_round_and_reports_it(world):
    out = StringIO()
    call_command("generate_responses", "--model", f"run:{world.run.pk}", "--project", "alpha", "--k", "2",
                 "--max-new-tokens", "4", "--prompts", "all", stdout=out, stderr=StringIO())  # fmt: skip
    assert f"Round 2 of 'alpha': 6 prompts, 12 new responses from run-{world.run.pk}:ppo v2" in out.getvalue()
    assert "12 earlier responses alongside" in out.getvalue()
    with pytest.raises(CommandError, match="has not succeeded"):
        call_command("generate_responses", "--model", str(make_run(world.project, kind="sft").pk), "--project",
                     "alpha", stdout=StringIO(), stderr=StringIO())  # fmt: skip


def test_commands_have_help_with_examples():
    from django.core.management import load_command_class

    for name in ("run_ppo", "generate_responses", "run_chain"):
        parser = load_command_class("rlhf", name).create_parser("manage.py", name)
        text = parser.format_help()
        assert "examples:" in text and f"manage.py {name}" in text, name
    ppo_help = load_command_class("rlhf", "run_ppo").create_parser("manage.py", "run_ppo").format_help()
    assert "--kl-coef" in ppo_help and "--reward-run" in ppo_help and "--policy" in ppo_help


@pytest.mark.slow
def test_default_chain_run_trains_end_to_end_and_its_policy_feeds_a_new_round(db, monkeypatch):
    """SFT -> reward model -> PPO through the worker's function (in process), then generation from its policy."""
    monkeypatch.setattr(worker, "_heartbeat", lambda run_id: contextlib.nullcontext())
    project = ProjectFactory(slug="chain")
    labelers = [labeler(project) for _ in range(2)]
    for i, row in enumerate(demo_rows(16)):
        text = row["prompt"] if isinstance(row["prompt"], str) else row["prompt"][0]["content"]
        prompt = PromptFactory(project=project, text=text, responses=[row["chosen"], row["rejected"], "Maybe."])
        rank(prompt, labelers[i % 2], [1, 3, 2])
    config = {"base_model": "tiny", "n_layer": 1, "n_embd": 32, "n_head": 2, "vocab_size": 300, "max_length": 64,
              "sft_max_steps": 3, "rm_max_steps": 3, "ppo_total_episodes": 8, "ppo_batch_size": 8,
              "ppo_num_ppo_epochs": 1, "ppo_response_length": 6, "ppo_num_eval_prompts": 2,
              "ppo_eval_samples_per_prompt": 1}  # fmt: skip
    run = policy_run_create(
        project=project, kind="chain", config=config, export_options={"test_ratio": 0.3}, enqueue=False
    )

    assert training_run_execute(run_id=run.pk) == "succeeded", TrainingRun.objects.get(pk=run.pk).error
    run.refresh_from_db()
    names = set(run.metric_points.values_list("name", flat=True))
    assert {"ppo/kl", "ppo/mean_reward", "chain/stage"} <= names and any(n.startswith("sft/") for n in names)
    assert "eval/accuracy" in run.metrics and "ppo/eval_reward_gain_std" in run.metrics
    assert set(run.metrics["chain/dirs"]) == {"base", "sft", "reward", "ppo"}

    result = responses_generate(project=project, model=run, k=2, scope="all", max_new_tokens=4)
    assert result.prompts == 16 and result.model_name == f"run-{run.pk}:{run.name}"
