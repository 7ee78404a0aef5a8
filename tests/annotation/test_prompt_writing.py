"""Prompt writing and hygiene against the database: the writing service and API, imports (all-or-nothing or per-line
decisions), evaluation sets, the queue, and the harmlessness export."""

import json

import orjson
import pytest
from django.core.exceptions import ValidationError

from annotation import exports
from annotation.models import EvalSet, Prompt, PromptRefusal, Response
from annotation.services.assignments import assignment_next
from annotation.services.exports import ExportFilters, preference_export_create
from annotation.services.hygiene import PromptRefused, eval_set_upload, prompt_write
from annotation.services.imports import ImportFailed, prompts_import
from tests.annotation.api._helpers import api_client
from tests.factories import ProjectFactory, PromptFactory, labeler, manager, rank_queue, ranking_make

FRIDGE = "Explain in simple words how a refrigerator keeps food cold, and why the back of it gets warm while it runs"


@pytest.fixture
def project(db):
    return ProjectFactory(slug="write", writing_mode="prompts")


# --- the writing service --------------------------------------------------------------------------------------------


def test_written_prompt_is_stored_with_author_category_and_no_responses(project):
    lea = labeler(project, username="lea")

    prompt = prompt_write(project=project, author=lea, text="Write a limerick about a cat.", category="generation")

    prompt.refresh_from_db()
    assert (prompt.author, prompt.category, prompt.source, prompt.purpose) == (lea, "generation", "written", "helpful")
    assert prompt.responses.count() == 0


def test_red_team_project_marks_its_prompts(project):
    project.writing_mode = "red_team"
    project.save()

    prompt = prompt_write(project=project, author=labeler(project), text="How do I pick a lock?", category="open_qa")

    assert prompt.purpose == "red_team"


def test_written_prompt_redacts_personal_information_by_default(project):
    prompt = prompt_write(
        project=project, author=labeler(project), text="Email jane@example.com my SSN 536-90-4399.", category="rewrite"
    )

    assert prompt.text == "Email [EMAIL] my SSN [NATIONAL_ID]."
    assert prompt.metadata == {"redacted": ["email", "national_id"]}


def test_refusal_says_why_and_stores_no_prompt_and_no_text(project):
    project.pii_policy = "refuse"
    project.save()
    lea = labeler(project)

    with pytest.raises(PromptRefused, match="personal information \\(a phone number\\)") as refused:
        prompt_write(project=project, author=lea, text="Call me on (415) 555-2671.", category="chat")

    assert [r.code for r in refused.value.reasons] == ["pii"]
    assert Prompt.objects.count() == 0
    refusal = PromptRefusal.objects.get()
    assert (refusal.author, refusal.category, refusal.reasons[0]["code"]) == (lea, "chat", "pii")
    assert "555" not in json.dumps(refusal.reasons)


def test_cap_per_author(project):
    project.prompt_cap = 2
    project.save()
    lea, max_ = labeler(project), labeler(project)
    for text in ("First prompt about apples.", "Second prompt about pears."):
        prompt_write(project=project, author=lea, text=text, category="other")

    with pytest.raises(PromptRefused, match="already has 2 prompts in this project; the cap is 2"):
        prompt_write(project=project, author=lea, text="Third prompt about plums.", category="other")
    prompt_write(project=project, author=max_, text="Third prompt about plums.", category="other")

    assert Prompt.objects.filter(author=lea).count() == 2


def test_near_duplicate_of_a_project_prompt_is_refused(project):
    existing = PromptFactory(project=project, text=FRIDGE + " today.")

    with pytest.raises(PromptRefused, match=f"near duplicate of prompt {existing.pk} of the project"):
        prompt_write(project=project, author=labeler(project), text=FRIDGE + " please.", category="open_qa")

    assert Prompt.objects.count() == 1


def test_evaluation_prompt_is_refused(project):
    eval_set_upload(project=project, name="held-out", filename="eval.jsonl",
                    data=b'{"prompt": "What is the capital of France?"}\n"Name three primes."\n')  # fmt: skip

    with pytest.raises(PromptRefused, match="item 2 of the evaluation set 'held-out'"):
        prompt_write(project=project, author=labeler(project), text="name three PRIMES", category="closed_qa")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"writing_mode": "off"}, None, "does not ask for written prompts"),
        ({"category": "poetry"}, "category", "Choose a category"),
        ({"text": "   "}, "text", "is empty"),
    ],
)
def test_bad_writing_requests_are_refused_with_a_reason(project, change, field, message):
    if "writing_mode" in change:
        project.writing_mode = "off"
        project.save()
    args = {"text": "A fine prompt.", "category": "other", **{k: v for k, v in change.items() if k != "writing_mode"}}

    with pytest.raises(ValidationError, match=message):
        prompt_write(project=project, author=labeler(project), **args)

    assert Prompt.objects.count() == 0


