import pytest

from tests.concurrency.server import PlatformServer


@pytest.fixture(scope="module")
def platform_server(tmp_path_factory):
    """gunicorn with 3 worker processes x 4 threads over a fresh SQLite (WAL) file; stopped after the module."""
    with PlatformServer(tmp_path_factory.mktemp("server")) as server:
        yield server
