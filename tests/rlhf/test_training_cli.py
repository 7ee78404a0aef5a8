"""What the training commands share (rlhf/management/commands/_training_cli.py), as train_reward_model uses it: its
config flags and their aliases, the queued and the foreground output, its errors; and the form both new-run pages
include (templates/rlhf/_new_run_form.html)."""

import contextlib
from io import StringIO

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from rlhf.management.commands._training_cli import config_from, policy_bar_metric, reward_bar_metric
from rlhf.models import TrainingRun
from rlhf.services import worker
from tests.factories import ProjectFactory, PromptFactory, labeler, manager
from tests.rlhf.conftest import rank


@pytest.fixture
def project(db):
    project = ProjectFactory(slug="alpha")
    labelers = [labeler(project) for _ in range(2)]
    for _ in range(6):
        prompt = PromptFactory(project=project, responses=3, category="qa")
        rank(prompt, labelers[0], [1, 2, 3])
        rank(prompt, labelers[1], [1, 3, 2])
    return project


def _manage(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _parser(name: str):
    return load_command_class("rlhf", name).create_parser("manage.py", name)


def _config_flags(*flags: str) -> dict:
    return config_from(vars(_parser("train_reward_model").parse_args(["--project", "alpha", *flags])))


def test_train_reward_model_aliases_set_the_same_config_fields_as_the_long_flags():
    aliases = _config_flags("--epochs", "2", "--batch-size", "4", "--lora", "--no-margin")
    long = _config_flags(
        "--num-train-epochs", "2", "--per-device-train-batch-size", "4", "--use-lora", "--no-use-margin"
    )

    assert aliases == long == {"num_train_epochs": 2.0, "per_device_train_batch_size": 4, "use_lora": True,
                               "use_margin": False}  # fmt: skip
    assert _config_flags() == {}  # unset flags keep the dataclass defaults


def test_train_reward_model_help_groups_the_flags_and_leaves_out_the_managed_fields():
    text = _parser("train_reward_model").format_help()

    assert "examples:" in text and "export (the snapshot the run trains on):" in text
    assert "training config (rlhf.training.config.RewardModelConfig):" in text
    assert "--use-lora, --no-use-lora, --lora, --no-lora" in text and ", --epochs CFG_NUM_TRAIN_EPOCHS" in text
    assert "--train-file" not in text and "--output-dir" not in text


def test_train_reward_model_queues_a_run_and_prints_its_page(project):
    creator = manager(project)

    out, _ = _manage("train_reward_model", "--project", "alpha", "--epochs", "2", "--test-ratio", "0.3",
                     "--user", creator.username, "--site-url", "http://example.org/")  # fmt: skip

    run = TrainingRun.objects.get()
    assert out.splitlines() == [
        f"Run {run.pk} queued: http://example.org/runs/{run.pk}/",
        "A worker writes its inputs and trains it: python manage.py rlhf_worker",
    ]
    assert run.status == "queued" and run.created_by == creator and run.export["pending"] is True
    assert run.config["num_train_epochs"] == 2.0 and run.export["options"]["test_ratio"] == 0.3


def test_train_reward_model_refuses_an_unknown_project_user_or_bad_config_and_queues_nothing(project):
    with pytest.raises(CommandError, match="No project with slug 'nope'"):
        _manage("train_reward_model", "--project", "nope")
    with pytest.raises(CommandError, match="No user 'ghost'"):
        _manage("train_reward_model", "--project", "alpha", "--user", "ghost")
    with pytest.raises(CommandError, match="Invalid config: report_to must be one of"):
        _manage("train_reward_model", "--project", "alpha", "--report-to", "carrier-pigeon")

    assert not TrainingRun.objects.exists()


def test_reward_runs_show_every_loss_and_accuracy_on_the_bar_policy_runs_a_fixed_few():
    assert reward_bar_metric("eval/accuracy", 1) and reward_bar_metric("train/eval_loss", 0.5)
    assert not reward_bar_metric("train/learning_rate", 0.1)
    assert policy_bar_metric("ppo/kl", 0.1) and policy_bar_metric("grpo/mean_reward", -0.2)
    assert not policy_bar_metric("ppo/kl", 1) and not policy_bar_metric("dpo/eval_loss", 0.5)


@pytest.mark.slow
def test_train_reward_model_in_the_foreground_shows_the_loss_on_its_bar_and_reports_the_model(project, monkeypatch):
    monkeypatch.setattr(worker, "_heartbeat", lambda run_id: contextlib.nullcontext())

    flags = ["--base-model", "tiny", "--max-steps", "2", "--max-length", "64", "--logging-steps", "1"]
    out, err = _manage("train_reward_model", "--project", "alpha", "--foreground", *flags)

    run = TrainingRun.objects.get()
    assert run.status == "succeeded"
    pairs = f"{run.export['train_pairs']} training pairs, {run.export['test_pairs']} held out"
    lines = out.splitlines()
    assert lines[0] == f"Run {run.pk}, training here: http://127.0.0.1:8000/runs/{run.pk}/"
    assert lines[1] == f"  trained on {pairs}" and run.export["train_pairs"] > 0
    assert lines[2] == f"Run {run.pk} succeeded. Model: {run.output_dir}"
    assert lines[3].startswith("  held-out accuracy: ") and len(lines) == 4
    assert "training: 2 steps" in err and "loss=" in err


@pytest.mark.parametrize("page", ["new", "new-policy"])
def test_both_new_run_pages_render_the_shared_form_and_mark_a_bad_field(project, client, page):
    client.force_login(manager(project))
    url = f"/runs/project/alpha/{page}/"

    body = client.get(url).content.decode()
    assert '<form method="post" class="card run-form" novalidate>' in body and "csrfmiddlewaretoken" in body
    assert "Start run</button>" in body and '<a class="button" href="/runs/project/alpha/">Back</a>' in body
    assert '<label for="id_seed">Seed</label>' in body and "has-error" not in body

    body = client.post(url, {"seed": "soon"}).content.decode()
    assert '<div class="form-row has-error">' in body
    assert '<span class="field-error">Enter a whole number.</span>' in body
    assert not TrainingRun.objects.exists()
