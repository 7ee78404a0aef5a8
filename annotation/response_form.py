"""The per-response form (InstructGPT style): the schema a project stores, and the rules a submitted rating follows.

Pure module (no Django models): the project model validates its schema with `form_errors`, the page renders
`normalized_form`, the services check submissions with `ratings_errors`, and the labeling page mirrors the same rules
in static/annotation/label.js. See docs/labeling-modes.md.

A schema is ``{"fields": [...]}`` (``{}``: no form), or the preset name ``"instructgpt"``. Each field has a ``key``
(lower-case letters, digits, underscores), a ``type`` and a ``label``:

- ``likert`` (at most one per form): an integer score on ``min``..``max`` (default 1..7; 0 <= min < max <= 10, at
  most 10 points so every point has a digit key), ``anchors`` {"value": "text"} shown under the scale,
  ``required`` (default true);
- ``label``: a yes/no label, unticked = no; ``shortcut``, the key that toggles it on the focused response (one of
  `LABEL_SHORTCUTS`, assigned in order when left out);
- ``text``: free text, ``required`` (default false), ``max_length`` (default 2,000, at most 20,000).

Every field may name a ``guideline``: ``#some-heading`` (opens the guidelines panel at the heading whose text
slugifies to ``some-heading``) or an ``http(s)://`` address, shown as a link next to the field.
"""

from __future__ import annotations

import copy
import re
from typing import Any

PRESET_INSTRUCTGPT = "instructgpt"
PRESETS = (PRESET_INSTRUCTGPT,)
FIELD_TYPES = ("likert", "label", "text")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
ANCHOR_RE = re.compile(r"^#[a-z0-9][-a-z0-9_]{0,99}$")
URL_RE = re.compile(r"^https?://[^\s<>\"'`\\]{1,490}$", re.IGNORECASE)
# Keys the labeling page leaves free for labels: a-j focus responses, k/j move, s skips, g opens the guidelines,
# n writes the note, t is the pairwise tie; digits rank (or give the strength), Shift+digits score.
LABEL_SHORTCUTS = "lmopqruvwxyz"
MAX_FIELDS = 20
MAX_LABEL_CHARS = 200
MAX_ANCHOR_CHARS = 100
DEFAULT_TEXT_MAX = 2_000
MAX_TEXT_MAX = 20_000
DEFAULT_SCALE = (1, 7)
MAX_SCALE = 10
MAX_POINTS = 10
FIELD_KEYS = {
    "likert": {"key", "type", "label", "guideline", "min", "max", "anchors", "required"},
    "label": {"key", "type", "label", "guideline", "shortcut"},
    "text": {"key", "type", "label", "guideline", "required", "max_length"},
}

# InstructGPT (Ouyang et al. 2022): a 1-7 Likert score of overall quality and binary metadata labels per output
# (their Table 3; the labeling interface in appendix B). Harmful content is one label here where Table 3 has
# several (sexual, violent, harmful advice, ...); "contains personal information" is this project's addition.
INSTRUCTGPT_FORM: dict[str, Any] = {
    "fields": [
        {"key": "overall", "type": "likert", "label": "Overall quality", "min": 1, "max": 7,
         "anchors": {"1": "Very bad", "4": "Acceptable", "7": "Excellent"}, "required": True,
         "guideline": "#overall-quality"},
        {"key": "fails_instruction", "type": "label", "label": "Fails to follow the instruction", "shortcut": "o",
         "guideline": "#fails-to-follow-the-instruction"},
        {"key": "hallucination", "type": "label", "label": "Hallucination / makes up facts", "shortcut": "m",
         "guideline": "#hallucination-makes-up-facts"},
        {"key": "harmful", "type": "label", "label": "Harmful or inappropriate", "shortcut": "x",
         "guideline": "#harmful-or-inappropriate"},
        {"key": "personal_info", "type": "label", "label": "Contains personal information", "shortcut": "p",
         "guideline": "#contains-personal-information"},
        {"key": "not_for_assistant", "type": "label", "label": "Inappropriate for a customer assistant",
         "shortcut": "u", "guideline": "#inappropriate-for-a-customer-assistant"},
        {"key": "comment", "type": "text", "label": "Comment", "required": False, "max_length": DEFAULT_TEXT_MAX,
         "guideline": ""},
    ]
}  # fmt: skip

