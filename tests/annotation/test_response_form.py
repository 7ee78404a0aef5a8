"""The per-response form's schema and the rules a submitted rating follows (pure: annotation/response_form.py)."""

import pytest

from annotation import response_form as rf

LIKERT = {"key": "overall", "type": "likert", "label": "Overall quality"}


def test_the_instructgpt_preset_is_valid_and_normalizes_to_itself():
    assert rf.form_errors("instructgpt") == []
    form = rf.normalized_form("instructgpt")
    assert rf.normalized_form(form) == form
    kinds = [f["type"] for f in form["fields"]]
    assert kinds == ["likert", "label", "label", "label", "label", "label", "text"]
    likert = form["fields"][0]
    assert (likert["min"], likert["max"], likert["required"]) == (1, 7, True)
    assert [f["label"] for f in form["fields"] if f["type"] == "label"] == [
        "Fails to follow the instruction",
        "Hallucination / makes up facts",
        "Harmful or inappropriate",
        "Contains personal information",
        "Inappropriate for a customer assistant",
    ]


def test_defaults_are_filled_in_and_label_shortcuts_assigned_from_the_free_keys():
    form = rf.normalized_form(
        {"fields": [LIKERT, {"key": "a", "type": "label", "label": "A", "shortcut": "l"},
                    {"key": "b", "type": "label", "label": "B"}, {"key": "note", "type": "text", "label": "Note"}]}
    )  # fmt: skip
    likert, a, b, note = form["fields"]
    assert likert | {} == {"key": "overall", "type": "likert", "label": "Overall quality", "min": 1, "max": 7,
                           "anchors": {}, "required": True, "guideline": ""}  # fmt: skip
    assert (a["shortcut"], b["shortcut"]) == ("l", "m")  # "l" taken, so b gets the next free key
    assert (note["required"], note["max_length"]) == (False, rf.DEFAULT_TEXT_MAX)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ([LIKERT], "must be {"),
        ({"fields": [LIKERT], "extra": 1}, "must be {"),
        ({"fields": [{"key": "x", "type": "slider", "label": "X"}]}, "type must be one of likert, label, text"),
        ({"fields": [LIKERT | {"min": 0, "max": 11}]}, "the scale 0..11"),
        ({"fields": [LIKERT | {"min": 5, "max": 5}]}, "the scale 5..5"),
        ({"fields": [LIKERT | {"min": "1"}]}, "min and max must be whole numbers"),
        ({"fields": [LIKERT | {"anchors": {"9": "Superb"}}]}, "anchor '9' is not a point of the scale 1..7"),
        ({"fields": [LIKERT | {"anchors": {"1": ""}}]}, "anchor texts must be 1-100 characters"),
        ({"fields": [LIKERT, LIKERT | {"key": "second"}]}, "At most one likert field"),
        ({"fields": [LIKERT, LIKERT]}, "Field key 'overall' appears more than once"),
        ({"fields": [LIKERT | {"key": "Bad Key"}]}, "key must be 1-50 lower-case letters"),
        ({"fields": [LIKERT | {"label": ""}]}, "label must be a text of 1-200 characters"),
        ({"fields": [LIKERT | {"colour": "red"}]}, "unknown setting(s) 'colour'"),
        ({"fields": [LIKERT | {"guideline": "javascript:alert(1)"}]}, "guideline must be a heading anchor"),
        ({"fields": [LIKERT | {"guideline": "#<script>"}]}, "guideline must be a heading anchor"),
        ({"fields": [LIKERT | {"guideline": "https://x.org/<svg onload=alert(1)>"}]}, "guideline must be a heading"),
        ({"fields": [LIKERT | {"guideline": 'https://x.org/" onmouseover="alert(1)'}]}, "guideline must be a"),
        ({"fields": [{"key": "x", "type": "label", "label": "X", "shortcut": "a"}]}, "shortcut must be one of"),
        ({"fields": [{"key": "x", "type": "label", "label": "X", "shortcut": "l"},
                     {"key": "y", "type": "label", "label": "Y", "shortcut": "l"}]}, "Shortcut 'l' is used by two"),
        ({"fields": [{"key": "t", "type": "text", "label": "T", "max_length": 0}]}, "max_length must be"),
        ({"fields": [{"key": "t", "type": "text", "label": "T", "required": "yes"}]}, "required must be true or"),
        ("alpaca", "must be {"),
    ],
)  # fmt: skip
def test_bad_schemas_say_what_is_wrong(schema, message):
    errors = rf.form_errors(schema)
    assert any(message in error for error in errors), errors
    assert rf.valid_fields(schema) == []  # never breaks a page: an invalid stored schema is no form


