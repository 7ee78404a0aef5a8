"""`load_demo --with-rankings`: simulated labelers rank every demo prompt through the assignment and submit services."""

import json
import random
from io import StringIO

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from annotation import exports
from annotation.demo import DEMO_OVERLAP_WITH_RANKINGS, DEMO_SLUG, demo_jsonl, demo_load
from annotation.demo.data import PROMPTS
from annotation.demo.simulated import SIMULATED_LABELERS, SIMULATED_SOURCE, noisy_ranks
from annotation.models import Assignment, Prompt, Ranking, Response
from annotation.ranking_rules import ranking_errors
from annotation.services.assignments import assignment_next, open_slots
from annotation.services.exports import preference_export_create
from annotation.services.rankings import ranking_submit
from tests.annotation.api._helpers import api_client

PASSWORD = "test-demo-pass"
SIMULATED = [labeler.username for labeler in SIMULATED_LABELERS]
REFERENCE = {row["id"]: row["reference_ranks"] for row in PROMPTS}


def _load(*args) -> str:
    out = StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def demo(db):
    return demo_load(password=PASSWORD, with_rankings=True)


def _reference_by_response() -> dict[int, int]:
    """Response id -> the rank its writer intended."""
    rows = Response.objects.filter(prompt__project__slug=DEMO_SLUG).values_list("id", "index", "prompt__external_id")
    return {rid: REFERENCE[external_id][index] for rid, index, external_id in rows}


# --- the data and the noise (no database) -------------------------------------------------------------------------


def test_demo_reference_ranks_are_a_valid_ranking_of_each_prompts_responses():
    assert len(PROMPTS) == 27
    for row in PROMPTS:
        ranks = row["reference_ranks"]
        assert len(ranks) == len(row["responses"]), row["id"]
        assert ranking_errors(dict(enumerate(ranks)), list(range(len(ranks)))) == [], row["id"]
    identical = next(row for row in PROMPTS if row["id"] == "demo-gen-04")  # two identical answers: a tie
    assert identical["responses"][0]["text"] == identical["responses"][1]["text"]
    assert identical["reference_ranks"][0] == identical["reference_ranks"][1] == 1


def test_demo_jsonl_leaves_out_the_reference_ranks():
    data = demo_jsonl()

    assert b"reference" not in data and b'"rank' not in data
    assert all(set(json.loads(line)) <= {"id", "category", "prompt", "responses"} for line in data.splitlines())


def test_noisy_ranks_without_noise_give_the_reference_and_are_always_a_valid_ranking():
    assert noisy_ranks([2, 1, 4, 3], random.Random(0), swap=0.0, tie=0.0) == [2, 1, 4, 3]
    for seed in range(300):
        reference = [1, 1, 2, 3] if seed % 2 else [3, 1, 4, 2]
        ranks = noisy_ranks(reference, random.Random(seed), swap=0.3)
        assert ranking_errors(dict(enumerate(ranks)), [0, 1, 2, 3]) == [], (reference, ranks)
        if reference == [3, 1, 4, 2]:
            assert ranks[1] <= 2  # a swapped answer moves one place at most: the best one stays first or second


def test_noisy_ranks_are_reproducible_per_seed_and_differ_between_seeds():
    draws = [tuple(noisy_ranks([1, 2, 3, 4], random.Random(f"dave:{i}"), swap=0.2)) for i in range(50)]

    assert draws == [tuple(noisy_ranks([1, 2, 3, 4], random.Random(f"dave:{i}"), swap=0.2)) for i in range(50)]
    assert len(set(draws)) > 3 and draws.count((1, 2, 3, 4)) > 10


# --- load_demo --with-rankings ------------------------------------------------------------------------------------


def test_load_demo_with_rankings_has_each_simulated_labeler_rank_every_demo_prompt_once(db):
    out = _load("--with-rankings")

    project = Prompt.objects.filter(project__slug=DEMO_SLUG).first().project
    assert project.overlap == DEMO_OVERLAP_WITH_RANKINGS == 6
    rankings = Ranking.objects.filter(project=project)
    assert rankings.count() == 3 * 27
    assert set(rankings.values_list("labeler__username", flat=True)) == set(SIMULATED)
    assert all(r.metadata == {"source": SIMULATED_SOURCE} and r.entries.count() == 4 for r in rankings)
    assert set(Prompt.objects.filter(project=project).values_list("ranking_count", "is_complete")) == {(3, False)}
    assert Assignment.objects.filter(project=project).exclude(status=Assignment.Status.SUBMITTED).count() == 0
    roles = dict(project.memberships.values_list("user__username", "role"))
    assert all(roles[name] == "labeler" for name in SIMULATED)
    assert "Simulated rankings (dave, erin, frank): 81 added; overlap 6." in out
    counts = (Ranking.objects.count(), Assignment.objects.count(), get_user_model().objects.count())

    again = _load("--with-rankings")  # idempotent

    assert (Ranking.objects.count(), Assignment.objects.count(), get_user_model().objects.count()) == counts
    assert "Simulated rankings (dave, erin, frank): 0 added; overlap 6." in again


