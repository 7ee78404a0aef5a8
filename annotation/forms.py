"""Browser forms: parse what a page posted into the arguments of one service call (rules stay in the services)."""

from django import forms

RANK_FIELD_PREFIX = "rank_"
RANK_BAD_FIELD = "Unknown field {name!r}: rank fields are named rank_<response id>."
RATIONALE_MAX_CHARS = 20_000


MAX_RANK_DIGITS = 6


def _plain_int(value: str) -> int | str:
    """ASCII digits become an int; anything else ("²", "①", "٣", a 5,000-digit number) stays a string, which the
    service reports as not a whole number. str.isdigit() alone accepts "²" and "①", which int() then refuses."""
    if value.isascii() and value.isdigit() and len(value) <= MAX_RANK_DIGITS:
        return int(value)
    return value


class RankingSubmitForm(forms.Form):
    """The labeling page's POST: `rank_<response_id>` per response, `flags` (repeated), `rationale`, `time_spent_s`.

    Rank values are passed on as posted (a non-number stays a string) so that `ranking_submit` reports every problem
    with the same messages as the page and the API.
    """

    rationale = forms.CharField(required=False, strip=False, max_length=RATIONALE_MAX_CHARS)
    time_spent_s = forms.FloatField(required=False, min_value=0)

    def clean(self) -> dict:
        cleaned = super().clean()
        cleaned["ranks"] = self._ranks()
        cleaned["flags"] = [flag for flag in self.data.getlist("flags") if flag]
        cleaned["rationale"] = cleaned.get("rationale") or ""
        return cleaned

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
