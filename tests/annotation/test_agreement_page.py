"""The agreement page and its exclusion toggle through Django's test client (real DB, rankings made by the platform)."""

import json
import re

import pytest
from django.urls import reverse

from annotation.models import Membership
from annotation.services.assignments import assignment_next
from annotation.services.rankings import ranking_submit
from tests.factories import AdminFactory, ProjectFactory, PromptFactory, labeler, manager

XSS_TEXT = "<script>alert('prompt')</script><img src=x onerror=alert(1)>"


def rank_queue(project, user, *, reverse_order: bool = False, flags=()) -> int:
    """The labeler ranks every prompt of their queue by response index (0 best), or the opposite way."""
    done = 0
    while (assignment := assignment_next(project=project, labeler=user)) is not None:
        responses = assignment.prompt.responses.all()
        count = len(responses)
        ranks = {r.id: (count - r.index if reverse_order else r.index + 1) for r in responses}
        ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=ranks, flags=list(flags), time_spent_s=12.0)
        done += 1
    return done


@pytest.fixture
def ranked(db):
    """3 prompts (one with XSS-looking text) ranked by three labelers: two agree, the third ranks the reverse."""
    project = ProjectFactory(slug="ranked", overlap=3)
    PromptFactory(project=project, text="Explain tides.", category="qa")
    PromptFactory(project=project, text="Write a haiku.", category="generation")
    xss = PromptFactory(project=project, text=XSS_TEXT, category="qa")
    people = {"agree1": labeler(project), "agree2": labeler(project), "contrary": labeler(project)}
    rank_queue(project, people["agree1"])
    rank_queue(project, people["agree2"], flags=["unsafe"])
    rank_queue(project, people["contrary"], reverse_order=True)
    people |= {"manager": manager(project), "admin": AdminFactory(), "outsider": labeler(ProjectFactory())}
    return {"project": project, "xss": xss, **people}


def page_url(project, **query) -> str:
    url = reverse("annotation:agreement", args=[project.slug])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def exclusion_url(project) -> str:
    return reverse("annotation:agreement-exclusion", args=[project.slug])


def chart_data(body: str) -> dict:
    match = re.search(r'<script id="agreement-data" type="application/json">(.*?)</script>', body, re.S)
    assert match, "chart data missing"
    return json.loads(match.group(1))


@pytest.mark.parametrize("who", ["manager", "admin"])
def test_manager_and_admin_see_figures_counts_and_tables(client, ranked, who):
    client.force_login(ranked[who])
    response = client.get(page_url(ranked["project"], n_boot=20))
    assert response.status_code == 200
    body = response.content.decode()
    report = response.context["report"]
    assert (report["n_prompts"], report["n_labelers"], report["n_rankings"]) == (3, 3, 9)
    assert report["n_boot"] == 20
    for stat, value in (("n_prompts", 3), ("n_labelers", 3), ("n_rankings", 9)):
        assert f'data-stat="{stat}">{value}<' in body
    # Two labelers agree on all 6 pairs of each prompt, the third disagrees with both: 6 agreeing of 18 pairs.
    assert report["pairwise_agreement_ties_dropped"] == pytest.approx(1 / 3, abs=1e-4)
    assert re.search(r'data-figure="pairwise_agreement_ties_dropped">.*?33\.3%.*?95% CI', body, re.S)
    for title in ("Krippendorff's α (ordinal)", "Kendall's W (mean over prompts)", "tie = third outcome"):
        assert title in body.replace("&#x27;", "'")
    assert "InstructGPT reports 72.6%" in body
    for user in ("agree1", "agree2", "contrary"):
        assert f'data-user-id="{ranked[user].pk}"' in body and ranked[user].username in body
    assert "Unsafe" in body and "Model leaderboard" in body and "model-0" in body


