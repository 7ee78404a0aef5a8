"""Browser pages through Django's test client: who may see what, and the labeling form end to end (real DB)."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from annotation.models import Assignment, Guideline, Ranking, RankingEntry
from annotation.services.assignments import assignment_next
from annotation.services.projects import membership_set
from annotation.services.rankings import ranking_submit
from tests.factories import AdminFactory, ProjectFactory, PromptFactory, ResponseFactory, UserFactory, labeler, manager

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "plain answer",
]


class PageParser(HTMLParser):
    """The elements (tag, attributes) and the visible text of a page, as a browser's parser sees them."""

    def __init__(self, body: str):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.texts: list[str] = []
        self.feed(body)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.texts.append(data)


def injected_elements(body: str) -> list[tuple[str, dict]]:
    """Elements that only untrusted text could have put there: scripts with alert, images, javascript: links."""
    parser = PageParser(body)
    bad = []
    for tag, attrs in parser.elements:
        hrefs = [value or "" for name, value in attrs.items() if name in ("href", "src")]
        if tag in ("img", "iframe", "svg") or any(h.strip().lower().startswith("javascript:") for h in hrefs):
            bad.append((tag, attrs))
        if any(name.startswith("on") for name in attrs):
            bad.append((tag, attrs))
    return bad


@pytest.fixture
def setup(db):
    project = ProjectFactory(slug="alpha")
    other = ProjectFactory(slug="beta")
    PromptFactory(project=project)
    PromptFactory(project=project)
    PromptFactory(project=other)
    return {
        "project": project,
        "other": other,
        "labeler": labeler(project),
        "outsider": labeler(other),
        "manager": manager(project),
        "admin": AdminFactory(),
    }


def url(name: str, project, *args) -> str:
    return reverse(f"annotation:{name}", args=[project.slug, *args])


def login(client, user):
    client.force_login(user)
    return client


def rank_data(assignment, ranks: list, **extra) -> dict:
    """POST data giving the responses, in shown order, the given ranks."""
    data = {f"rank_{rid}": str(rank) for rid, rank in zip(assignment.shown_order, ranks, strict=True)}
    data.update(extra)
    return data


PROJECT_PAGES = ["project-detail", "guidelines", "label", "my-rankings"]


