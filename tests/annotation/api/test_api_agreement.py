"""Agreement figures, gold prompts and labeler exclusion over real HTTP (token auth, real database)."""

import json

import pytest
from drf_spectacular.generators import SchemaGenerator

from annotation.models import Membership, Prompt, Ranking
from annotation.services.agreement import agreement_report_get
from annotation.services.gold import prompt_gold_set
from tests.annotation.api._helpers import api_client, ranks_body
from tests.factories import AdminFactory, ProjectFactory, PromptFactory, labeler, manager, rank_queue


def _by_index(prompt, responses):
    return {r.id: r.index + 1 for r in responses}


def _reverse(prompt, responses):
    return {r.id: len(responses) - r.index for r in responses}


@pytest.fixture
def team(db):
    """Project `team`: 3 prompts x 4 responses; ann and bob rank alike, cat ranks everything in reverse."""
    project = ProjectFactory(slug="team", overlap=3)
    for _ in range(3):
        PromptFactory(project=project, responses=4)
    users = {name: labeler(project, username=name) for name in ("ann", "bob", "cat")}
    rank_queue(project, users["ann"], _by_index)
    rank_queue(project, users["bob"], _by_index)
    rank_queue(project, users["cat"], _reverse)
    return project, manager(project, username="max"), users


def test_agreement_report_api_returns_the_service_report_for_the_given_bootstrap(team):
    project, boss, _ = team

    response = api_client(boss).get("/api/projects/team/agreement/?n_boot=30&seed=5")

    assert response.status_code == 200
    body = response.json()
    assert body == json.loads(json.dumps(agreement_report_get(project=project, n_boot=30, seed=5)))
    assert (body["n_prompts"], body["n_rankings"], body["n_labelers"], body["n_boot"]) == (3, 9, 3, 30)
    # Of the 3 labeler pairs per prompt, only ann-bob agree: 6 of 18 response pairs each, so 1/3.
    assert body["pairwise_agreement_ties_dropped"] == pytest.approx(1 / 3, abs=1e-4)
    assert set(body["intervals"]) == {
        "alpha_ordinal", "alpha_interval", "kendall_w_mean",
        "pairwise_agreement_ties_dropped", "pairwise_agreement_ties_as_outcome",
    }  # fmt: skip
    assert "intervals" not in api_client(boss).get("/api/projects/team/agreement/?n_boot=0").json()


def test_agreement_report_api_takes_the_tie_coding_and_reports_it(team):
    project, boss, _ = team

    default = api_client(boss).get("/api/projects/team/agreement/?n_boot=0").json()
    dense = api_client(boss).get("/api/projects/team/agreement/?n_boot=0&tie_coding=dense").json()

    assert default["tie_coding"] == "average"
    assert dense == json.loads(json.dumps(agreement_report_get(project=project, n_boot=0, tie_coding="dense")))
    assert dense["tie_coding"] == "dense"


@pytest.mark.parametrize("query", ["n_boot=-1", "n_boot=2001", "n_boot=many", "seed=-3", "tie_coding=min"])
def test_agreement_report_api_refuses_bad_bootstrap_parameters(team, query):
    _, boss, _ = team

    response = api_client(boss).get(f"/api/projects/team/agreement/?{query}")

    assert response.status_code == 400
    assert response.json()["errors"][0].startswith(query.split("=")[0] + ":")


def test_agreement_report_api_for_a_project_without_rankings_is_all_zero(db):
    project = ProjectFactory(slug="empty")
    PromptFactory(project=project)

    response = api_client(AdminFactory()).get("/api/projects/empty/agreement/")

    assert response.status_code == 200
    assert response.json() == {"project": "empty", "n_rankings": 0, "n_prompts": 0, "n_labelers": 0}


def test_agreement_labelers_and_leaderboard_apis_return_their_part_of_the_report(team):
    project, boss, users = team
    client = api_client(boss)

    labelers = client.get("/api/projects/team/agreement/labelers/").json()
    leaderboard = client.get("/api/projects/team/agreement/leaderboard/?n_boot=20").json()

    report = agreement_report_get(project=project, n_boot=20)
    assert labelers == {"project": "team", "labelers": report["labelers"]}
    assert {row["username"] for row in labelers["labelers"]} == set(users)
    assert leaderboard == {
        "project": "team",
        "n_boot": 20,
        "leaderboard": json.loads(json.dumps(report["leaderboard"])),
        "components": [],
        "warnings": [],
        "comparisons": [],  # no blind policy-vs-reference batch in this project
    }
    # Two of three labelers put model-0 first: it leads the leaderboard.
    assert [row["model"] for row in leaderboard["leaderboard"]] == ["model-0", "model-1", "model-2", "model-3"]


