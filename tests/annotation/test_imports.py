"""prompts_import against the real database: formats, all-or-nothing errors with line numbers, duplicates, pairs."""

import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from annotation.importing import MAX_TEXT_CHARS
from annotation.models import Membership, Prompt, Ranking, RankingEntry, Response
from annotation.services.imports import IMPORTED_ANNOTATOR, ImportFailed, prompts_import
from tests.factories import ProjectFactory

DATA = Path(__file__).resolve().parents[1] / "data"
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _jsonl(*rows) -> bytes:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows).encode()


def _import(project, data: bytes, filename: str = "prompts.jsonl", kind: str = "auto"):
    return prompts_import(project=project, data=data, filename=filename, kind=kind)


def _assert_rejected(project, data: bytes, expected: list[str], filename: str = "prompts.jsonl", kind: str = "auto"):
    """The import fails with exactly these error lines and leaves the database untouched."""
    with pytest.raises(ImportFailed) as failed:
        _import(project, data, filename, kind)
    assert failed.value.lines == expected
    assert failed.value.messages == expected
    assert Prompt.objects.count() == 0
    assert Response.objects.count() == 0
    assert Ranking.objects.count() == 0


GOOD = {"prompt": "A good prompt.", "responses": ["first", "second"]}


# --- formats ------------------------------------------------------------------------------------------------------


def test_jsonl_file_imports_prompts_with_responses_models_and_metadata(db):
    project = ProjectFactory()

    result = _import(project, (DATA / "prompts_valid.jsonl").read_bytes())

    assert (result.kind, result.prompts_created, result.responses_created, result.rankings_created) == (
        "prompts",
        3,
        8,
        0,
    )
    assert result.warnings == [] and result.duplicates_skipped == 0
    capital = Prompt.objects.get(project=project, external_id="q1")
    assert (capital.text, capital.category, capital.source) == ("What is the capital of France?", "qa", "hand-written")
    assert capital.metadata == {"difficulty": "easy"}
    assert capital.messages is None
    assert list(capital.responses.values_list("index", "text", "model_name")) == [
        (0, "Paris.", "policy-v1"),
        (1, "Lyon.", "sft-base"),
        (2, "The capital of France is Paris, on the Seine.", "policy-v2"),
    ]
    assert capital.responses.get(index=2).metadata == {"temperature": 0.7}
    haiku = Prompt.objects.get(external_id="g1")
    assert list(haiku.responses.values_list("model_name", flat=True)) == ["", "", ""]
    assert haiku.responses.get(index=0).text.count("\n") == 2


def test_csv_file_imports_prompts_with_models_category_and_extra_columns_as_metadata(db):
    project = ProjectFactory()

    result = _import(project, (DATA / "prompts_valid.csv").read_bytes(), "prompts.csv")

    assert (result.kind, result.prompts_created, result.responses_created) == ("prompts", 2, 5)
    summary = Prompt.objects.get(external_id="s1")
    assert (summary.category, summary.metadata) == ("summarization", {"difficulty": "easy"})
    assert list(summary.responses.values_list("text", "model_name")) == [
        ("The meeting is now on Friday.", "policy-v1"),
        ("Meeting moved.", "sft-base"),
        ("The meeting was cancelled.", "policy-v2"),
    ]
    code = Prompt.objects.get(external_id="k1")
    assert code.metadata == {}
    assert list(code.responses.values_list("text", flat=True)) == [
        "def add(a, b):\n    return a + b",
        "def add(a, b): return a - b",
    ]


def test_chat_prompt_keeps_its_messages_and_renders_the_turns_as_text(db):
    project = ProjectFactory()

    _import(project, (DATA / "prompts_valid.jsonl").read_bytes())

    chat = Prompt.objects.get(external_id="c1")
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant", "user"]
    assert chat.messages[-1] == {"role": "user", "content": "About a week."}
    assert chat.text.startswith("System: You are a helpful assistant.\n\nUser: I can't sleep.")
    assert chat.text.endswith("User: About a week.")
    assert chat.responses.count() == 2


def test_chat_prompt_with_unknown_role_is_rejected(db):
    bad = {"prompt": [{"role": "wizard", "content": "hi"}], "responses": ["a", "b"]}
    _assert_rejected(
        ProjectFactory(),
        _jsonl(bad),
        ["line 1: chat message 1 has unknown role 'wizard' (use ['assistant', 'system', 'tool', 'user'])."],
    )