def test_model_names_and_charts_reach_js_through_json_script(client, ranked):
    client.force_login(ranked["manager"])
    data = chart_data(client.get(page_url(ranked["project"], n_boot=0)).content.decode())
    assert sum(data["histogram"]["counts"]) == 3
    assert {row["group"] for row in data["by_category"]} == {"qa", "generation"}
    assert {row["model"] for row in data["leaderboard"]} == {"model-0", "model-1", "model-2", "model-3"}
    assert len(data["over_time"]) == 1 and data["by_guideline_version"][0]["group"] == "1"


def test_no_intervals_when_bootstrap_is_off(client, ranked):
    client.force_login(ranked["manager"])
    response = client.get(page_url(ranked["project"], n_boot=0))
    assert "intervals" not in response.context["report"]
    assert "no interval (bootstrap off)" in response.content.decode()


@pytest.mark.parametrize(
    ("raw", "expected"), [("", "average"), ("average", "average"), ("dense", "dense"), ("x", "average")]
)
def test_page_shows_the_tie_coding_its_alpha_used_and_takes_it_from_the_query(client, ranked, raw, expected):
    client.force_login(ranked["manager"])

    response = client.get(page_url(ranked["project"], n_boot=0, tie_coding=raw))

    assert response.context["report"]["tie_coding"] == expected
    body = response.content.decode()
    assert f'data-tie-coding="{expected}"' in body and f"ties coded as {expected} ranks" in body
    assert re.search(rf'<option value="{expected}" selected>', body)


@pytest.mark.parametrize(("raw", "expected"), [("5000", 1000), ("-3", 0), ("abc", 200), ("", 200), ("7", 7)])
def test_n_boot_is_clamped_between_0_and_1000(client, db, raw, expected):
    project = ProjectFactory()
    client.force_login(manager(project))
    assert client.get(page_url(project) + f"?n_boot={raw}").context["n_boot"] == expected


def test_labeler_of_the_project_gets_404(client, ranked):
    client.force_login(ranked["agree1"])
    assert client.get(page_url(ranked["project"])).status_code == 404


def test_outsider_gets_404(client, ranked):
    client.force_login(ranked["outsider"])
    assert client.get(page_url(ranked["project"])).status_code == 404


def test_anonymous_is_redirected_to_login(client, ranked):
    response = client.get(page_url(ranked["project"]))
    assert response.status_code == 302 and response.url.startswith(reverse("login") + "?next=")


def test_empty_project_says_no_rankings_yet(client, db):
    project = ProjectFactory()
    PromptFactory(project=project)
    client.force_login(manager(project))
    response = client.get(page_url(project))
    body = response.content.decode()
    assert response.status_code == 200
    assert "No rankings yet" in body
    assert "agreement-data" not in body and "chart.umd.min.js" not in body


def test_project_page_links_to_agreement_for_managers_only(client, ranked):
    detail = reverse("annotation:project-detail", args=[ranked["project"].slug])
    client.force_login(ranked["manager"])
    assert page_url(ranked["project"]) in client.get(detail).content.decode()
    client.force_login(ranked["agree1"])
    assert page_url(ranked["project"]) not in client.get(detail).content.decode()