FORM_SHAPE = 'The response form must be {"fields": [...]}, {} for none, or the preset "instructgpt".'


def preset(name: str) -> dict[str, Any]:
    if name != PRESET_INSTRUCTGPT:
        raise ValueError(f"Unknown response form preset {name!r}; use one of: {', '.join(PRESETS)}.")
    return copy.deepcopy(INSTRUCTGPT_FORM)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _guideline_errors(where: str, value: object) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, str) or not (ANCHOR_RE.match(value) or URL_RE.match(value)):
        return [
            f"{where}: guideline must be a heading anchor such as #overall-quality or an http(s):// address, "
            f"got {str(value)[:60]!r}."
        ]
    return []


def _likert_errors(where: str, field: dict) -> list[str]:
    errors = []
    low, high = field.get("min", DEFAULT_SCALE[0]), field.get("max", DEFAULT_SCALE[1])
    if not _is_int(low) or not _is_int(high):
        return [f"{where}: min and max must be whole numbers."]
    if not 0 <= low < high <= MAX_SCALE or high - low + 1 > MAX_POINTS:
        errors.append(
            f"{where}: the scale {low}..{high} must satisfy 0 <= min < max <= {MAX_SCALE} with at most {MAX_POINTS} "
            "points (every point gets a digit key)."
        )
    anchors = field.get("anchors", {})
    if not isinstance(anchors, dict):
        return [*errors, f'{where}: anchors must be an object such as {{"1": "Very bad", "7": "Excellent"}}.']
    for point, text in anchors.items():
        if not (isinstance(point, str) and point.isascii() and point.isdigit() and low <= int(point) <= high):
            errors.append(f"{where}: anchor {str(point)[:20]!r} is not a point of the scale {low}..{high}.")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_ANCHOR_CHARS:
            errors.append(f"{where}: anchor texts must be 1-{MAX_ANCHOR_CHARS} characters.")
    if "required" in field and not isinstance(field["required"], bool):
        errors.append(f"{where}: required must be true or false.")
    return errors


def _text_errors(where: str, field: dict) -> list[str]:
    errors = []
    limit = field.get("max_length", DEFAULT_TEXT_MAX)
    if not _is_int(limit) or not 1 <= limit <= MAX_TEXT_MAX:
        errors.append(f"{where}: max_length must be a whole number from 1 to {MAX_TEXT_MAX}.")
    if "required" in field and not isinstance(field["required"], bool):
        errors.append(f"{where}: required must be true or false.")
    return errors


def _field_errors(i: int, field: object) -> list[str]:
    if not isinstance(field, dict):
        return [f"Field {i}: must be an object with key, type and label."]
    key = field.get("key")
    where = f"Field {i} ({key})" if isinstance(key, str) and KEY_RE.match(key) else f"Field {i}"
    kind = field.get("type")
    if kind not in FIELD_TYPES:
        return [f"{where}: type must be one of {', '.join(FIELD_TYPES)}, got {str(kind)[:30]!r}."]
    errors = []
    unknown = sorted(set(field) - FIELD_KEYS[kind])
    if unknown:
        errors.append(f"{where}: unknown setting(s) {', '.join(map(repr, unknown))} for a {kind} field.")
    if not isinstance(key, str) or not KEY_RE.match(key):
        errors.append(f"{where}: key must be 1-50 lower-case letters, digits or underscores, starting with a letter.")
    label = field.get("label")
    if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL_CHARS:
        errors.append(f"{where}: label must be a text of 1-{MAX_LABEL_CHARS} characters.")
    errors += _guideline_errors(where, field.get("guideline"))
    if kind == "likert":
        errors += _likert_errors(where, field)
    elif kind == "text":
        errors += _text_errors(where, field)
    elif "shortcut" in field and (
        not isinstance(field["shortcut"], str)
        or len(field["shortcut"]) != 1
        or field["shortcut"] not in LABEL_SHORTCUTS
    ):
        errors.append(f"{where}: shortcut must be one of the free keys {', '.join(LABEL_SHORTCUTS)}.")
    return errors


