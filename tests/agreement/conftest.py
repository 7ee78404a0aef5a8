"""Fixtures for the agreement tests, which are pure numpy and run without Django (``-p no:django``)."""

import numpy as np
import pytest

from annotation.agreement import RankTable


@pytest.fixture(autouse=True)
def _fast_passwords():
    """Overrides tests/conftest.py's autouse fixture of this name, which needs pytest-django's ``settings``."""
    yield


@pytest.fixture(autouse=True)
def _empty_cache():
    """Overrides tests/conftest.py's autouse fixture of this name: these pure tests need no Django cache."""
    yield


def build_random_table(
    seed: int = 0,
    n_prompts: int = 40,
    n_labelers: int = 6,
    per_prompt: tuple[int, int] = (1, 5),
    responses: tuple[int, int] = (2, 6),
    tie_rate: float = 0.3,
    incomplete: float = 0.0,
    n_models: int = 0,
) -> RankTable:
    """Rankings of a noisy shared quality; ties by rounding scores, optional rankings of a subset of responses."""
    rng = np.random.default_rng(seed)
    rows = []
    response = 0
    for prompt in range(n_prompts):
        k = int(rng.integers(responses[0], responses[1] + 1))
        quality = rng.normal(size=k)
        models = rng.permutation(max(n_models, k))[:k] if n_models else np.full(k, -1)
        labelers = rng.permutation(n_labelers)[: int(rng.integers(per_prompt[0], per_prompt[1] + 1))]
        for labeler in labelers:
            shown = np.flatnonzero(rng.random(k) >= incomplete)
            if len(shown) < 2:
                shown = np.arange(k)
            score = quality[shown] + rng.normal(size=len(shown))
            score = np.where(rng.random(len(shown)) < tie_rate, np.round(score), score)
            _, dense = np.unique(-score, return_inverse=True)
            order = rng.permutation(len(shown))
            for position, j in enumerate(order):
                rows.append((prompt, labeler, response + shown[j], float(dense[j] + 1), position, models[shown[j]]))
        response += k
    prompt, labeler, resp, rank, position, model = (np.array(column) for column in zip(*rows, strict=True))
    return RankTable(
        prompt=prompt,
        labeler=labeler,
        response=resp,
        rank=rank,
        position=position,
        model=model if n_models else None,
    )


@pytest.fixture
def random_table():
    return build_random_table


def reliability_matrix(table: RankTable) -> np.ndarray:
    """The table as the ``krippendorff`` package's input: labelers x responses, NaN where not ranked."""
    data = np.full((table.n_labelers, table.n_responses), np.nan)
    data[table.labeler, table.response] = table.rank
    return data


@pytest.fixture
def as_reliability_matrix():
    return reliability_matrix