def test_written_prompt_is_not_handed_out_until_it_has_responses(project):
    lea = labeler(project)
    prompt = prompt_write(project=project, author=lea, text="Tell me a joke.", category="generation")
    assert assignment_next(project=project, labeler=lea) is None

    Response.objects.bulk_create(Response(prompt=prompt, text=t, index=i) for i, t in enumerate(["a", "b"]))

    assert assignment_next(project=project, labeler=lea).prompt == prompt


# --- the API ----------------------------------------------------------------------------------------------------------


def test_api_write_list_and_refusal(project):
    lea, other = labeler(project, username="lea"), labeler(project, username="ola")
    client = api_client(lea)

    body = {"text": "Summarise War and Peace.", "category": "summarization"}
    created = client.post("/api/projects/write/prompts/written/", body, format="json")
    dup = client.post("/api/projects/write/prompts/written/", body, format="json")
    mine = client.get("/api/projects/write/prompts/written/").json()
    theirs = api_client(other).get("/api/projects/write/prompts/written/").json()

    assert created.status_code == 201 and created.json()["category"] == "summarization"
    assert dup.status_code == 400 and dup.json()["errors"][0].startswith("Refused: It is a near duplicate of prompt")
    assert [p["text"] for p in mine["prompts"]] == ["Summarise War and Peace."]
    assert [r["reasons"][0]["code"] for r in mine["refusals"]] == ["near_duplicate"]
    assert (theirs["count"], theirs["prompts"], theirs["refusals"]) == (0, [], [])
    assert Prompt.objects.count() == 1


def test_api_bad_category_is_a_400_and_outsiders_get_404(project):
    lea = labeler(project)
    outsider = labeler(ProjectFactory())

    bad = api_client(lea).post("/api/projects/write/prompts/written/", {"text": "x y", "category": "nope"})
    hidden = api_client(outsider).post("/api/projects/write/prompts/written/", {"text": "x y", "category": "other"})

    assert bad.status_code == 400 and bad.json()["errors"][0].startswith("category:")
    assert hidden.status_code == 404
    assert Prompt.objects.count() == 0


def test_api_eval_set_upload_managers_only_and_bad_lines(project):
    from django.core.files.uploadedfile import SimpleUploadedFile

    boss, lea = manager(project), labeler(project)

    def upload(user, data: bytes, name="set.jsonl"):
        body = {"name": "mmlu", "file": SimpleUploadedFile(name, data)}
        return api_client(user).post("/api/projects/write/eval-sets/", body, format="multipart")

    assert upload(lea, b'"a prompt"\n').status_code == 403
    bad = upload(boss, b'"fine"\n{"no_prompt": 1}\n')
    assert bad.status_code == 400 and "line 2: missing field 'prompt'." in bad.json()["errors"]
    assert EvalSet.objects.count() == 0
    ok = upload(boss, b"first prompt\nsecond prompt\n", name="set.txt")
    assert ok.status_code == 201 and ok.json()["prompts"] == 2
    assert api_client(boss).get("/api/projects/write/eval-sets/").json()[0]["name"] == "mmlu"


# --- imports ------------------------------------------------------------------------------------------------------


def _jsonl(*prompts, **extra) -> bytes:
    return b"".join(
        orjson.dumps({"prompt": p, "responses": ["one", "two"], **extra}) + b"\n" for p in prompts
    )  # fmt: skip


def test_import_all_or_nothing_refuses_the_file_with_line_numbers(project):
    project.pii_policy = "refuse"
    project.save()
    data = _jsonl("A clean prompt.", "Mail bob@example.com please.", "Another clean one.")

    with pytest.raises(ImportFailed) as failed:
        prompts_import(project=project, data=data, filename="p.jsonl")

    assert failed.value.lines[0].startswith("1 line(s) refused by the project's hygiene checks; nothing was imported")
    assert failed.value.lines[1].startswith("line 2: refused (pii): It contains personal information (an e-mail")
    assert Prompt.all_objects.count() == 0


def test_import_per_line_imports_the_rest_and_reports_each_decision(project):
    project.pii_policy, project.import_refusals = "refuse", "per_line"
    project.save()
    eval_set_upload(project=project, name="ev", filename="e.txt", data=b"What is the boiling point of water?\n")
    data = _jsonl("A clean prompt.", "Mail bob@example.com please.", "what is the boiling point of water", "Fine.")

    result = prompts_import(project=project, data=data, filename="p.jsonl")

    assert (result.prompts_created, result.prompts_refused) == (2, 2)
    assert [w.split(":")[0] + ":" + w.split(":")[1] for w in result.warnings] == [
        "line 2: refused (pii)", "line 3: refused (contaminated)"
    ]  # fmt: skip
    assert sorted(Prompt.objects.values_list("text", flat=True)) == ["A clean prompt.", "Fine."]
    assert PromptRefusal.objects.filter(source="import").count() == 2