def test_guideline_may_be_an_anchor_or_an_http_address():
    for guideline in ("#overall-quality", "https://example.com/guide#score", "http://wiki.local/x", ""):
        assert rf.form_errors({"fields": [LIKERT | {"guideline": guideline}]}) == [], guideline


FIELDS = rf.normalized_form("instructgpt")["fields"]


def test_ratings_are_cleaned_with_labels_false_and_texts_empty_by_default():
    ratings = {10: {"overall": 6, "hallucination": True}, 11: {"overall": 2}}
    errors, cleaned = rf.ratings_errors(FIELDS, [10, 11], ratings)
    assert errors == []
    assert cleaned[10] == {"overall": 6, "fails_instruction": False, "hallucination": True, "harmful": False,
                           "personal_info": False, "not_for_assistant": False, "comment": ""}  # fmt: skip
    assert cleaned[11]["overall"] == 2 and cleaned[11]["hallucination"] is False


@pytest.mark.parametrize(
    ("ratings", "message"),
    [
        ({10: {"overall": 6}}, "Response 11, overall (Overall quality): required."),
        ({10: {"overall": 8}, 11: {"overall": 1}}, "Response 10, overall (Overall quality): 8 is outside the scale"),
        ({10: {"overall": 0}, 11: {"overall": 1}}, "0 is outside the scale 1..7"),
        ({10: {"overall": "6"}, 11: {"overall": 1}}, "'6' is not a whole number"),
        ({10: {"overall": True}, 11: {"overall": 1}}, "True is not a whole number"),
        ({10: {"overall": 6.5}, 11: {"overall": 1}}, "6.5 is not a whole number"),
        ({10: {"overall": 6, "nope": True}, 11: {"overall": 1}}, "Response 10: unknown field 'nope'"),
        ({10: {"overall": 6, "harmful": "yes"}, 11: {"overall": 1}}, "harmful (Harmful or inappropriate): must be"),
        ({10: {"overall": 6, "comment": 5}, 11: {"overall": 1}}, "comment (Comment): must be a text"),
        ({10: {"overall": 6, "comment": "x" * 2001}, 11: {"overall": 1}}, "at most 2000 characters, got 2001"),
        ({10: {"overall": 6}, 11: {"overall": 1}, 99: {"overall": 1}}, "Response 99 is not one of the responses"),
        ({10: [6], 11: {"overall": 1}}, "Response 10: the ratings must be an object"),
    ],
)  # fmt: skip
def test_bad_ratings_name_the_response_and_the_field(ratings, message):
    errors, _ = rf.ratings_errors(FIELDS, [10, 11], ratings)
    assert any(message in error for error in errors), errors


def test_without_a_form_ratings_are_refused_and_none_is_fine():
    assert rf.ratings_errors([], [1, 2], {}) == ([], {})
    assert rf.ratings_errors([], [1, 2], {1: {"overall": 3}})[0] == [rf.RATINGS_NOT_ACCEPTED]


def test_optional_score_and_required_text():
    fields = rf.normalized_form(
        {"fields": [LIKERT | {"required": False}, {"key": "why", "type": "text", "label": "Why", "required": True}]}
    )["fields"]
    errors, cleaned = rf.ratings_errors(fields, [1], {1: {"why": "  "}})
    assert errors == ["Response 1, why (Why): required."]
    errors, cleaned = rf.ratings_errors(fields, [1], {1: {"why": "clear"}})
    assert errors == [] and cleaned[1] == {"overall": None, "why": "clear"}