# ---- permission matrix ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PROJECT_PAGES)
def test_anonymous_is_redirected_to_login(client, setup, page):
    response = client.get(url(page, setup["project"]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login") + "?next=")


def test_anonymous_project_list_redirects_to_login(client, db):
    response = client.get(reverse("annotation:project-list"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.parametrize("page", PROJECT_PAGES)
@pytest.mark.parametrize("who", ["labeler", "manager", "admin"])
def test_members_and_admin_see_project_pages(client, setup, page, who):
    response = login(client, setup[who]).get(url(page, setup["project"]))
    assert response.status_code == 200


@pytest.mark.parametrize("page", PROJECT_PAGES)
def test_labeler_of_another_project_gets_404(client, setup, page):
    response = login(client, setup["outsider"]).get(url(page, setup["project"]))
    assert response.status_code == 404


def test_unknown_project_is_404_even_for_admin(client, setup):
    response = login(client, setup["admin"]).get(reverse("annotation:project-detail", args=["no-such-project"]))
    assert response.status_code == 404


def test_project_list_shows_only_my_projects_with_role(client, setup):
    body = login(client, setup["labeler"]).get(reverse("annotation:project-list")).content.decode()
    assert setup["project"].name in body and "Labeler" in body
    assert setup["other"].name not in body
    admin_body = login(client, setup["admin"]).get(reverse("annotation:project-list")).content.decode()
    assert setup["project"].name in admin_body and setup["other"].name in admin_body


def test_project_page_shows_progress_only_to_managers_and_admins(client, setup):
    labeler_body = login(client, setup["labeler"]).get(url("project-detail", setup["project"])).content.decode()
    assert "Start labeling" in labeler_body
    assert "Rankings per labeler" not in labeler_body
    for who in ("manager", "admin"):
        body = login(client, setup[who]).get(url("project-detail", setup["project"])).content.decode()
        assert "Rankings per labeler" in body and 'data-stat="untouched">2<' in body


def test_project_progress_counts_rankings_per_labeler(client, setup):
    project, user = setup["project"], setup["labeler"]
    assignment = assignment_next(project=project, labeler=user)
    ranking_submit(labeler=user, assignment_id=assignment.pk, ranks=dict.fromkeys(assignment.shown_order, 1))
    body = login(client, setup["manager"]).get(url("project-detail", project)).content.decode()
    assert f"<td>{user.username}</td><td>1</td>" in body


def test_labeler_cannot_publish_guidelines(client, setup):
    response = login(client, setup["labeler"]).post(url("guidelines", setup["project"]), {"text": "# Hacked"})
    assert response.status_code == 404
    assert setup["project"].guidelines.count() == 1


@pytest.mark.parametrize("who", ["manager", "admin"])
def test_manager_and_admin_publish_a_new_guideline_version(client, setup, who):
    project = setup["project"]
    response = login(client, setup[who]).post(url("guidelines", project), {"text": "# Version two\nBe kind."})
    assert response.status_code == 302
    latest = project.guidelines.order_by("-version").first()
    assert (latest.version, latest.text, latest.created_by) == (2, "# Version two\nBe kind.", setup[who])
    body = client.get(url("guidelines", project)).content.decode()
    assert "<h1>Version two</h1>" in body and "Previous versions" in body and "Version 1" in body


def test_empty_guideline_is_rejected_with_400(client, setup):
    response = login(client, setup["manager"]).post(url("guidelines", setup["project"]), {"text": ""})
    assert response.status_code == 400
    assert setup["project"].guidelines.count() == 1


def test_publish_form_is_shown_to_managers_only(client, setup):
    assert "Publish a new version" not in login(client, setup["labeler"]).get(url("guidelines", setup["project"])).text
    assert "Publish a new version" in login(client, setup["manager"]).get(url("guidelines", setup["project"])).text


def test_guidelines_markdown_is_sanitised(client, setup):
    project = setup["project"]
    evil = '# Title\n\n<script>alert(1)</script>\n\n[link](javascript:alert(1)) <img src=x onerror="alert(1)">'
    Guideline.objects.create(project=project, version=2, text=evil)
    body = login(client, setup["labeler"]).get(url("guidelines", project)).content.decode()
    assert "<h1>Title</h1>" in body
    assert "<script>alert(1)" not in body and injected_elements(body) == []
    assert "[link](javascript:alert(1))" in "".join(PageParser(body).texts)  # an unsafe link stays text


# ---- the labeling page ---------------------------------------------------------------------------------------------


def test_label_page_shows_responses_by_letter_in_shown_order(client, setup):
    response = login(client, setup["labeler"]).get(url("label", setup["project"]))
    assignment = Assignment.objects.get(labeler=setup["labeler"])
    body = response.content.decode()
    positions = [body.index(f'data-response-id="{rid}"') for rid in assignment.shown_order]
    assert positions == sorted(positions)
    assert 'data-letter="A"' in body and 'data-letter="D"' in body
    assert reverse("annotation:label-submit", args=["alpha", assignment.pk]) in body


def test_label_page_never_shows_model_names(client, db):
    project = ProjectFactory()
    prompt = PromptFactory(project=project, responses=[])
    for i in range(3):
        ResponseFactory(prompt=prompt, index=i, model_name=f"secret-model-{i}", text=f"reply {i}")
    body = login(client, labeler(project)).get(url("label", project)).content.decode()
    assert all(f"reply {i}" in body for i in range(3))
    assert "secret-model" not in body


def test_label_page_escapes_untrusted_text(client, setup):
    project = ProjectFactory(slug="xss")
    PromptFactory(project=project, text="<script>alert('prompt')</script>", responses=XSS_PAYLOADS)
    user = labeler(project)
    body = login(client, user).get(url("label", project)).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    text = "".join(PageParser(body).texts)
    assert all(payload in text for payload in XSS_PAYLOADS)  # shown as the text it is
    assert "<script>alert" not in body and injected_elements(body) == []


def test_label_page_renders_markdown_prompt_responses_and_chat_turns(client, db):
    project = ProjectFactory()
    responses = ["Use **bold** and a [link](https://example.com).", "```python\nprint(1)\n```", "| a |\n|---|\n| 1 |"]
    messages = [{"role": "user", "content": "# Question\n- item"}, {"role": "assistant", "content": "`code`"}]
    PromptFactory(project=project, text="", messages=messages, responses=responses)
    body = login(client, labeler(project)).get(url("label", project)).content.decode()
    assert '<div class="turn-text markdown"><h1>Question</h1>' in body and "<li>item</li>" in body
    assert "<code>code</code>" in body
    assert "<strong>bold</strong>" in body and '<a href="https://example.com" rel="noopener nofollow">link</a>' in body
    assert '<pre class="highlight"><code><span class="nb">print</span>' in body
    assert "<table>" in body and '<div class="response-text markdown">' in body


def test_label_page_shows_plain_text_when_the_project_turns_markdown_off(client, db):
    project = ProjectFactory(render_markdown=False)
    PromptFactory(project=project, text="# Not a heading\n**raw**", responses=["*raw answer*", "b"])
    body = login(client, labeler(project)).get(url("label", project)).content.decode()
    assert '<div class="prompt-text plain" id="prompt-text"># Not a heading\n**raw**</div>' in body
    assert '<div class="response-text plain">*raw answer*</div>' in body
    assert "<h1>Not a heading" not in body and "<em>raw answer</em>" not in body


def test_chat_prompt_is_shown_as_turns_with_roles(client, db):
    project = ProjectFactory()
    messages = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}]
    PromptFactory(project=project, messages=messages)
    body = login(client, labeler(project)).get(url("label", project)).content.decode()
    assert 'class="turn turn-user"' in body and 'class="turn turn-assistant"' in body
    assert body.index("Hi there") < body.index("Hello!")


def test_label_shows_nothing_left_when_queue_is_empty(client, db):
    project = ProjectFactory()
    response = login(client, labeler(project)).get(url("label", project))
    assert response.status_code == 200
    assert "Nothing left to rank" in response.content.decode()
    assert Assignment.objects.count() == 0


def test_submit_stores_ranking_with_tie_and_redirects_to_next_task(client, setup):
    project, user = setup["project"], setup["labeler"]
    login(client, user).get(url("label", project))
    assignment = Assignment.objects.get(labeler=user)
    data = rank_data(assignment, [1, 2, 2, 3], flags=["unsafe"], rationale="A is clearer.", time_spent_s="12.5")

    response = client.post(url("label-submit", project, assignment.pk), data)

    assert response.status_code == 302 and response.url == url("label", project)
    ranking = Ranking.objects.get()
    entries = dict(RankingEntry.objects.filter(ranking=ranking).values_list("response_id", "rank"))
    assert entries == dict(zip(assignment.shown_order, [1, 2, 2, 3], strict=True))
    assert (ranking.flags, ranking.rationale, ranking.time_spent_s) == (["unsafe"], "A is clearer.", 12.5)
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SUBMITTED
    next_page = client.get(response.url)
    assert "Ranking saved" in next_page.content.decode()
    assert Assignment.objects.filter(labeler=user, status="active").exclude(pk=assignment.pk).count() == 1


def test_double_submit_stores_one_ranking(client, setup):
    project, user = setup["project"], setup["labeler"]
    assignment = assignment_next(project=project, labeler=user)
    data = rank_data(assignment, [2, 1, 3, 4])
    login(client, user)
    first = client.post(url("label-submit", project, assignment.pk), data)
    second = client.post(url("label-submit", project, assignment.pk), data)
    assert first.status_code == second.status_code == 302
    assert Ranking.objects.count() == 1 and RankingEntry.objects.count() == 4


@pytest.mark.parametrize(
    ("make_data", "message"),
    [
        (lambda a: rank_data(a, [1, 3, 3, 4]), "Ranks must be dense: [1, 3, 3, 4] skips rank 2"),
        (lambda a: rank_data(a, [1, 2, 3, ""]), "has no rank: every response must be ranked"),
        (lambda a: {**rank_data(a, [1, 2, 3, 4]), "rank_999999": "1"}, "Response 999999 is not one of the responses"),
        (lambda a: rank_data(a, [1, 2, 3, 9]), "is outside 1..4"),
        (lambda a: rank_data(a, [1, 2, 3, "x"]), "is not a whole number"),
    ],
    ids=["not-dense", "missing-response", "foreign-response", "out-of-range", "not-a-number"],
)
def test_invalid_submit_rerenders_with_400_and_stores_nothing(client, setup, make_data, message):
    project, user = setup["project"], setup["labeler"]
    assignment = assignment_next(project=project, labeler=user)
    response = login(client, user).post(url("label-submit", project, assignment.pk), make_data(assignment))
    assert response.status_code == 400
    body = response.content.decode()
    assert "Your ranking was not saved" in body and message in body
    assert Ranking.objects.count() == 0 and RankingEntry.objects.count() == 0
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.ACTIVE


def test_rejected_submit_keeps_entered_ranks_flags_and_rationale(client, setup):
    project, user = setup["project"], setup["labeler"]
    assignment = assignment_next(project=project, labeler=user)
    data = rank_data(assignment, [1, 3, 3, 4], flags=["all_bad"], rationale="kept text")
    body = login(client, user).post(url("label-submit", project, assignment.pk), data).content.decode()
    assert f'name="rank_{assignment.shown_order[1]}" value="3"' in body
    assert 'value="all_bad" checked' in body and "kept text</textarea>" in body


def test_rationale_required_is_enforced_by_the_server(client, db):
    project = ProjectFactory(rationale_required=True)
    PromptFactory(project=project)
    user = labeler(project)
    assignment = assignment_next(project=project, labeler=user)
    response = login(client, user).post(
        url("label-submit", project, assignment.pk), rank_data(assignment, [1, 2, 3, 4])
    )
    assert response.status_code == 400
    assert "asks for a rationale" in response.content.decode()
    assert Ranking.objects.count() == 0


def test_submitting_someone_elses_assignment_is_404(client, setup):
    project = setup["project"]
    assignment = assignment_next(project=project, labeler=setup["labeler"])
    intruder = labeler(project)
    response = login(client, intruder).post(url("label-submit", project, assignment.pk), rank_data(assignment, [1] * 4))
    assert response.status_code == 404
    assert login(client, intruder).post(url("label-skip", project, assignment.pk)).status_code == 404
    assert Ranking.objects.count() == 0
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.ACTIVE


def test_assignment_posted_under_another_projects_url_is_404(client, setup):
    user = UserFactory()
    for project in (setup["project"], setup["other"]):
        membership_set(project=project, user=user, role="labeler")
    assignment = assignment_next(project=setup["project"], labeler=user)
    response = login(client, user).post(
        url("label-submit", setup["other"], assignment.pk), rank_data(assignment, [1, 2, 3, 4])
    )
    assert response.status_code == 404


def test_submit_and_skip_require_login_and_post(client, setup):
    assignment = assignment_next(project=setup["project"], labeler=setup["labeler"])
    anonymous = client.post(url("label-submit", setup["project"], assignment.pk), rank_data(assignment, [1] * 4))
    assert anonymous.status_code == 302 and anonymous.url.startswith(reverse("login"))
    assert login(client, setup["labeler"]).get(url("label-skip", setup["project"], assignment.pk)).status_code == 405


def test_skip_marks_assignment_skipped_and_shows_another_prompt(client, setup):
    project, user = setup["project"], setup["labeler"]
    login(client, user).get(url("label", project))
    first = Assignment.objects.get(labeler=user)
    response = client.post(url("label-skip", project, first.pk))
    assert response.status_code == 302 and response.url == url("label", project)
    first.refresh_from_db()
    assert first.status == Assignment.Status.SKIPPED
    client.get(response.url)
    second = Assignment.objects.get(labeler=user, status="active")
    assert second.prompt_id != first.prompt_id
    assert Ranking.objects.count() == 0


def test_my_rankings_lists_only_my_own_rankings(client, setup):
    project, me = setup["project"], setup["labeler"]
    someone = labeler(project)
    mine = assignment_next(project=project, labeler=me)
    ranking_submit(labeler=me, assignment_id=mine.pk, ranks=dict(zip(mine.shown_order, [2, 1, 3, 3], strict=True)))
    theirs = assignment_next(project=project, labeler=someone)
    ranking_submit(labeler=someone, assignment_id=theirs.pk, ranks=dict.fromkeys(theirs.shown_order, 1))

    body = login(client, me).get(url("my-rankings", project)).content.decode()

    assert "B &gt; A &gt; C = D" in body
    assert "A = B = C = D" not in body
    assert body.count("<tr>") == 2  # the header row and my one ranking