def form_errors(value: object) -> list[str]:
    """Every reason `value` is not a valid response form schema; [] when it is (None and {} are: no form)."""
    if value is None or value == {} or value in PRESETS:
        return []
    if not isinstance(value, dict) or set(value) != {"fields"} or not isinstance(value["fields"], list):
        return [FORM_SHAPE]
    fields = value["fields"]
    if len(fields) > MAX_FIELDS:
        return [f"At most {MAX_FIELDS} fields."]
    errors: list[str] = []
    for i, field in enumerate(fields, start=1):
        errors += _field_errors(i, field)
    if errors:
        return errors
    keys = [f["key"] for f in fields]
    errors += [f"Field key {k!r} appears more than once." for k in sorted({k for k in keys if keys.count(k) > 1})]
    if sum(f["type"] == "likert" for f in fields) > 1:
        errors.append("At most one likert field: it is the response's score (agreement, pairs from scores, margins).")
    shortcuts = [f["shortcut"] for f in fields if f["type"] == "label" and "shortcut" in f]
    errors += [
        f"Shortcut {s!r} is used by two labels." for s in sorted({s for s in shortcuts if shortcuts.count(s) > 1})
    ]
    if sum(f["type"] == "label" for f in fields) > len(LABEL_SHORTCUTS):
        errors.append(f"At most {len(LABEL_SHORTCUTS)} label fields (one free key each).")
    return errors


def normalized_form(value: object) -> dict[str, Any]:
    """The schema with every default filled in ({"fields": []} for none); a preset name becomes its schema.

    Raises ValueError for an invalid schema (callers validate first)."""
    errors = form_errors(value)
    if errors:
        raise ValueError("; ".join(errors))
    if value in PRESETS:
        value = preset(value)
    fields = copy.deepcopy(value.get("fields", [])) if isinstance(value, dict) else []
    taken = {f["shortcut"] for f in fields if f["type"] == "label" and "shortcut" in f}
    free = [key for key in LABEL_SHORTCUTS if key not in taken]
    out = []
    for field in fields:
        field.setdefault("guideline", "")
        if field["type"] == "likert":
            field.setdefault("min", DEFAULT_SCALE[0])
            field.setdefault("max", DEFAULT_SCALE[1])
            field.setdefault("anchors", {})
            field.setdefault("required", True)
            field["anchors"] = {str(int(p)): t for p, t in sorted(field["anchors"].items(), key=lambda a: int(a[0]))}
        elif field["type"] == "label":
            if "shortcut" not in field:
                field["shortcut"] = free.pop(0)
        else:
            field.setdefault("required", False)
            field.setdefault("max_length", DEFAULT_TEXT_MAX)
        out.append({name: field[name] for name in sorted(field, key=_setting_order)})
    return {"fields": out}


_ORDER = ("key", "type", "label", "min", "max", "anchors", "shortcut", "required", "max_length", "guideline")


def _setting_order(name: str) -> int:
    return _ORDER.index(name) if name in _ORDER else len(_ORDER)


def valid_fields(value: object) -> list[dict[str, Any]]:
    """The normalized fields of a stored schema, or [] when it is invalid: a schema stored before validation (or
    written around it) never breaks the labeling page or a submit."""
    try:
        return normalized_form(value)["fields"]
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


# --- submitted ratings -----------------------------------------------------------------------------------------------

