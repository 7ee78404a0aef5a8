"""A small world for the API tests: project `alpha` with a labeler, a manager and two prompts; project `beta` with
its own labeler (an outsider to alpha); an admin; and a user who belongs to nothing yet."""

from types import SimpleNamespace

import pytest

from annotation.models import Response
from annotation.services.assignments import assignment_next
from annotation.services.rankings import ranking_submit
from tests.annotation.api._helpers import SECRET_MODELS
from tests.factories import AdminFactory, ProjectFactory, PromptFactory, UserFactory, labeler, manager


@pytest.fixture
def world(db):
    project = ProjectFactory(slug="alpha", overlap=3)
    prompts = [PromptFactory(project=project) for _ in range(3)]
    for prompt in prompts:
        for response, name in zip(prompt.responses.order_by("index"), SECRET_MODELS, strict=True):
            Response.objects.filter(pk=response.pk).update(model_name=name)
    other = ProjectFactory(slug="beta")
    PromptFactory(project=other)
    return SimpleNamespace(
        project=project,
        prompts=prompts,
        other=other,
        labeler=labeler(project, username="lea"),
        manager=manager(project, username="max"),
        outsider=labeler(other, username="otto"),
        admin=AdminFactory(username="root"),
        newcomer=UserFactory(username="nina"),
    )


@pytest.fixture
def labeled(world):
    """The labeler has submitted one ranking (`ranking`) and holds a second, active task (`assignment`)."""
    first = assignment_next(project=world.project, labeler=world.labeler)
    ranks = {rid: i + 1 for i, rid in enumerate(first.shown_order)}
    world.ranking, _ = ranking_submit(labeler=world.labeler, assignment_id=first.id, ranks=ranks)
    world.assignment = assignment_next(project=world.project, labeler=world.labeler)
    return world