def test_load_demo_with_rankings_after_a_plain_demo_reopens_prompts_people_completed(db):
    project = demo_load(password=PASSWORD).project
    users = get_user_model().objects
    for name in ("alice", "bob", "carol"):
        labeler = users.get(username=name)
        task = assignment_next(project=project, labeler=labeler)
        ranking_submit(labeler=labeler, assignment_id=task.pk, ranks={rid: 1 for rid in task.shown_order})
    first = Prompt.objects.filter(project=project).order_by("id").first()
    assert first.is_complete

    demo_load(password=PASSWORD, with_rankings=True)

    first.refresh_from_db()
    assert (first.ranking_count, first.is_complete) == (6, True)
    assert Ranking.objects.filter(metadata__source=SIMULATED_SOURCE).count() == 81


def test_demo_simulated_rankings_mostly_follow_the_reference_order_and_their_majority_export_does(demo, tmp_path):
    reference = _reference_by_response()
    agree: dict[str, list[bool]] = {name: [] for name in SIMULATED}
    for ranking in Ranking.objects.select_related("labeler").prefetch_related("entries"):
        ranks = {e.response_id: e.rank for e in ranking.entries.all()}
        for a in ranks:
            for b in ranks:
                if reference[a] < reference[b]:
                    agree[ranking.labeler.username].append(ranks[a] < ranks[b])
    share = {name: sum(votes) / len(votes) for name, votes in agree.items()}

    assert all(0.6 < value < 1.0 for value in share.values()), share  # noisy, but right more often than not
    assert share["dave"] > share["erin"] > share["frank"], share  # careful, average, hasty

    result = preference_export_create(project=demo.project, out=tmp_path / "all")
    majority = preference_export_create(
        project=demo.project, out=tmp_path / "majority", options=exports.ExportOptions(strategy="majority")
    )

    assert result.stats.pairs.pairs > 300 and result.stats.splits["train"].pairs > 0
    rows = [orjson.loads(line) for name in ("train.jsonl", "test.jsonl") for line in (majority.out / name).open("rb")]
    assert len(rows) > 100
    follows = [reference[row["chosen_id"]] < reference[row["rejected_id"]] for row in rows]
    assert sum(follows) / len(follows) > 0.85


def test_demo_labelers_still_get_tasks_after_the_simulated_rankings(demo):
    users = get_user_model().objects
    response = api_client(users.get(username="alice")).post(f"/api/projects/{DEMO_SLUG}/tasks/next/")

    assert response.status_code in (200, 201), response.content
    task = response.json()
    assert len(task["responses"]) == 4 and b"reference" not in response.content
    for name in ("bob", "carol"):
        assert assignment_next(project=demo.project, labeler=users.get(username=name)) is not None
    now = Assignment.objects.latest("created_at").created_at
    prompts = Prompt.objects.filter(project=demo.project)
    assert all(open_slots(prompt=p, overlap=demo.project.overlap, now=now) >= 0 for p in prompts)
    assert sum(open_slots(prompt=p, overlap=demo.project.overlap, now=now) for p in prompts) == 3 * 27 - 3


def test_simulated_demo_labelers_cannot_log_in(demo, client):
    for user in get_user_model().objects.filter(username__in=SIMULATED):
        assert not user.has_usable_password() and not user.is_active and not user.is_staff
        for password in ("", PASSWORD):
            page = client.post("/accounts/login/", {"username": user.username, "password": password})
            # The form again (or, after several failures from this address, the sign-in lockout): never signed in.
            assert page.status_code in (200, 429) and "_auth_user_id" not in client.session
        token = api_client().post("/api/auth/token/", {"username": user.username, "password": PASSWORD})
        assert token.status_code in (400, 429) and "token" not in token.json()


def test_demo_default_split_holds_out_prompts_for_a_reward_model_run(demo, settings, tmp_path):
    """The demo's 27 prompts at the default 10%: the hash alone holds out none; the floor holds out 3."""
    from rlhf.services import training_run_create
    from rlhf.services.prepare import run_inputs_prepare

    settings.RLHF_RUNS_DIR = str(tmp_path / "runs")
    options = exports.ExportOptions()
    assert options.test_ratio == 0.1
    result = preference_export_create(project=demo.project, out=tmp_path / "default", options=options)
    assert result.stats.splits["test"].prompts == exports.MIN_TEST_GROUPS == 3
    assert result.stats.splits["test"].pairs > 0 and result.stats.splits["train"].prompts == 24

    run = training_run_create(project=demo.project, config={"base_model": "tiny"}, enqueue=False)
    run_inputs_prepare(run)  # what the worker does first
    assert run.export["test_pairs"] > 0 and run.config["eval_file"]
    assert run.export["counts"]["splits"]["test"]["prompts"] >= 1