def test_agreement_schema_documents_every_key_the_report_returns(team):
    project, _, _ = team
    report = agreement_report_get(project=project, n_boot=10)
    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]

    def properties(name: str) -> set[str]:
        return set(components[name]["properties"])

    assert properties("AgreementReport") == set(report)
    assert properties("LabelerRow") == set(report["labelers"][0])
    assert properties("LeaderboardRow") == set(report["leaderboard"][0])
    assert properties("Breakdown") == set(report["by_category"][0])
    assert properties("FlagRow") == set(report["flags"][0])
    assert properties("LowPrompt") == set(report["lowest_prompts"][0])
    assert properties("Intervals") == set(report["intervals"])


def test_excluding_a_labeler_changes_the_project_figures_keeps_their_row_and_deletes_nothing(team):
    project, boss, users = team
    client = api_client(boss)
    rankings_before = sorted(Ranking.objects.values_list("id", "labeler__username", "is_current"))
    before = client.get("/api/projects/team/agreement/?n_boot=0").json()

    response = client.post("/api/projects/team/members/cat/exclusion/", {"excluded": True}, format="json")

    assert response.status_code == 200
    assert response.json()["username"] == "cat" and response.json()["excluded"] is True
    after = client.get("/api/projects/team/agreement/?n_boot=0").json()
    assert (before["n_labelers"], before["n_rankings"]) == (3, 9)
    assert (after["n_labelers"], after["n_rankings"]) == (2, 6)
    assert before["pairwise_agreement_ties_dropped"] < 0.5
    assert after["pairwise_agreement_ties_dropped"] == 1.0 and after["alpha_ordinal"] == 1.0
    rows = {row["username"]: row for row in after["labelers"]}
    assert set(rows) == {"ann", "bob", "cat"}
    assert (rows["cat"]["excluded"], rows["cat"]["n_rankings"]) == (True, 3)
    assert not rows["ann"]["excluded"] and not rows["bob"]["excluded"]
    assert sorted(Ranking.objects.values_list("id", "labeler__username", "is_current")) == rankings_before
    assert Membership.objects.get(project=project, user=users["cat"]).role == "labeler"

    client.post("/api/projects/team/members/cat/exclusion/", {"excluded": False}, format="json")
    assert client.get("/api/projects/team/agreement/?n_boot=0").json() == before


def test_exclusion_api_refuses_non_members_and_bad_input(team):
    project, boss, _ = team
    outsider = labeler(ProjectFactory(slug="elsewhere"), username="olga")
    client = api_client(boss)

    assert client.post("/api/projects/team/members/olga/exclusion/", {"excluded": True}).status_code == 404
    bad = client.post("/api/projects/team/members/cat/exclusion/", {"excluded": "perhaps"}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0].startswith("excluded:")
    missing = client.post("/api/projects/team/members/cat/exclusion/", {}, format="json")
    assert missing.status_code == 400
    assert not Membership.objects.filter(excluded=True).exists()
    assert not Membership.objects.filter(user=outsider, project=project).exists()


def test_gold_set_api_stores_the_reference_and_gold_list_shows_it_to_managers(team):
    project, boss, _ = team
    prompt = project.prompts.first()
    ids = list(prompt.responses.order_by("index").values_list("id", flat=True))
    client = api_client(boss)

    response = client.post(
        f"/api/projects/team/prompts/{prompt.id}/gold/", ranks_body(ids, [2, 1, 1, 3]), format="json"
    )

    assert response.status_code == 200
    assert response.json()["is_gold"] is True
    assert [(r["response_id"], r["rank"]) for r in response.json()["responses"]] == [
        (ids[1], 1), (ids[2], 1), (ids[0], 2), (ids[3], 3)
    ]  # fmt: skip
    gold = client.get("/api/projects/team/gold/").json()
    assert gold["count"] == 1
    listed = gold["results"][0]
    assert listed["prompt_id"] == prompt.id and listed["text"] == prompt.text
    assert {r["model_name"] for r in listed["responses"]} == {"model-0", "model-1", "model-2", "model-3"}

    assert client.delete(f"/api/projects/team/prompts/{prompt.id}/gold/").status_code == 204
    assert client.get("/api/projects/team/gold/").json()["count"] == 0
    prompt.refresh_from_db()
    assert (prompt.is_gold, prompt.gold_ranks, prompt.ranking_count, prompt.is_complete) == (False, None, 3, True)