def test_lowest_prompts_escape_prompt_text_and_link_to_admin(client, ranked):
    client.force_login(ranked["manager"])
    body = client.get(page_url(ranked["project"], n_boot=0)).content.decode()
    assert "<script>alert('prompt')" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(&#x27;prompt&#x27;)&lt;/script&gt;" in body
    assert reverse("admin:annotation_prompt_change", args=[ranked["xss"].pk]) in body
    assert reverse("annotation:guidelines", args=[ranked["project"].slug]) in body


def test_manager_excludes_and_includes_a_labeler(client, ranked):
    project, contrary = ranked["project"], ranked["contrary"]
    client.force_login(ranked["manager"])
    response = client.post(exclusion_url(project), {"user_id": contrary.pk, "excluded": "1", "n_boot": "0"})
    assert response.status_code == 302
    assert response.url == page_url(project, n_boot=0) + "#labelers"
    membership = Membership.objects.get(project=project, user=contrary)
    assert membership.excluded is True and membership.role == "labeler"

    page = client.get(page_url(project, n_boot=0))
    report = page.context["report"]
    assert report["n_labelers"] == 2 and report["pairwise_agreement_ties_dropped"] == 1.0
    body = page.content.decode()
    assert re.search(rf'data-user-id="{contrary.pk}" class="[^"]*is-excluded', body)
    assert "Excluded</span>" in body and f"Include {contrary.username}" in body

    client.post(exclusion_url(project), {"user_id": contrary.pk, "excluded": "0"})
    assert Membership.objects.get(project=project, user=contrary).excluded is False


def test_the_exclusion_toggle_keeps_the_tie_coding_shown(client, ranked):
    """Issue #12: the toggle's form carries the page's tie coding, and the redirect brings the page back with it."""
    project, contrary = ranked["project"], ranked["contrary"]
    client.force_login(ranked["manager"])
    page = client.get(reverse("annotation:agreement", args=[project.slug]) + "?n_boot=0&tie_coding=dense")
    assert '<input type="hidden" name="tie_coding" value="dense">' in page.content.decode()

    response = client.post(
        exclusion_url(project), {"user_id": contrary.pk, "excluded": "1", "n_boot": "0", "tie_coding": "dense"}
    )
    assert response.url == reverse("annotation:agreement", args=[project.slug]) + "?n_boot=0&tie_coding=dense#labelers"
    assert client.get(response.url.split("#")[0]).context["report"]["tie_coding"] == "dense"
    bogus = client.post(exclusion_url(project), {"user_id": contrary.pk, "excluded": "0", "tie_coding": "<x>"})
    assert "tie_coding" not in bogus.url  # an unknown coding falls back to the default, which the URL leaves out


def test_labeler_cannot_exclude_anyone(client, ranked):
    client.force_login(ranked["agree1"])
    response = client.post(exclusion_url(ranked["project"]), {"user_id": ranked["contrary"].pk, "excluded": "1"})
    assert response.status_code == 404
    assert Membership.objects.get(project=ranked["project"], user=ranked["contrary"]).excluded is False


def test_exclusion_needs_post_and_a_member_of_the_project(client, ranked):
    project = ranked["project"]
    client.force_login(ranked["manager"])
    assert client.get(exclusion_url(project)).status_code == 405
    assert client.post(exclusion_url(project), {"user_id": "x", "excluded": "1"}).status_code == 400
    assert client.post(exclusion_url(project), {"user_id": ranked["outsider"].pk, "excluded": "1"}).status_code == 404
    assert not Membership.objects.filter(user=ranked["outsider"], excluded=True).exists()


def test_exclusion_form_carries_csrf_token(client, ranked):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(ranked["manager"])
    payload = {"user_id": ranked["contrary"].pk, "excluded": "1"}
    assert csrf_client.post(exclusion_url(ranked["project"]), payload).status_code == 403
    body = csrf_client.get(page_url(ranked["project"], n_boot=0)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
    assert (
        csrf_client.post(exclusion_url(ranked["project"]), payload | {"csrfmiddlewaretoken": token}).status_code == 302
    )
    assert Membership.objects.get(project=ranked["project"], user=ranked["contrary"]).excluded is True


def test_page_warns_of_a_disconnected_leaderboard_and_shows_each_group(client, ranked):
    first = ranked["project"].prompts.order_by("id").first()
    for response in first.responses.all():
        response.model_name = f"island-{response.index}"
        response.save(update_fields=["model_name"])
    client.force_login(ranked["manager"])

    body = client.get(page_url(ranked["project"], n_boot=0)).content.decode()

    assert "data-leaderboard-warning" in body and "2 disconnected groups" in body
    assert 'data-leaderboard-component="0"' in body and 'data-leaderboard-component="1"' in body
    assert "island-0" in body


def test_page_of_a_connected_leaderboard_has_no_warning(client, ranked):
    client.force_login(ranked["manager"])

    body = client.get(page_url(ranked["project"], n_boot=0)).content.decode()

    assert "data-leaderboard-warning" not in body and "data-leaderboard-component" not in body
