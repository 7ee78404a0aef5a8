"""Helpers for the training-run tests: rankings written straight into the tables, runs in any state, and a
throwaway directory for run artifacts."""

import pytest

from annotation.models import Ranking, RankingEntry
from rlhf.models import TrainingRun


@pytest.fixture(autouse=True)
def runs_dir(settings, tmp_path):
    settings.RLHF_RUNS_DIR = str(tmp_path / "runs")
    return tmp_path / "runs"


def rank(prompt, labeler, ranks: list[int], guideline_version: int = 1) -> Ranking:
    """A current ranking of the prompt's responses (in index order) by this labeler."""
    responses = list(prompt.responses.order_by("index"))
    ranking = Ranking.objects.create(
        project=prompt.project, prompt=prompt, labeler=labeler, num_responses=len(responses),
        shown_order=[r.id for r in responses], guideline_version=guideline_version,
    )  # fmt: skip
    for position, (response, value) in enumerate(zip(responses, ranks, strict=True)):
        RankingEntry.objects.create(
            ranking=ranking, response=response, rank=value, shown_position=position, num_responses=len(responses)
        )
    prompt.ranking_count += 1
    prompt.save(update_fields=["ranking_count"])
    return ranking


def make_run(project=None, **fields) -> TrainingRun:
    defaults = {"name": "test run", "config": {"base_model": "tiny", "max_steps": 3}, "status": "queued"}
    return TrainingRun.objects.create(project=project, **(defaults | fields))
