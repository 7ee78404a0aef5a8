"""The agreement page in a real browser, on the real WMT23 three-rater rankings: charts render, the table sorts."""

from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from annotation.models import Project
from tests.browser.conftest import log_in, page_value, screenshot
from tests.factories import manager

pytestmark = pytest.mark.browser

WMT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "wmt23_ende_3raters.jsonl"
CANVASES = ["chart-histogram", "chart-over-time", "chart-leaderboard", "chart-by-category", "chart-by-guideline"]


def column_values(page, column: int) -> list[str]:
    return page.locator(f"#labeler-table tbody tr td:nth-child({column})").all_inner_texts()


def test_agreement_page_renders_charts_and_sorts_labelers_on_wmt_data(page):
    assert WMT.exists(), f"{WMT} is missing (the shared real-data folder)"
    call_command("import_rankings", str(WMT), "--project", "wmt")
    user = manager(Project.objects.get(slug="wmt"))
    problems = []

    def on_console(message):
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            problems.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))

    log_in(page, user, next_url="/projects/wmt/agreement/")
    expect(page.locator("h1")).to_have_text("Agreement and labeler quality")
    expect(page.locator('[data-stat="n_rankings"]')).to_have_text("312")
    expect(page.locator('[data-stat="n_labelers"]')).to_have_text("10")
    expect(page.locator('[data-figure="pairwise_agreement_ties_dropped"] .figure-interval')).to_contain_text("95% CI")

    for canvas in CANVASES:
        expect(page.locator(f"canvas#{canvas}")).to_be_visible()
    created = page_value(page, "Object.keys(window.agreementCharts).filter((id) => Chart.getChart(id)).sort()")
    assert created == sorted(CANVASES)
    assert page.evaluate("Chart.getChart('chart-leaderboard').data.labels.length") == 10
    # Every prompt with a defined agreement lands in one bin (a prompt whose pairs are all tied has none).
    drawn = page.evaluate("Chart.getChart('chart-histogram').data.datasets[0].data.reduce((a, b) => a + b)")
    assert 100 <= drawn <= 104

    rows = page.locator("#labeler-table tbody tr")
    expect(rows).to_have_count(10)
    expect(page.locator("#labeler-table tr.is-outlier")).to_have_count(1)
    by_agreement = [float(v) for v in column_values(page, 3)]
    assert by_agreement == sorted(by_agreement, reverse=True)

    page.get_by_role("button", name="Rankings", exact=True).click()
    expect(page.locator("#labeler-table th").nth(1)).to_have_attribute("aria-sort", "descending")
    counts = [int(v) for v in column_values(page, 2)]
    assert counts == sorted(counts, reverse=True) and counts != [int(v) for v in sorted(counts)]
    page.get_by_role("button", name="Rankings", exact=True).click()
    expect(page.locator("#labeler-table th").nth(1)).to_have_attribute("aria-sort", "ascending")
    assert [int(v) for v in column_values(page, 2)] == sorted(counts)

    page.get_by_role("button", name="Labeler", exact=True).click()
    names = column_values(page, 1)
    assert names == sorted(names, key=lambda n: int(n.removeprefix("en-de_rater")))  # numeric-aware text sort

    page.get_by_role("button", name="Agreement", exact=True).click()
    screenshot(page, "agreement", full_page=False)
    assert problems == []
