"""The API docs pages (Swagger UI, ReDoc) in a real browser: every file they load, scripts' own loads included,
comes from the server itself (drf-spectacular-sidecar), so they work offline and tell no third party about readers."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# What each page shows once its JavaScript has fetched the schema and rendered it.
DOCS_PAGES = {
    "/api/docs/": ".swagger-ui .info .title",
    "/api/redoc/": "h1:has-text('Preference annotation')",
}
INLINE_SCHEMES = ("data:", "blob:", "about:")  # content carried by the page itself, not fetched from anywhere
# The Swagger UI bundle is 1.5 MB of JavaScript: on a busy 2-core machine it takes close to a minute to load and run.
SLOW_MS = 150_000


@pytest.mark.parametrize("path", list(DOCS_PAGES))
def test_docs_page_loads_every_file_from_the_server_itself(page, live_server, path):
    origin = urlsplit(live_server.url)
    requested, refused = [], []

    def same_origin_only(route):
        url = route.request.url
        requested.append(url)
        parts = urlsplit(url)
        if url.startswith(INLINE_SCHEMES) or (parts.scheme, parts.netloc) == (origin.scheme, origin.netloc):
            route.continue_()
        else:
            refused.append(url)
            route.abort()  # nothing leaves the machine, and the page's loader does not wait on the network

    page.route("**/*", same_origin_only)
    page.goto(path, wait_until="commit", timeout=SLOW_MS)
    expect(page.locator(DOCS_PAGES[path]).first).to_be_visible(timeout=SLOW_MS)
    page.wait_for_load_state("networkidle", timeout=SLOW_MS)

    assert refused == []
    assert any(url.endswith(".js") for url in requested)  # the UI's own scripts came from here
    assert any("/api/schema/" in url for url in requested)  # and so did the schema it renders
