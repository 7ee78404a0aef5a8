"""Browser forms: parse what a page posted into the arguments of one service call (rules stay in the services)."""

from django import forms

RANK_FIELD_PREFIX = "rank_"
RANK_BAD_FIELD = "Unknown field {name!r}: rank fields are named rank_<response id>."
RATING_FIELD_PREFIX = "rating_"
RATING_BAD_FIELD = "Unknown field {name!r}: rating fields are named rating_<response id>_<field key>."
CHECKED = ("1", "on", "true")
RATIONALE_MAX_CHARS = 20_000


MAX_RANK_DIGITS = 6


def _plain_int(value: str) -> int | str:
    """ASCII digits become an int; anything else ("²", "①", "٣", a 5,000-digit number) stays a string, which the
    service reports as not a whole number. str.isdigit() alone accepts "²" and "①", which int() then refuses."""
    if value.isascii() and value.isdigit() and len(value) <= MAX_RANK_DIGITS:
        return int(value)
    return value


class RankingSubmitForm(forms.Form):
    """The labeling page's POST: `rank_<response_id>` per response, `flags` (repeated), `rationale`, `time_spent_s`;
    with a per-response form `rating_<response_id>_<field key>` per field (a ticked label posts "1", an unticked one
    nothing); pairwise projects post `strength` (1-4).

    Rank, score and strength values are passed on as posted (a non-number stays a string) so that `ranking_submit`
    reports every problem with the same messages as the page and the API.
    """

    rationale = forms.CharField(required=False, strip=False, max_length=RATIONALE_MAX_CHARS)
    time_spent_s = forms.FloatField(required=False, min_value=0)

    def __init__(self, *args, fields: list[dict] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.rating_fields = {field["key"]: field for field in fields or []}

    def clean(self) -> dict:
        cleaned = super().clean()
        cleaned["ranks"] = self._ranks()
        cleaned["flags"] = [flag for flag in self.data.getlist("flags") if flag]
        cleaned["rationale"] = cleaned.get("rationale") or ""
        cleaned["ratings"] = self._ratings()
        strength = self.data.get("strength", "").strip()
        cleaned["strength"] = _plain_int(strength) if strength else None
        return cleaned

    def _ratings(self) -> dict[int, dict]:
        """{response id: {field key: value}}: scores as numbers (else the posted text), ticked labels true, texts as
        posted. Unknown keys are passed on for the service to report."""
        ratings: dict[int, dict] = {}
        for name, value in self.data.items():
            if not name.startswith(RATING_FIELD_PREFIX):
                continue
            _, _, rest = name.partition(RATING_FIELD_PREFIX)
            rid_text, _, key = rest.partition("_")
            response_id = _plain_int(rid_text)
            if not isinstance(response_id, int) or not key:
                self.add_error(None, RATING_BAD_FIELD.format(name=name[:60]))
                continue
            kind = self.rating_fields.get(key, {}).get("type")
            if kind == "likert":
                value = _plain_int(value.strip()) if value.strip() else None
            elif kind == "label":
                value = value.strip().lower() in CHECKED
            ratings.setdefault(response_id, {})[key] = value
        return ratings

    def _ranks(self) -> dict[int, object]:
        ranks: dict[int, object] = {}
        for name, value in self.data.items():
            if not name.startswith(RANK_FIELD_PREFIX):
                continue
            response_id = _plain_int(name.removeprefix(RANK_FIELD_PREFIX))
            if not isinstance(response_id, int):
                self.add_error(None, RANK_BAD_FIELD.format(name=name[:40]))
                continue
            value = value.strip()
            if value:  # an empty field is an unranked response: the service reports it as missing
                ranks[response_id] = _plain_int(value)
        return ranks


class GuidelinePublishForm(forms.Form):
    text = forms.CharField(
        label="New version (markdown)",
        widget=forms.Textarea(attrs={"rows": 14, "class": "markdown-input"}),
        help_text="Publishing creates a new version; earlier versions are kept and rankings remember theirs.",
    )
