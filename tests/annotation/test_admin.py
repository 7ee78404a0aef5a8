"""The Django admin over real HTTP (test client): who sees what, the import and progress pages, every changelist."""

import json
from datetime import timedelta

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from annotation.models import Assignment, Membership, Project, Prompt, Ranking, Response
from annotation.services.assignments import assignment_next
from annotation.services.gold import prompt_gold_set
from annotation.services.rankings import ranking_submit
from tests.factories import AdminFactory, ProjectFactory, PromptFactory, UserFactory, labeler, manager


def _url(model: str, view: str, *args) -> str:
    return reverse(f"admin:annotation_{model}_{view}", args=args)


def _ranked(project, user) -> Ranking:
    assignment = assignment_next(project=project, labeler=user)
    ranks = {rid: i + 1 for i, rid in enumerate(assignment.shown_order)}
    ranking, _ = ranking_submit(labeler=user, assignment_id=assignment.id, ranks=ranks)
    return ranking


@pytest.fixture
def two_projects(db):
    """Project `mine` (managed by a staff manager) and `theirs`, each with a prompt, a ranking and an assignment."""
    mine, theirs = ProjectFactory(name="Mine", slug="mine"), ProjectFactory(name="Theirs", slug="theirs")
    data = {"mine": mine, "theirs": theirs, "manager": manager(mine, is_staff=True, username="maria")}
    for project in (mine, theirs):
        data[f"{project.slug}_prompt"] = PromptFactory(project=project, text=f"Prompt of {project.slug}")
        data[f"{project.slug}_ranking"] = _ranked(project, labeler(project, username=f"lab-{project.slug}"))
    return data


def _also_managed(data: dict) -> Project:
    """A second project for the manager, with a prompt and a ranking: project filters show from two choices on."""
    also = ProjectFactory(name="Also mine", slug="also-mine")
    Membership.objects.create(project=also, user=data["manager"], role=Membership.Role.MANAGER)
    PromptFactory(project=also, text="Prompt of also-mine")
    _ranked(also, labeler(also, username="lab-also"))
    return also


def _changelist_ids(client, model: str, query: str = "") -> set[int]:
    response = client.get(_url(model, "changelist") + query)
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


# --- who sees what ------------------------------------------------------------------------------------------------


def test_superuser_sees_every_projects_prompts_rankings_and_projects(client, two_projects):
    client.force_login(AdminFactory())

    assert _changelist_ids(client, "prompt") == {two_projects["mine_prompt"].pk, two_projects["theirs_prompt"].pk}
    assert _changelist_ids(client, "ranking") == {two_projects["mine_ranking"].pk, two_projects["theirs_ranking"].pk}
    assert _changelist_ids(client, "project") == {two_projects["mine"].pk, two_projects["theirs"].pk}


def test_manager_sees_only_their_projects_objects_in_every_changelist(client, two_projects):
    client.force_login(two_projects["manager"])
    mine = two_projects["mine"]

    assert _changelist_ids(client, "prompt") == {two_projects["mine_prompt"].pk}
    assert _changelist_ids(client, "ranking") == {two_projects["mine_ranking"].pk}
    assert _changelist_ids(client, "project") == {mine.pk}
    assert _changelist_ids(client, "assignment") == set(
        Assignment.objects.filter(project=mine).values_list("pk", flat=True)
    )
    assert _changelist_ids(client, "membership") == set(mine.memberships.values_list("pk", flat=True))
    assert _changelist_ids(client, "guideline") == set(mine.guidelines.values_list("pk", flat=True))
    assert _changelist_ids(client, "response") == set(
        Response.objects.filter(prompt__project=mine).values_list("pk", flat=True)
    )


def test_manager_project_filter_offers_only_their_projects(client, two_projects):
    also = _also_managed(two_projects)
    client.force_login(two_projects["manager"])

    response = client.get(_url("prompt", "changelist"))

    body = response.content.decode()
    assert f"project__id__exact={two_projects['mine'].pk}" in body
    assert f"project__id__exact={also.pk}" in body
    assert f"project__id__exact={two_projects['theirs'].pk}" not in body