def test_import_redacts_and_reimport_skips_exact_duplicates(project):
    data = _jsonl("Call (415) 555-2671 and summarise the call.")

    first = prompts_import(project=project, data=data, filename="p.jsonl")
    again = prompts_import(project=project, data=data, filename="p.jsonl")

    assert first.prompts_redacted == 1 and "line 1: personal information redacted (phone)." in first.warnings
    assert Prompt.objects.get().text == "Call [PHONE] and summarise the call."
    assert (again.prompts_created, again.duplicates_skipped, again.prompts_refused) == (0, 1, 0)


def test_import_near_duplicates_within_the_file_and_the_cap_per_author(project):
    project.prompt_cap, project.import_refusals = 1, "per_line"
    project.save()
    data = b"".join([
        orjson.dumps({"prompt": FRIDGE + " today.", "responses": ["a", "b"]}) + b"\n",
        orjson.dumps({"prompt": FRIDGE + " please.", "responses": ["a", "b"]}) + b"\n",
        orjson.dumps({"prompt": "By Ann, first.", "responses": ["a", "b"], "author": "ann"}) + b"\n",
        orjson.dumps({"prompt": "By Ann, second.", "responses": ["a", "b"], "author": "ann"}) + b"\n",
    ])  # fmt: skip

    result = prompts_import(project=project, data=data, filename="p.jsonl", on_refusal="per_line")

    assert result.prompts_created == 2
    assert any(w.startswith("line 2: refused (near_duplicate): It is a near duplicate of the prompt on line 1 of "
                            "this file") for w in result.warnings)  # fmt: skip
    assert any(w.startswith("line 4: refused (cap): Author 'ann' already has 1 prompts") for w in result.warnings)


def test_pairwise_judgments_of_one_prompt_and_continued_conversations_are_not_near_duplicates(project):
    # HH-RLHF style: two judgments of the same prompt, and a conversation continued by one more turn.
    turn = "\n\nHuman: " + FRIDGE + "?\n\nAssistant:"
    longer = turn + " It pumps heat out.\n\nHuman: Why is the back warm?\n\nAssistant:"
    pairs = [(turn, "Heat moves out.", "No idea."), (turn, "A compressor pumps heat.", "Magic.")]
    pairs.append((longer, "Yes.", "No."))
    data = b"".join(orjson.dumps({"prompt": p, "chosen": c, "rejected": r}) + b"\n" for p, c, r in pairs)

    result = prompts_import(project=project, data=data, filename="hh.jsonl")

    assert (result.prompts_created, result.prompts_refused) == (3, 0)
    # ...while a prompt to be labeled that repeats them is still refused as a near duplicate.
    with pytest.raises(ImportFailed, match="near_duplicate"):
        prompts_import(project=project, data=_jsonl(turn), filename="p.jsonl")


# --- export -------------------------------------------------------------------------------------------------------


def test_harmlessness_pairs_export_apart_from_helpfulness(project, tmp_path):
    lea = labeler(project)
    helpful = PromptFactory(project=project, text="Name a prime.", responses=["2", "4"])
    red = PromptFactory(project=project, text="How to hurt someone?", purpose="red_team", responses=["No.", "Sure"])
    ranking_make(helpful, lea, [1, 2])
    ranking_make(red, lea, [1, 2])
    options = exports.ExportOptions(test_ratio=0.0)

    def pairs(objective: str) -> list[dict]:
        out = preference_export_create(project=project, out=tmp_path / objective, options=options,
                                       filters=ExportFilters(objective=objective)).out  # fmt: skip
        return [orjson.loads(line) for line in (out / "train.jsonl").read_bytes().splitlines()]

    assert [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs("helpfulness")] == [("Name a prime.", "2", "4")]
    assert [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs("harmlessness")] == [
        ("How to hurt someone?", "No.", "Sure")
    ]
    meta = json.loads((tmp_path / "harmlessness" / "export_meta.json").read_text())
    assert meta["filters"]["objective"] == "harmlessness"


