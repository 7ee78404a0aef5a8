"""Issue #12, item 3: the models a manager may name for a run. Never another project's run directory, never a raw
local path outside this project's runs unless an admin allowed its directory; model ids, 'run:ID' and the built-in
names work; admins are not limited."""

import pytest

from rlhf.models import TrainingRun
from tests.annotation.api._helpers import api_client
from tests.factories import AdminFactory, ProjectFactory, PromptFactory, labeler, manager
from tests.rlhf.conftest import make_run, rank


@pytest.fixture
def world(db, runs_dir):
    project, other = ProjectFactory(slug="alpha"), ProjectFactory(slug="beta")
    a, b = labeler(project), labeler(project)
    for _ in range(4):
        prompt = PromptFactory(project=project, responses=3)
        rank(prompt, a, [1, 2, 3])
        rank(prompt, b, [2, 1, 3])
    boss = manager(project)
    manager(other, username=boss.username + "-x")
    theirs = make_run(other, status="succeeded", kind="sft")
    ours = make_run(project, status="succeeded", kind="sft")
    for run in (theirs, ours):
        (runs_dir / str(run.pk) / "model").mkdir(parents=True)
        TrainingRun.objects.filter(pk=run.pk).update(output_dir=str(runs_dir / str(run.pk) / "model"))
    return project, boss, theirs, ours, runs_dir


def _create(user, **body):
    return api_client(user).post("/api/runs/", {"project": "alpha", **body}, format="json")


@pytest.mark.parametrize("where", ["theirs", "runs-root", "etc", "tmp", "relative-escape"])
def test_manager_cannot_name_a_raw_path_as_base_model(world, tmp_path, where):
    project, boss, theirs, _, runs_dir = world
    path = {
        "theirs": str(runs_dir / str(theirs.pk) / "model"),
        "runs-root": str(runs_dir),
        "etc": "/etc",
        "tmp": str(tmp_path),
        "relative-escape": "../../../../../../etc",
    }[where]
    before = TrainingRun.objects.count()
    response = _create(boss, config={"base_model": path, "max_steps": 1})
    assert response.status_code == 400, response.content
    assert "config.base_model" in response.json()["errors"][0]
    assert TrainingRun.objects.count() == before


def test_manager_cannot_name_another_projects_run_dir_as_ppo_policy(world):
    project, boss, theirs, _, runs_dir = world
    response = _create(boss, kind="ppo", policy=str(runs_dir / str(theirs.pk) / "model"), reward_run=1)
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("policy:")


@pytest.mark.parametrize("base_model", ["tiny", "default", "sentence-transformers/all-MiniLM-L6-v2", "gpt2"])
def test_builtin_names_and_model_ids_are_accepted(world, base_model):
    response = _create(world[1], config={"base_model": base_model, "max_steps": 1})
    assert response.status_code == 201, response.content


def test_a_path_inside_the_same_projects_run_is_accepted(world):
    project, boss, _, ours, runs_dir = world
    response = _create(boss, config={"base_model": str(runs_dir / str(ours.pk) / "model"), "max_steps": 1})
    assert response.status_code == 201, response.content


def test_a_directory_an_admin_allowed_is_accepted(world, tmp_path, settings):
    models = tmp_path / "models" / "mine"
    models.mkdir(parents=True)
    settings.RLHF_ALLOWED_MODEL_DIRS = [str(tmp_path / "models")]
    response = _create(world[1], config={"base_model": str(models), "max_steps": 1})
    assert response.status_code == 201, response.content


def test_admins_may_name_any_path(world, tmp_path):
    response = _create(AdminFactory(), config={"base_model": str(tmp_path), "max_steps": 1})
    assert response.status_code == 201, response.content
