"""Accessibility scan of the labeling page (and the manager's pages) in real Chromium with the vendored axe-core:
no serious or critical violations of WCAG 2.0/2.1/2.2 A and AA rules."""

from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from annotation.models import Membership, Project
from tests.browser.conftest import log_in
from tests.factories import ProjectFactory, PromptFactory, labeler, manager, rank_queue

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "static" / "vendor" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
RUN_AXE = """async (tags) => {
  const result = await axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
  return result.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ")) }));
}"""


def serious_violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(RUN_AXE, TAGS)
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def test_labeling_page_has_no_serious_accessibility_violations(page):
    project = ProjectFactory(overlap=1)
    PromptFactory(
        project=project,
        text="Explain **tides** with a table:\n\n| moon | sun |\n|---|---|\n| 1 | 2 |",
        responses=["A short answer.", "```python\nprint('tide')\n```", "- one\n- two", "[a link](https://example.org)"],
    )
    user = labeler(project)
    log_in(page, user, next_url=f"/projects/{project.slug}/label/")
    expect(page.locator("#response-A")).to_be_visible()
    assert serious_violations(page) == []
    # And with ranks set, a tie and the focus on a card (the states a labeler spends most time in).
    for key, rank in [("a", "1"), ("b", "2"), ("c", "2")]:
        page.keyboard.press(key)
        page.keyboard.press(rank)
    assert serious_violations(page) == []


def test_manager_pages_have_no_serious_accessibility_violations(page):
    wmt = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "wmt23_ende_3raters.jsonl"
    call_command("import_rankings", str(wmt), "--project", "wmt")
    project = Project.objects.get(slug="wmt")
    user = manager(project)
    other = ProjectFactory(overlap=2)
    PromptFactory(project=other, responses=3)
    rank_queue(other, labeler(other))
    Membership.objects.create(project=other, user=user, role="manager")
    log_in(page, user, next_url="/projects/wmt/agreement/")
    expect(page.locator("h1")).to_have_text("Agreement and labeler quality")
    assert serious_violations(page) == []
    for url in ("/projects/", f"/projects/{other.slug}/", f"/projects/{other.slug}/progress/"):
        page.goto(url)
        assert serious_violations(page) == [], url


def test_the_scan_finds_violations_when_there_are_some(page):
    """A control: the same scan on a page with an unlabeled image and an unlabeled field reports both."""
    page.set_content('<html lang="en"><title>x</title><main><img src="x.png"><input type="text"></main></html>')
    assert {v["id"] for v in serious_violations(page)} >= {"image-alt", "label"}