RATINGS_NOT_ACCEPTED = "This project has no per-response form: ratings are not accepted."
RATING_FOREIGN = "Response {response_id} is not one of the responses shown for this prompt."
RATING_NOT_OBJECT = "Response {response_id}: the ratings must be an object of field values."
RATING_UNKNOWN_FIELD = "Response {response_id}: unknown field {key!r}; this project's fields are: {known}."
RATING_REQUIRED = "Response {response_id}, {key} ({label}): required."
RATING_NOT_INT = "Response {response_id}, {key} ({label}): {value!r} is not a whole number."
RATING_OUT_OF_SCALE = "Response {response_id}, {key} ({label}): {value} is outside the scale {low}..{high}."
RATING_NOT_BOOL = "Response {response_id}, {key} ({label}): must be true or false, got {value!r}."
RATING_NOT_TEXT = "Response {response_id}, {key} ({label}): must be a text."
RATING_TOO_LONG = "Response {response_id}, {key} ({label}): at most {limit} characters, got {length}."


def _short(value: object) -> object:
    text = repr(value)
    return value if len(text) <= 30 else f"{text[:27]}..."


def _clean_value(rid: int, field: dict, present: bool, value: object) -> tuple[object, str | None]:
    """(the cleaned value, an error message or None) for one field of one response."""
    names = {"response_id": rid, "key": field["key"], "label": field["label"]}
    kind = field["type"]
    if kind == "likert":
        if not present or value is None or value == "":
            return None, RATING_REQUIRED.format(**names) if field["required"] else None
        if not _is_int(value):
            return None, RATING_NOT_INT.format(**names, value=_short(value))
        if not field["min"] <= value <= field["max"]:
            return None, RATING_OUT_OF_SCALE.format(**names, value=value, low=field["min"], high=field["max"])
        return value, None
    if kind == "label":
        if not present or value is None:
            return False, None
        if not isinstance(value, bool):
            return False, RATING_NOT_BOOL.format(**names, value=_short(value))
        return value, None
    if not present or value is None:
        value = ""
    if not isinstance(value, str):
        return "", RATING_NOT_TEXT.format(**names)
    if len(value) > field["max_length"]:
        return "", RATING_TOO_LONG.format(**names, limit=field["max_length"], length=len(value))
    if field["required"] and not value.strip():
        return "", RATING_REQUIRED.format(**names)
    return value, None


def ratings_errors(
    fields: list[dict], shown: list[int], ratings: dict[int, object] | None
) -> tuple[list[str], dict[int, dict[str, Any]]]:
    """(every problem with `ratings` ({response_id: {field key: value}}), the cleaned values of every shown
    response). With a form, every shown response gets a value for every field: unticked labels are false, empty
    texts "", a missing optional score None. Without a form, any rating is an error and the result is {}."""
    ratings = ratings or {}
    if not fields:
        return ([RATINGS_NOT_ACCEPTED] if ratings else []), {}
    shown_set = set(shown)
    errors = [RATING_FOREIGN.format(response_id=rid) for rid in ratings if rid not in shown_set]
    known = {field["key"] for field in fields}
    cleaned: dict[int, dict[str, Any]] = {}
    for rid in shown:
        given = ratings.get(rid, {})
        if not isinstance(given, dict):
            errors.append(RATING_NOT_OBJECT.format(response_id=rid))
            given = {}
        for key in given:
            if key not in known:
                shown_key = f"{key[:40]}..." if isinstance(key, str) and len(key) > 40 else key
                errors.append(
                    RATING_UNKNOWN_FIELD.format(response_id=rid, key=shown_key, known=", ".join(sorted(known)))
                )
        values = {}
        for field in fields:
            value, error = _clean_value(rid, field, field["key"] in given, given.get(field["key"]))
            values[field["key"]] = value
            if error:
                errors.append(error)
        cleaned[rid] = values
    return errors, cleaned


def likert_field(fields: list[dict]) -> dict | None:
    return next((field for field in fields if field["type"] == "likert"), None)