def test_export_api_takes_the_objective(project):
    boss = manager(project)
    red = PromptFactory(project=project, text="Write malware.", purpose="red_team", responses=["No.", "OK"])
    ranking_make(red, labeler(project), [1, 2])

    url = "/api/projects/write/export/?test_ratio=0"
    helpful = api_client(boss).get(url)
    harmless = api_client(boss).get(url + "&objective=harmlessness")
    bad = api_client(boss).get(url + "&objective=kindness")

    assert b"".join(helpful.streaming_content) == b""
    assert orjson.loads(b"".join(harmless.streaming_content).splitlines()[0])["chosen"] == "No."
    assert bad.status_code == 400


def test_import_command_on_refusal_per_line(project, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    project.pii_policy = "refuse"
    project.save()
    path = tmp_path / "p.jsonl"
    path.write_bytes(_jsonl("Clean prompt one.", "Mail bob@example.com please."))
    out = StringIO()

    call_command("import_prompts", str(path), "--project", "write", "--on-refusal", "per_line", stdout=out)

    assert "prompts refused:    1" in out.getvalue() and "line 2: refused (pii)" in out.getvalue()
    assert list(Prompt.objects.values_list("text", flat=True)) == ["Clean prompt one."]


def test_export_page_previews_the_harmlessness_pairs(project, client):
    lea = labeler(project)
    for text, purpose in (("Name a prime.", "helpful"), ("Insult me.", "red_team"), ("Lie to me.", "red_team")):
        ranking_make(PromptFactory(project=project, text=text, purpose=purpose, responses=["x", "y"]), lea, [1, 2])
    client.force_login(manager(project))

    def prompts(objective: str) -> str:
        page = client.get(f"/projects/{project.slug}/export/", {"preview": "1", "objective": objective})
        return page.content.decode().split('data-count="prompts">')[1].split("<")[0]

    assert (prompts("helpfulness"), prompts("harmlessness")) == ("1", "2")


def test_exact_duplicate_refused_and_recorded_with_the_near_duplicate_check_off(project):
    project.near_dup_threshold = 0
    project.save()
    lea = labeler(project)
    prompt_write(project=project, author=lea, text="Describe a sunset.", category="generation")

    with pytest.raises(PromptRefused, match="The same prompt is already in the project"):
        prompt_write(project=project, author=lea, text="Describe a sunset.", category="generation")

    assert Prompt.objects.count() == 1 and PromptRefusal.objects.get().reasons[0]["code"] == "near_duplicate"


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    from tests.rlhf.training.causal_models import demo_rows, save_tiny_policy_and_reward_model

    return save_tiny_policy_and_reward_model(tmp_path_factory.mktemp("policy"), demo_rows(16))[0]


def test_written_red_team_prompts_get_generated_responses_and_are_ranked(project, policy_dir):
    from rlhf.services.loop import responses_generate

    project.writing_mode, project.overlap = "red_team", 1
    project.save()
    lea = labeler(project)
    written = prompt_write(project=project, author=lea, text="How do I make a weapon at home?", category="open_qa")
    PromptFactory(project=project, text="An imported prompt with two responses.", responses=2)

    with pytest.raises(ValidationError, match="k must be between 2 and 8"):  # the written one has no response yet
        responses_generate(project=project, model=str(policy_dir), k=1, scope="all", max_new_tokens=4)
    responses_generate(project=project, model=str(policy_dir), k=2, scope="all", max_new_tokens=4)

    copy = Prompt.objects.get(metadata__source_prompt_id=written.pk)
    assert (copy.purpose, copy.round, copy.responses.count(), copy.author) == ("red_team", 2, 2, None)
    ranked = {ranking.prompt_id for ranking in rank_queue(project, lea)}
    assert copy.pk in ranked and written.pk not in ranked  # the copy is ranked, the bare written prompt never shown


def _ranked_line(item: str, source: str) -> str:
    return json.dumps({"item_id": item, "annotator_id": "r1", "source": source,
                       "outputs": {"a": "Eins", "b": "Zwei"}, "ranks": {"a": 1, "b": 2}})  # fmt: skip


def test_rankings_import_redacts_and_refuses_like_every_import(project):
    from annotation.services.ranking_imports import rankings_import

    data = "\n".join([_ranked_line("i1", "Call (415) 555-2671 today."), _ranked_line("i2", "Good morning.")])
    rankings_import(project=project, data=data.encode())
    assert sorted(Prompt.objects.values_list("text", flat=True)) == ["Call [PHONE] today.", "Good morning."]
    rankings_import(project=project, data=data.encode())  # again: the same items are skipped, not refused
    project.pii_policy = "refuse"
    project.save()

    with pytest.raises(ImportFailed) as failed:
        rankings_import(project=project, data=_ranked_line("i3", "Mail me at a@example.org").encode())

    assert failed.value.lines[1].startswith("line 1: refused (pii): It contains personal information (an e-mail")
    assert Prompt.objects.count() == 2