@pytest.mark.parametrize(
    ("ranks", "message"),
    [
        ([1, 3, 3, 4], "Ranks must be dense"),
        ([1, 2, 3], "has no rank"),
        ([1, 2, 3, 5], "outside 1..4"),
    ],
)
def test_gold_set_api_refuses_invalid_reference_rankings_and_changes_nothing(team, ranks, message):
    project, boss, _ = team
    prompt = project.prompts.first()
    ids = list(prompt.responses.order_by("index").values_list("id", flat=True))

    response = api_client(boss).post(
        f"/api/projects/team/prompts/{prompt.id}/gold/", ranks_body(ids[: len(ranks)], ranks), format="json"
    )

    assert response.status_code == 400
    assert any(message in error for error in response.json()["errors"])
    assert not Prompt.objects.filter(is_gold=True).exists()


def test_gold_set_api_refuses_a_foreign_response_and_a_prompt_of_another_project(team):
    project, boss, _ = team
    prompt = project.prompts.first()
    ids = list(prompt.responses.order_by("index").values_list("id", flat=True))
    foreign_prompt = PromptFactory(project=ProjectFactory(slug="other"), responses=4)
    stray = foreign_prompt.responses.first().id
    client = api_client(boss)

    foreign = client.post(
        f"/api/projects/team/prompts/{prompt.id}/gold/", ranks_body([*ids, stray], [1, 2, 3, 4, 5]), format="json"
    )
    other = client.post(
        f"/api/projects/team/prompts/{foreign_prompt.id}/gold/", ranks_body(ids, [1, 2, 3, 4]), format="json"
    )
    duplicate = client.post(
        f"/api/projects/team/prompts/{prompt.id}/gold/", ranks_body([*ids, ids[0]], [1, 2, 3, 4, 1]), format="json"
    )

    assert foreign.status_code == 400
    assert f"Response {stray} is not one of the responses shown for this prompt." in foreign.json()["errors"]
    assert other.status_code == 404
    assert duplicate.status_code == 400 and "is ranked more than once" in duplicate.json()["errors"][0]
    assert not Prompt.objects.filter(is_gold=True).exists()


def test_labelers_cannot_tell_a_gold_prompt_from_any_other(db):
    """Served at gold_rate 1, a gold prompt's task and the labeler's own rankings carry the same fields as an
    ordinary prompt's, and nothing that says gold."""
    project = ProjectFactory(slug="quiz", overlap=1, gold_rate=1.0)
    gold, plain = PromptFactory(project=project, responses=3), PromptFactory(project=project, responses=3)
    prompt_gold_set(prompt=gold, ranks={rid: 1 for rid in gold.responses.values_list("id", flat=True)})
    client = api_client(labeler(project, username="lou"))

    tasks = []
    for _ in range(3):  # two prompts, then 204
        response = client.post("/api/projects/quiz/tasks/next/")
        if response.status_code == 204:
            break
        task = response.json()
        tasks.append(task)
        shown = [r["id"] for r in task["responses"]]
        submitted = client.post(f"/api/tasks/{task['assignment_id']}/submit/", ranks_body(shown), format="json")
        assert submitted.status_code == 201, submitted.content
    mine = client.get("/api/rankings/mine/?project=quiz")

    assert [t["prompt"]["id"] for t in tasks] == [gold.id, plain.id]  # gold first: gold_rate is 1
    gold_task, plain_task = tasks
    assert gold_task.keys() == plain_task.keys() and gold_task["prompt"].keys() == plain_task["prompt"].keys()
    assert [r.keys() for r in gold_task["responses"]] == [r.keys() for r in plain_task["responses"]]
    assert gold_task["progress"].keys() == plain_task["progress"].keys()
    for payload in (*tasks, mine.json()):
        assert "gold" not in json.dumps(payload).lower()
    assert mine.status_code == 200 and mine.json()["count"] == 2
    assert client.get("/api/projects/quiz/gold/").status_code == 403
    assert client.get("/api/projects/quiz/agreement/").status_code == 403


def test_leaderboard_api_warns_of_a_disconnected_comparison_graph(team):
    project, boss, _ = team
    first = project.prompts.order_by("id").first()
    for response in first.responses.all():  # prompt 1's models are never compared with the others' models
        response.model_name = f"island-{response.index}"
        response.save(update_fields=["model_name"])

    body = api_client(boss).get("/api/projects/team/agreement/leaderboard/?n_boot=0").json()

    assert len(body["warnings"]) == 1 and "disconnected" in body["warnings"][0]
    assert [len(rows) for rows in body["components"]] == [4, 4]
