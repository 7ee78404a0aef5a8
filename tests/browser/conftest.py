"""Playwright (sync API) against pytest-django's live server, driving Debian's Chromium: one browser per session."""

import os
from pathlib import Path

import pytest

from tests.factories import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Playwright's sync API runs an asyncio loop in this thread; the tests' own ORM calls are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: browser tests need Debian's Chromium (run `bash scripts/ensure_chromium.sh` "
            "or `apt-get install -y chromium`).",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    # A phone in Chromium's mobile emulation: 390 px wide, touch, a mobile user agent's meta viewport handling.
    "mobile": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
    },
}


@pytest.fixture
def page(request, browser, live_server, transactional_db):
    """A fresh browser context (no cookies) per test; every JS dialog (alert/confirm/prompt) is recorded. Desktop
    by default; `@pytest.mark.parametrize("page", ["desktop", "mobile"], indirect=True)` runs a test at both."""
    size = VIEWPORTS[getattr(request, "param", "desktop")]
    context = browser.new_context(**size, base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.dialogs = []

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page
    context.close()


def log_in(page, user, next_url: str = "") -> None:
    """Log in through the real login form."""
    page.goto("/accounts/login/" + (f"?next={next_url}" if next_url else ""))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def screenshot(page, name: str, full_page: bool = True) -> Path:
    """Save what the browser shows: always under /tmp; with UPDATE_SCREENSHOTS=1 (`make screenshots`) also as
    docs/screenshots/<name>.png, the README's pictures, so they come from the tests and stay current."""
    path = Path("/tmp") / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
    return path


def fits_width(page) -> bool:
    """No sideways scrolling: the page is no wider than the window (what a phone user needs)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def page_value(page, expression: str, timeout: float = 10_000):
    """`expression`'s value once the page's scripts have defined it: an element shows before the scripts at the end of
    the page have run, so reading a chart right after seeing its canvas races them (seen once in a full run)."""
    page.wait_for_function(
        f"() => {{ try {{ return ({expression}) !== undefined; }} catch (error) {{ return false; }} }}", timeout=timeout
    )
    return page.evaluate(expression)