@pytest.mark.parametrize(
    ("model", "key"),
    [("prompt", "theirs_prompt"), ("ranking", "theirs_ranking"), ("project", "theirs")],
)
def test_manager_gets_404_for_another_projects_object(client, two_projects, model, key):
    client.force_login(two_projects["manager"])

    assert client.get(_url(model, "change", two_projects[key].pk)).status_code == 404


def test_manager_gets_404_for_another_projects_progress_and_import_pages(client, two_projects):
    client.force_login(two_projects["manager"])
    theirs = two_projects["theirs"].pk

    assert client.get(_url("project", "progress", theirs)).status_code == 404
    assert client.get(_url("project", "import", theirs)).status_code == 404
    upload = SimpleUploadedFile("p.jsonl", b'{"prompt": "x", "responses": ["a", "b"]}\n')
    assert client.post(_url("project", "import", theirs), {"file": upload, "kind": "auto"}).status_code == 404
    assert Prompt.objects.filter(project_id=theirs).count() == 1


def test_manager_sees_their_own_objects_change_pages(client, two_projects):
    client.force_login(two_projects["manager"])

    for model, key in (("prompt", "mine_prompt"), ("ranking", "mine_ranking"), ("project", "mine")):
        assert client.get(_url(model, "change", two_projects[key].pk)).status_code == 200


