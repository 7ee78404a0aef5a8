import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Reward models trained by the tests skip the boundary index (MiniLM would load in every training subprocess);
# the tests of the index set RLHF_BOUNDARY_INDEX=1 themselves.
os.environ.setdefault("RLHF_BOUNDARY_INDEX", "0")


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache (project totals are cached for a few seconds per process)."""
    from django.core.cache import cache

    cache.clear()