def test_utf8_byte_order_mark_at_the_start_is_accepted(db):
    project = ProjectFactory()

    result = _import(project, b"\xef\xbb\xbf" + _jsonl({"prompt": "Café?", "responses": ["Oui.", "Non."]}))

    assert result.prompts_created == 1
    assert Prompt.objects.get(project=project).text == "Café?"


# --- all-or-nothing: every bad line, with its number and reason ---------------------------------------------------


def test_file_with_several_bad_lines_imports_nothing_and_reports_every_bad_line(db):
    project = ProjectFactory()

    _assert_rejected(
        project,
        (DATA / "bad_many.jsonl").read_bytes(),
        [
            "line 2: missing field 'prompt'.",
            "line 4: 'prompt' is empty.",
            "line 5: invalid JSON: Expecting ',' delimiter (column 50).",
            "line 6: 1 responses; a prompt needs 2 to 10.",
        ],
    )
    assert not get_user_model().objects.filter(username=IMPORTED_ANNOTATOR).exists()


def test_missing_field_is_reported_with_its_line_number(db):
    _assert_rejected(
        ProjectFactory(), _jsonl(GOOD, {"prompt": "No responses key."}), ["line 2: missing field 'responses'."]
    )


def test_missing_fields_of_a_pairwise_line_are_all_named(db):
    _assert_rejected(
        ProjectFactory(),
        _jsonl({"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "p2"}),
        ["line 2: missing field 'chosen', 'rejected'."],
        kind="pairwise",
    )


def test_empty_response_text_is_reported(db):
    _assert_rejected(
        ProjectFactory(), _jsonl(GOOD, {"prompt": "Fine.", "responses": ["ok", ""]}), ["line 2: response 2 is empty."]
    )


def test_fewer_than_two_responses_is_reported(db):
    _assert_rejected(
        ProjectFactory(),
        _jsonl({"prompt": "One.", "responses": ["only"]}, GOOD),
        ["line 1: 1 responses; a prompt needs 2 to 10."],
    )


def test_more_than_ten_responses_is_reported(db):
    eleven = {"prompt": "Eleven.", "responses": [f"response {i}" for i in range(11)]}
    _assert_rejected(ProjectFactory(), _jsonl(GOOD, eleven), ["line 2: 11 responses; a prompt needs 2 to 10."])


def test_ten_responses_are_accepted(db):
    project = ProjectFactory()
    result = _import(project, _jsonl({"prompt": "Ten.", "responses": [f"response {i}" for i in range(10)]}))
    assert (result.prompts_created, result.responses_created) == (1, 10)


def test_oversized_text_is_reported(db):
    huge = {"prompt": "x" * (MAX_TEXT_CHARS + 1), "responses": ["a", "b"]}
    _assert_rejected(
        ProjectFactory(),
        _jsonl(GOOD, huge),
        [f"line 2: 'prompt' is {MAX_TEXT_CHARS + 1:,} characters long; the limit is {MAX_TEXT_CHARS:,}."],
    )


def test_invalid_json_is_reported(db):
    _assert_rejected(
        ProjectFactory(),
        _jsonl(GOOD, '{"prompt": "unterminated', "[1, 2"),
        [
            "line 2: invalid JSON: Unterminated string starting at (column 12).",
            "line 3: invalid JSON: Expecting ',' delimiter (column 6).",
        ],
    )


def test_json_line_that_is_not_an_object_is_reported(db):
    _assert_rejected(ProjectFactory(), _jsonl(GOOD, "[1, 2]"), ["line 2: expected a JSON object, got list."])


def test_invalid_utf8_bytes_are_reported_with_their_line(db):
    data = _jsonl(GOOD) + b'{"prompt": "caf\xe9", "responses": ["a", "b"]}\n'
    _assert_rejected(
        ProjectFactory(), data, ["line 2: bad encoding: not UTF-8 (invalid continuation byte at byte 15)."]
    )


def test_invalid_utf8_bytes_in_csv_are_reported(db):
    data = b'prompt,response_1,response_2\n"ok","a","b"\n"caf\xe9","a","b"\n'
    _assert_rejected(
        ProjectFactory(),
        data,
        ["line 3: bad encoding: not UTF-8 (invalid continuation byte at byte 4)."],
        filename="prompts.csv",
    )


def test_csv_bad_rows_are_each_reported_and_nothing_imported(db):
    _assert_rejected(
        ProjectFactory(),
        (DATA / "bad_rows.csv").read_bytes(),
        [
            "line 3: more values than header columns.",
            "line 4: 'prompt' is empty.",
            "line 5: 1 responses; a prompt needs 2 to 10.",
        ],
        filename="prompts.csv",
    )


def test_csv_without_a_prompt_column_is_rejected(db):
    _assert_rejected(
        ProjectFactory(),
        b"question,response_1,response_2\nq,a,b\n",
        ["line 1: missing column 'prompt' in the header row."],
        filename="prompts.csv",
    )


def test_prompts_file_forced_to_pairwise_reports_missing_chosen_and_rejected(db):
    _assert_rejected(ProjectFactory(), _jsonl(GOOD), ["line 1: missing field 'chosen', 'rejected'."], kind="pairwise")


def test_empty_file_is_rejected(db):
    _assert_rejected(ProjectFactory(), b"\n\n", ["The file holds no prompts."])


def test_file_over_the_size_limit_is_rejected_before_parsing(db, settings):
    settings.IMPORT_MAX_BYTES = 10
    data = _jsonl(GOOD)
    _assert_rejected(ProjectFactory(), data, [f"The file is {len(data)} bytes; the limit is 10 bytes."])


# --- duplicates and warnings --------------------------------------------------------------------------------------


def test_exact_duplicate_within_the_file_is_skipped_with_a_warning(db):
    project = ProjectFactory()
    same_set_reordered = {"prompt": "A good prompt.", "responses": ["second", "first"]}

    result = _import(project, _jsonl(GOOD, {"prompt": "Other.", "responses": ["x", "y"]}, same_set_reordered))

    assert (result.prompts_created, result.duplicates_skipped) == (2, 1)
    assert result.warnings == ["line 3: exact duplicate of line 1: skipped."]
    assert Prompt.objects.filter(project=project, text="A good prompt.").count() == 1


def test_exact_duplicate_of_a_prompt_already_in_the_project_is_skipped_with_a_warning(db):
    project = ProjectFactory()
    _import(project, _jsonl(GOOD))

    result = _import(project, _jsonl({"prompt": "New.", "responses": ["x", "y"]}, GOOD))

    assert (result.prompts_created, result.responses_created, result.duplicates_skipped) == (1, 2, 1)
    assert result.warnings == ["line 2: exact duplicate of a prompt already in the project: skipped."]
    assert Prompt.objects.filter(project=project).count() == 2


def test_same_prompt_with_different_responses_is_not_a_duplicate(db):
    # not an exact duplicate; the hygiene's near-duplicate check (on by default, tests/annotation/test_hygiene_service)
    # would refuse the same prompt text, so this project turns it off
    project = ProjectFactory(near_dup_threshold=0)
    _import(project, _jsonl(GOOD))

    result = _import(project, _jsonl({"prompt": "A good prompt.", "responses": ["first", "third"]}))

    assert (result.prompts_created, result.duplicates_skipped, result.warnings) == (1, 0, [])


def test_same_prompt_in_another_project_is_not_a_duplicate(db):
    _import(ProjectFactory(), _jsonl(GOOD))
    other = ProjectFactory()

    result = _import(other, _jsonl(GOOD))

    assert (result.prompts_created, result.duplicates_skipped) == (1, 0)
    assert Prompt.objects.filter(project=other).count() == 1


def test_identical_responses_within_a_prompt_warn_but_are_kept(db):
    project = ProjectFactory()

    result = _import(project, _jsonl({"prompt": "Two models agree.", "responses": ["Same.", "Same.", "Different."]}))

    assert result.prompts_created == 1 and result.duplicates_skipped == 0
    assert result.warnings == ["line 1: identical responses within this prompt (kept: two models can agree)."]
    assert list(Prompt.objects.get(project=project).responses.values_list("text", flat=True)) == [
        "Same.",
        "Same.",
        "Different.",
    ]


# --- pairwise (TRL preference format) -----------------------------------------------------------------------------


def _assert_imported_pairs(project, expected_chosen: dict[str, str]):
    """Each prompt has two responses and one imported ranking by the inactive `imported` user, chosen ranked 1."""
    annotator = get_user_model().objects.get(username=IMPORTED_ANNOTATOR)
    assert not annotator.is_active and not annotator.has_usable_password()
    assert Membership.objects.get(project=project, user=annotator).role == Membership.Role.LABELER
    for prompt_text, chosen in expected_chosen.items():
        prompt = Prompt.objects.get(project=project, text=prompt_text)
        assert prompt.responses.count() == 2
        assert prompt.ranking_count == 1 and not prompt.is_complete
        ranking = Ranking.objects.get(prompt=prompt)
        assert (ranking.labeler, ranking.source, ranking.num_responses) == (annotator, Ranking.Source.IMPORTED, 2)
        assert ranking.guideline_version == 1
        entries = {e.response.text: e.rank for e in ranking.entries.select_related("response")}
        assert entries[chosen] == 1
        assert sorted(entries.values()) == [1, 2]
        assert ranking.shown_order == list(prompt.responses.order_by("index").values_list("id", flat=True))


def test_pairwise_jsonl_becomes_prompts_with_two_responses_and_one_imported_ranking_each(db):
    project = ProjectFactory()

    result = _import(project, (DATA / "pairwise.jsonl").read_bytes())

    assert (result.kind, result.prompts_created, result.responses_created, result.rankings_created) == (
        "pairwise",
        3,
        6,
        3,
    )
    _assert_imported_pairs(
        project,
        {
            "\n\nHuman: What is 2+2?\n\nAssistant:": " 4.",
            "\n\nHuman: Name a primary colour.\n\nAssistant:": " Red.",
            "User: Say hi politely.": "Hello, nice to meet you!",
        },
    )
    assert Prompt.objects.get(external_id="p1").source == "hand"
    assert RankingEntry.objects.count() == 6


def test_pairwise_csv_becomes_prompts_with_imported_rankings(db):
    project = ProjectFactory()

    result = _import(project, (DATA / "pairwise.csv").read_bytes(), "pairs.csv")

    assert (result.kind, result.prompts_created, result.rankings_created) == ("pairwise", 2, 2)
    _assert_imported_pairs(
        project, {"Is the Earth flat?": "No, it is an oblate spheroid.", "Translate 'merci' to English.": "Thank you."}
    )


def test_reimporting_a_pairwise_file_adds_no_second_ranking(db):
    project = ProjectFactory()
    _import(project, (DATA / "pairwise.jsonl").read_bytes())

    result = _import(project, (DATA / "pairwise.jsonl").read_bytes())

    assert (result.prompts_created, result.rankings_created, result.duplicates_skipped) == (0, 0, 3)
    assert Ranking.objects.filter(project=project).count() == 3


def test_hh_helpful_dev_file_loads_759_prompts_with_759_imported_rankings(db):
    path = SHARED_DATA / "hh_helpful_dev.jsonl"
    assert path.is_file(), f"Real data file missing: {path} (the shared data folder must sit beside the repository)"
    project = ProjectFactory(slug="hh-dev")

    result = _import(project, path.read_bytes(), path.name)

    assert (result.kind, result.prompts_created, result.responses_created, result.rankings_created) == (
        "pairwise",
        759,
        1518,
        759,
    )
    assert Prompt.objects.filter(project=project).count() == 759
    assert Ranking.objects.filter(project=project, source=Ranking.Source.IMPORTED, is_current=True).count() == 759
    assert RankingEntry.objects.filter(ranking__project=project, rank=1).count() == 759
    first = json.loads(path.open(encoding="utf-8").readline())
    prompt = Prompt.objects.get(project=project, external_id=first["id"])
    winner = prompt.rankings.get().entries.get(rank=1).response
    assert winner.text == first["chosen"] and prompt.source == first["source"]


def test_hh_helpful_train_file_loads_every_judgment_under_the_default_hygiene(db):
    # 3,843 judgments, among them one prompt judged twice and conversations continued by one more turn: with the
    # default hygiene (near duplicates at 0.9, all or nothing) none may be refused (docs/labeling-modes.md §5).
    path = SHARED_DATA / "hh_helpful_train.jsonl"
    assert path.is_file(), f"Real data file missing: {path} (the shared data folder must sit beside the repository)"
    project = ProjectFactory(slug="hh-train")

    result = _import(project, path.read_bytes(), path.name)

    assert (result.kind, result.prompts_created, result.rankings_created, result.prompts_refused) == (
        "pairwise",
        3843,
        3843,
        0,
    )