def test_labeler_is_redirected_to_the_admin_login(client, two_projects):
    client.force_login(Membership.objects.filter(role="labeler").first().user)

    for url in (
        reverse("admin:index"),
        _url("prompt", "changelist"),
        _url("project", "progress", two_projects["mine"].pk),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_staff_user_who_manages_no_project_is_denied_the_changelists(client, two_projects):
    client.force_login(UserFactory(is_staff=True))

    assert client.get(_url("prompt", "changelist")).status_code == 403
    assert client.get(_url("ranking", "changelist")).status_code == 403
    assert "annotation" not in [app["app_label"] for app in client.get(reverse("admin:index")).context["app_list"]]


def test_manager_cannot_pick_another_project_for_a_new_membership(client, two_projects):
    client.force_login(two_projects["manager"])
    newcomer = UserFactory()

    response = client.post(
        _url("membership", "add"), {"project": two_projects["theirs"].pk, "user": newcomer.pk, "role": "labeler"}
    )

    assert response.status_code == 200
    assert "project" in response.context["adminform"].form.errors
    assert not Membership.objects.filter(user=newcomer).exists()


# --- read-only and service-backed saves ---------------------------------------------------------------------------


def test_rankings_are_read_only_even_for_superusers(client, two_projects):
    client.force_login(AdminFactory())
    ranking = two_projects["mine_ranking"]

    page = client.get(_url("ranking", "change", ranking.pk))
    assert page.status_code == 200
    assert not page.context["has_change_permission"] and not page.context["has_delete_permission"]
    assert client.post(_url("ranking", "change", ranking.pk), {"rationale": "edited"}).status_code == 403
    assert client.get(_url("ranking", "add")).status_code == 403
    assert client.get(_url("ranking", "delete", ranking.pk)).status_code == 403
    ranking.refresh_from_db()
    assert ranking.rationale == ""


def test_prompt_change_page_shows_responses_with_their_model_names(client, two_projects):
    client.force_login(two_projects["manager"])
    prompt = two_projects["mine_prompt"]

    body = client.get(_url("prompt", "change", prompt.pk)).content.decode()

    for response in prompt.responses.all():
        assert response.text in body and response.model_name in body


def test_ranking_change_page_lists_its_entries_read_only(client, two_projects):
    client.force_login(two_projects["manager"])
    ranking = two_projects["mine_ranking"]

    body = client.get(_url("ranking", "change", ranking.pk)).content.decode()

    assert body.count('class="field-rank"') >= ranking.entries.count()
    assert 'name="entries-0-rank"' not in body


def test_manager_new_guideline_is_published_as_the_next_version(client, two_projects):
    manager_user, mine = two_projects["manager"], two_projects["mine"]
    client.force_login(manager_user)

    response = client.post(_url("guideline", "add"), {"project": mine.pk, "text": "# v2\nPrefer honesty."})

    assert response.status_code == 302
    latest = mine.guidelines.order_by("-version").first()
    assert (latest.version, latest.text, latest.created_by) == (2, "# v2\nPrefer honesty.", manager_user)
    assert client.post(_url("guideline", "change", latest.pk), {"text": "edited"}).status_code == 403


def _project_form(project: Project, **changes) -> dict:
    """The project change form as the browser posts it, with its two inline formsets."""
    data = {
        "name": project.name,
        "description": project.description,
        "responses_per_task": "",
        "allow_ties": "on",
        **({"render_markdown": "on"} if project.render_markdown else {}),
        "flag_options": json.dumps(project.flag_options),
        "overlap": project.overlap,
        "lease_minutes": project.lease_minutes,
        "gold_rate": project.gold_rate,
        "revision_policy": project.revision_policy,
        "revision_hours": project.revision_hours,
        "feedback_every": project.feedback_every,
        "overlap_mode": project.overlap_mode,
        "overlap_min": project.overlap_min,
        "adaptive_agreement": project.adaptive_agreement,
        "qualification_threshold": project.qualification_threshold,
        "writing_mode": project.writing_mode,
        "prompt_cap": project.prompt_cap,
        "pii_policy": project.pii_policy,
        "near_dup_threshold": project.near_dup_threshold,
        "import_refusals": project.import_refusals,
        "kind": project.kind,
        "response_form": json.dumps(project.response_form),
        "strength_labels": json.dumps(project.strength_labels),
        "strength_margins": json.dumps(project.strength_margins),
    }
    memberships = list(project.memberships.all())
    data.update(
        {
            "memberships-TOTAL_FORMS": len(memberships),
            "memberships-INITIAL_FORMS": len(memberships),
            "guidelines-TOTAL_FORMS": project.guidelines.count(),
            "guidelines-INITIAL_FORMS": project.guidelines.count(),
        }
    )
    for i, membership in enumerate(memberships):
        data.update(
            {
                f"memberships-{i}-id": membership.pk,
                f"memberships-{i}-project": project.pk,
                f"memberships-{i}-user": membership.user_id,
                f"memberships-{i}-role": membership.role,
            }
        )
    for i, guideline in enumerate(project.guidelines.all()):
        data.update({f"guidelines-{i}-id": guideline.pk, f"guidelines-{i}-project": project.pk})
    data.update(changes)
    return data


def test_project_change_form_saves_settings_adds_a_member_and_publishes_a_guideline(client, two_projects):
    mine, manager_user = two_projects["mine"], two_projects["manager"]
    client.force_login(manager_user)
    newcomer = UserFactory()
    data = _project_form(mine, overlap=1)
    total = int(data["memberships-TOTAL_FORMS"])
    data.update(
        {
            "memberships-TOTAL_FORMS": total + 1,
            f"memberships-{total}-user": newcomer.pk,
            f"memberships-{total}-role": "labeler",
            "guidelines-TOTAL_FORMS": 2,
            "guidelines-1-text": "# Version two",
        }
    )

    response = client.post(_url("project", "change", mine.pk), data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    mine.refresh_from_db()
    assert mine.overlap == 1
    assert Prompt.objects.get(project=mine).is_complete  # project_update re-marked completion for the new overlap
    assert Membership.objects.get(project=mine, user=newcomer).role == "labeler"
    assert list(mine.guidelines.values_list("version", "text")) == [
        (2, "# Version two"),
        (1, "# Guidelines\nRank best first."),
    ]
    assert mine.guidelines.get(version=2).created_by == manager_user


def test_project_change_form_switches_markdown_rendering_off(client, two_projects):
    mine = two_projects["mine"]
    assert mine.render_markdown  # on by default
    client.force_login(two_projects["manager"])
    data = _project_form(mine)
    del data["render_markdown"]  # an unticked checkbox is not posted

    assert client.post(_url("project", "change", mine.pk), data).status_code == 302
    mine.refresh_from_db()
    assert mine.render_markdown is False


def test_admin_creating_a_project_in_the_admin_saves_its_settings_and_managers_cannot(client, two_projects):
    """Issue #12 item 2: only admins create projects (a manager's add page and POST are refused)."""
    client.force_login(two_projects["manager"])
    assert client.post(_url("project", "add"), {"name": "Fresh", "slug": "fresh"}).status_code == 403
    admin_user = AdminFactory()
    client.force_login(admin_user)
    data = {
        "name": "Fresh",
        "slug": "fresh",
        "description": "",
        "allow_ties": "on",
        "flag_options": "[]",
        "overlap": 2,
        "lease_minutes": 30,
        "gold_rate": 0,
        "revision_policy": "until_closed",
        "revision_hours": 24,
        "feedback_every": 10,
        "overlap_mode": "fixed",
        "overlap_min": 2,
        "adaptive_agreement": 0.6,
        "qualification_threshold": 0.7,
        "writing_mode": "off",
        "prompt_cap": 200,
        "pii_policy": "redact",
        "near_dup_threshold": 0.9,
        "import_refusals": "all_or_nothing",
        "kind": "ranking",
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
        "guidelines-TOTAL_FORMS": 0,
        "guidelines-INITIAL_FORMS": 0,
    }

    response = client.post(_url("project", "add"), data)

    assert response.status_code == 302
    fresh = Project.objects.get(slug="fresh")
    assert fresh.overlap == 2 and fresh.flag_options == []
    assert not Membership.objects.filter(project=fresh).exists()  # admins see every project without a membership
    assert fresh.guidelines.get().version == 1
    assert _changelist_ids(client, "project") == {two_projects["mine"].pk, two_projects["theirs"].pk, fresh.pk}


def test_removing_a_membership_in_the_admin_deletes_it(client, two_projects):
    client.force_login(two_projects["manager"])
    membership = Membership.objects.get(project=two_projects["mine"], user__username="lab-mine")

    response = client.post(_url("membership", "delete", membership.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()


# --- import and progress pages ------------------------------------------------------------------------------------


def test_project_list_and_change_page_link_to_progress_and_import(client, two_projects):
    client.force_login(two_projects["manager"])
    mine = two_projects["mine"]
    progress, importing = _url("project", "progress", mine.pk), _url("project", "import", mine.pk)

    for page in (_url("project", "changelist"), _url("project", "change", mine.pk)):
        body = client.get(page).content.decode()
        assert f'href="{progress}"' in body and f'href="{importing}"' in body


def test_admin_import_view_imports_the_file_and_shows_counts_and_warnings(client, two_projects):
    client.force_login(two_projects["manager"])
    mine = two_projects["mine"]
    lines = [
        {"prompt": "New prompt", "responses": ["Same.", "Same.", "Other."]},
        {"prompt": "Second prompt", "responses": ["a", "b"]},
        {"prompt": "Second prompt", "responses": ["a", "b"]},
    ]
    upload = SimpleUploadedFile("batch.jsonl", "".join(json.dumps(line) + "\n" for line in lines).encode())

    response = client.post(_url("project", "import", mine.pk), {"file": upload, "kind": "prompts"})

    assert response.status_code == 200
    result = response.context["result"]
    assert (result.prompts_created, result.responses_created, result.duplicates_skipped) == (2, 5, 1)
    body = response.content.decode()
    assert '<td class="prompts-created">2</td>' in body
    assert '<td class="duplicates-skipped">1</td>' in body
    assert "line 1: identical responses within this prompt" in body
    assert "line 3: exact duplicate of line 2: skipped." in body
    assert Prompt.objects.filter(project=mine).count() == 3


def test_admin_import_view_reports_every_error_line_and_imports_nothing(client, two_projects):
    client.force_login(two_projects["manager"])
    mine = two_projects["mine"]
    data = b'{"prompt": "fine", "responses": ["a", "b"]}\n{"prompt": "", "responses": ["a", "b"]}\nnot json\n'

    response = client.post(
        _url("project", "import", mine.pk), {"file": SimpleUploadedFile("bad.jsonl", data), "kind": "auto"}
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "Nothing was imported: 2 errors." in body
    assert "line 2: &#x27;prompt&#x27; is empty." in body
    assert "line 3: invalid JSON: Expecting value (column 1)." in body
    assert response.context["result"] is None
    assert Prompt.objects.filter(project=mine).count() == 1


def test_admin_import_view_without_a_file_shows_the_form_error(client, two_projects):
    client.force_login(two_projects["manager"])

    response = client.post(_url("project", "import", two_projects["mine"].pk), {"kind": "auto"})

    assert response.status_code == 200
    assert "file" in response.context["form"].errors


def test_progress_view_renders_prompt_and_per_labeler_counts(client, two_projects):
    mine = two_projects["mine"]
    PromptFactory(project=mine)  # untouched
    leased = PromptFactory(project=mine)
    Assignment.objects.create(
        project=mine,
        prompt=leased,
        labeler=labeler(mine, username="lab-two"),
        shown_order=list(leased.responses.values_list("id", flat=True)),
        expires_at=timezone.now() + timedelta(minutes=30),
    )
    client.force_login(two_projects["manager"])

    response = client.get(_url("project", "progress", mine.pk))

    assert response.status_code == 200
    progress = response.context["progress"]
    assert (progress["prompts"], progress["in_progress"], progress["rankings"], progress["target_rankings"]) == (
        3,
        2,
        1,
        9,
    )
    body = response.content.decode()
    assert '<td class="done">0</td>' in body
    assert '<td class="in-progress">2</td>' in body
    assert '<td class="untouched">1</td>' in body
    assert "<tr><td>lab-mine</td><td>1</td></tr>" in body
    assert "1 of 9 rankings (11%)" in body


# --- gold prompts -------------------------------------------------------------------------------------------------


def _response_ids(prompt: Prompt) -> list[int]:
    return list(prompt.responses.order_by("index").values_list("id", flat=True))


def _gold_form(prompt: Prompt, ranks: list, **extra) -> dict:
    """The gold page's form as the browser posts it: one rank per response ('' for a blank field)."""
    return {**{f"rank_{rid}": rank for rid, rank in zip(_response_ids(prompt), ranks, strict=True)}, **extra}


def _gold_state(prompt: Prompt) -> tuple:
    prompt.refresh_from_db()
    return prompt.is_gold, prompt.gold_ranks, prompt.ranking_count, prompt.is_complete


def test_manager_marks_a_prompt_gold_with_its_reference_ranking_in_the_admin(client, two_projects):
    client.force_login(two_projects["manager"])
    prompt = two_projects["mine_prompt"]
    a, b, c, d = _response_ids(prompt)
    gold_url = _url("prompt", "gold", prompt.pk)

    change_page = client.get(_url("prompt", "change", prompt.pk)).content.decode()
    page = client.get(gold_url)
    response = client.post(gold_url, _gold_form(prompt, [2, 1, 3, 2], set="1"), follow=True)

    assert f'href="{gold_url}"' in change_page
    assert page.status_code == 200 and all(f'name="rank_{rid}"' in page.content.decode() for rid in (a, b, c, d))
    assert response.redirect_chain == [(_url("prompt", "change", prompt.pk), 302)]
    assert f"Prompt {prompt.pk} is gold with the reference ranking." in response.content.decode()
    # what prompt_gold_set stores: string keys, the ranking count untouched (1 ranking by lab-mine)
    assert _gold_state(prompt) == (True, {str(a): 2, str(b): 1, str(c): 3, str(d): 2}, 1, False)
    again = client.get(gold_url).content.decode()
    assert f'name="rank_{b}" value="1"' in again and 'name="unset"' in again  # the reference, ready to replace


@pytest.mark.parametrize(
    ("ranks", "message"),
    [
        ([1, 2, "", 3], "has no rank: every response must be ranked."),
        ([1, 3, 3, 4], "Ranks must be dense: [1, 3, 3, 4] skips rank 2"),
        ([1, 2, 3, 5], "Rank 5 for response {d} is outside 1..4."),
    ],
    ids=["blank", "not-dense", "out-of-range"],
)
def test_admin_gold_page_refuses_invalid_ranks_with_the_services_message(client, two_projects, ranks, message):
    client.force_login(two_projects["manager"])
    prompt = two_projects["mine_prompt"]
    before = _gold_state(prompt)

    response = client.post(_url("prompt", "gold", prompt.pk), _gold_form(prompt, ranks, set="1"))

    assert response.status_code == 200
    body = response.content.decode()
    assert message.format(d=_response_ids(prompt)[3]) in body and "was not saved" in body
    assert response.context["form"].non_field_errors()
    assert _gold_state(prompt) == before == (False, None, 1, False)


def test_manager_unmarks_gold_from_the_page_and_with_the_changelist_action(client, two_projects):
    client.force_login(two_projects["manager"])
    prompt, other = two_projects["mine_prompt"], PromptFactory(project=two_projects["mine"])
    for gold in (prompt, other):
        prompt_gold_set(prompt=gold, ranks={rid: 1 for rid in _response_ids(gold)})

    page = client.post(_url("prompt", "gold", prompt.pk), {"unset": "1"})
    action = client.post(_url("prompt", "changelist"), {"action": "gold_unset", "_selected_action": [other.pk]})

    assert page.status_code == action.status_code == 302
    assert _gold_state(prompt) == (False, None, 1, False)  # its ranking counts towards the overlap again
    assert _gold_state(other)[:2] == (False, None)


def test_labeler_and_another_projects_manager_cannot_change_gold(client, two_projects):
    theirs = two_projects["theirs_prompt"]
    prompt_gold_set(prompt=theirs, ranks={rid: 1 for rid in _response_ids(theirs)})
    before = _gold_state(theirs)
    mine_prompt = two_projects["mine_prompt"]

    client.force_login(Membership.objects.get(user__username="lab-mine").user)
    refused = client.post(_url("prompt", "gold", mine_prompt.pk), _gold_form(mine_prompt, [1, 2, 3, 4], set="1"))
    assert refused.status_code == 302 and refused["Location"].startswith(reverse("admin:login"))
    assert _gold_state(mine_prompt)[:2] == (False, None)

    client.force_login(two_projects["manager"])
    assert client.get(_url("prompt", "gold", theirs.pk)).status_code == 404
    assert client.post(_url("prompt", "gold", theirs.pk), {"unset": "1"}).status_code == 404
    client.post(_url("prompt", "changelist"), {"action": "gold_unset", "_selected_action": [theirs.pk]})
    assert _gold_state(theirs) == before and before[0] is True


# --- every changelist renders with its filters and search ---------------------------------------------------------

ANNOTATION_MODELS = sorted(
    model._meta.model_name for model in admin.site._registry if model._meta.app_label == "annotation"
)


def test_every_annotation_model_is_registered():
    assert set(ANNOTATION_MODELS) >= {
        "project",
        "membership",
        "guideline",
        "prompt",
        "response",
        "assignment",
        "ranking",
    }


@pytest.mark.parametrize("as_manager", [False, True], ids=["superuser", "manager"])
@pytest.mark.parametrize("model_name", ANNOTATION_MODELS)
def test_changelist_renders_with_each_filter_and_search(client, two_projects, model_name, as_manager):
    _also_managed(two_projects)
    client.force_login(two_projects["manager"] if as_manager else AdminFactory())
    model_admin = next(ma for m, ma in admin.site._registry.items() if m._meta.model_name == model_name)
    url = _url(model_name, "changelist")

    response = client.get(url)
    assert response.status_code == 200
    specs = response.context["cl"].filter_specs
    assert len(specs) == len(model_admin.list_filter)
    for spec in specs:
        for choice in list(spec.choices(response.context["cl"]))[1:3]:  # the first real choices of every filter
            assert client.get(url + choice["query_string"]).status_code == 200, choice["query_string"]
    if model_admin.search_fields:
        searched = client.get(url, {"q": "Prompt"})
        assert searched.status_code == 200
        assert 'name="q"' in searched.content.decode()


def test_prompt_changelist_filters_and_search_narrow_the_results(client, two_projects):
    client.force_login(AdminFactory())
    mine = two_projects["mine"]
    gold = PromptFactory(project=mine, text="A gold prompt about volcanoes", is_gold=True, category="qa")

    assert _changelist_ids(client, "prompt", f"?project__id__exact={mine.pk}") == {
        two_projects["mine_prompt"].pk,
        gold.pk,
    }
    assert _changelist_ids(client, "prompt", "?is_gold__exact=1") == {gold.pk}
    assert _changelist_ids(client, "prompt", "?category=qa") == {gold.pk}
    assert _changelist_ids(client, "prompt", "?q=volcanoes") == {gold.pk}
    assert _changelist_ids(client, "ranking", "?source__exact=platform&is_current__exact=1") == {
        two_projects["mine_ranking"].pk,
        two_projects["theirs_ranking"].pk,
    }
    assert _changelist_ids(client, "ranking", "?q=lab-theirs") == {two_projects["theirs_ranking"].pk}
    assert _changelist_ids(client, "assignment", "?q=lab-mine") == set(
        Assignment.objects.filter(labeler__username="lab-mine").values_list("pk", flat=True)
    )
