"""Serializers shared by several API operations. Operation-specific ones are nested in their APIView.

Nothing labeler-facing here names a response's model: ResponseSerializer has `id` and `text` only.
"""

from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from annotation.models import (
    MAX_FLAG_OPTIONS,
    MAX_LEASE_MINUTES,
    MAX_OVERLAP,
    MAX_RESPONSES,
    MAX_REVISION_HOURS,
    MIN_RESPONSES,
    STRENGTH_LEVELS,
    Guideline,
    Membership,
    Project,
    RevisionPolicy,
)
from annotation.response_form import MAX_FIELDS
from annotation.selectors import role_in_project

RANK_DUPLICATE = "Response {response_id} is ranked more than once."
RATING_DUPLICATE = "Response {response_id} is rated more than once."
FLAG_KEY_DUPLICATE = "Flag key {key!r} appears more than once."


class ErrorSerializer(serializers.Serializer):
    errors = serializers.ListField(child=serializers.CharField(), help_text="Readable messages, one per problem.")
    code = serializers.CharField(
        help_text="Stable error code: invalid, parse_error, not_authenticated, authentication_failed, "
        "permission_denied, not_found, method_not_allowed, throttled, server_error, database_unavailable, ..."
    )
    detail = serializers.CharField(required=False, help_text="Errors other than 400: DRF's message.")
    fields = serializers.DictField(required=False, help_text="Per-field errors, when the input had fields.")


def paginated(name: str, child: serializers.Serializer) -> serializers.Serializer:
    """The schema of a LimitOffsetPagination page of `child` items."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": child,
        },
    )


class FlagOptionSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=50)
    label = serializers.CharField(max_length=200)


class ProjectSettingsSerializer(serializers.Serializer):
    """The editable settings of a project (create and update)."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    overlap = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_OVERLAP, help_text="Distinct labelers wanted per prompt."
    )
    lease_minutes = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_LEASE_MINUTES, help_text="Minutes a labeler holds a task."
    )
    allow_ties = serializers.BooleanField(required=False)
    rationale_required = serializers.BooleanField(required=False)
    flag_options = FlagOptionSerializer(many=True, required=False)
    responses_per_task = serializers.IntegerField(
        required=False, allow_null=True, min_value=MIN_RESPONSES, max_value=MAX_RESPONSES,
        help_text="Show at most this many responses per task (null: all).",
    )  # fmt: skip
    gold_rate = serializers.FloatField(required=False, min_value=0, max_value=1)
    render_markdown = serializers.BooleanField(
        required=False, help_text="Show prompts and responses as rendered markdown (false: plain text)."
    )
    kind = serializers.ChoiceField(
        choices=Project.Kind.choices, required=False,
        help_text="ranking (default) or pairwise (A / B / tie with a strength); fixed once it has rankings or tasks.",
    )  # fmt: skip
    response_form = serializers.JSONField(
        required=False,
        help_text='Per-response form: {"fields": [...]}, the preset "instructgpt", or {} for none. Checked on save '
        "(docs/labeling-modes.md); stored with every default filled in.",
    )
    strength_labels = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, min_length=STRENGTH_LEVELS,
        max_length=STRENGTH_LEVELS, help_text="Pairwise: the four strength names, strongest first.",
    )  # fmt: skip
    strength_margins = serializers.ListField(
        child=serializers.FloatField(min_value=0, max_value=1000), required=False, min_length=STRENGTH_LEVELS,
        max_length=STRENGTH_LEVELS, help_text="Pairwise: the export's margin per strength level (default 3, 2, 1, 0).",
    )  # fmt: skip

    revision_policy = serializers.ChoiceField(
        required=False, choices=RevisionPolicy.choices,
        help_text="When labelers may revise their own rankings: never, until_closed or within_hours.",
    )  # fmt: skip
    revision_hours = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_REVISION_HOURS,
        help_text="With within_hours: hours after the first submission during which a ranking may be revised.",
    )  # fmt: skip
    overlap_mode = serializers.ChoiceField(
        required=False, choices=["fixed", "adaptive"],
        help_text="adaptive: overlap_min labelers first, one more (up to overlap) while they disagree.",
    )  # fmt: skip
    overlap_min = serializers.IntegerField(required=False, min_value=1, max_value=MAX_OVERLAP)
    adaptive_agreement = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    qualification_required = serializers.BooleanField(
        required=False, help_text="New labelers rank the qualification prompts first and start once they pass."
    )
    qualification_threshold = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    writing_mode = serializers.ChoiceField(
        required=False, choices=["off", "prompts", "red_team"],
        help_text="Labelers write prompts (prompts) or red-team prompts (red_team) on the writing page; off: no.",
    )  # fmt: skip
    prompt_cap = serializers.IntegerField(
        required=False, min_value=0, max_value=1_000_000, help_text="Prompts per author in the project (0: no cap)."
    )
    pii_policy = serializers.ChoiceField(
        required=False, choices=["redact", "refuse", "off"],
        help_text="Personal information in a new prompt: redact it, refuse the prompt, or no check.",
    )  # fmt: skip
    near_dup_threshold = serializers.FloatField(
        required=False, min_value=0.0, max_value=1.0,
        help_text="Refuse a new prompt this similar (MinHash Jaccard) to a project or evaluation prompt (0: off).",
    )  # fmt: skip
    import_refusals = serializers.ChoiceField(
        required=False, choices=["all_or_nothing", "per_line"],
        help_text="Imports: a refused line fails the file (all_or_nothing) or is left out and reported (per_line).",
    )  # fmt: skip
    feedback_every = serializers.IntegerField(
        required=False, min_value=0, max_value=1000,
        help_text="Labelers see their agreement feedback after every N rankings (0: never).",
    )  # fmt: skip
    closed = serializers.BooleanField(
        required=False, help_text="true closes the project (no prompts handed out, no rankings or revisions taken)."
    )

    def validate(self, attrs: dict) -> dict:
        if "closed" in attrs:
            attrs["closed_at"] = timezone.now() if attrs.pop("closed") else None
        return attrs

    def validate_flag_options(self, options: list[dict]) -> list[dict]:
        keys = [option["key"] for option in options]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise serializers.ValidationError([FLAG_KEY_DUPLICATE.format(key=key) for key in duplicates])
        return [dict(option) for option in options]


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="The caller's role: admin, manager or labeler.")

    class Meta:
        model = Project
        fields = [
            "id", "name", "slug", "description", "overlap", "lease_minutes", "allow_ties", "rationale_required",
            "flag_options", "responses_per_task", "gold_rate", "render_markdown", "kind", "response_form",
            "strength_labels", "strength_margins", "revision_policy", "revision_hours",
            "feedback_every", "overlap_mode", "overlap_min", "adaptive_agreement",
            "qualification_required", "qualification_threshold", "writing_mode", "prompt_cap", "pii_policy",
            "near_dup_threshold", "import_refusals", "closed_at", "created_at", "role",
        ]  # fmt: skip

    @extend_schema_field(serializers.ChoiceField(choices=["admin", "manager", "labeler"]))
    def get_role(self, project: Project) -> str | None:
        if hasattr(project, "my_role"):  # annotated by projects_with_role_for_user
            return project.my_role
        return role_in_project(user=self.context["request"].user, project=project)


class GuidelineSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Guideline
        fields = ["version", "text", "created_by", "created_at"]


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["username", "role", "excluded", "created_at"]


def user_by_username_field() -> serializers.SlugRelatedField:
    return serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        error_messages={"does_not_exist": "No user named {value}."},
    )


MAX_ID = 2**63 - 1  # ids beyond a 64-bit column would overflow the database driver
MAX_TIME_SPENT_S = 7 * 24 * 3600


class RankSerializer(serializers.Serializer):
    response_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    rank = serializers.IntegerField(help_text="1 = best; equal ranks are a tie.")


class RatingSerializer(serializers.Serializer):
    response_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    values = serializers.DictField(
        help_text="{field key: value}: the likert score (an integer), labels (true/false; left out = false), "
        "texts (strings)."
    )

    def validate_values(self, values: dict) -> dict:
        if len(values) > MAX_FIELDS:
            raise serializers.ValidationError(f"At most {MAX_FIELDS} fields.")
        return values


class RankingInputSerializer(serializers.Serializer):
    """A judgment: a rank for every shown response, optional flags, rationale and time spent; with a per-response
    form the ratings of every shown response; in a pairwise project the strength (a tie has none)."""

    ranks = RankSerializer(many=True, allow_empty=False, max_length=MAX_RESPONSES)
    flags = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, default=list, max_length=MAX_FLAG_OPTIONS
    )
    rationale = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    time_spent_s = serializers.FloatField(
        required=False, allow_null=True, default=None, min_value=0, max_value=MAX_TIME_SPENT_S
    )
    ratings = RatingSerializer(
        many=True, required=False, default=list, max_length=MAX_RESPONSES,
        help_text="Projects with a per-response form: [{response_id, values}] for the shown responses; checked "
        "against the form (a missing required score, a score off the scale or an unknown field is a 400).",
    )  # fmt: skip
    strength = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=-(2**31), max_value=2**31 - 1,
        help_text="Pairwise projects: how much better the response ranked 1 is, 1 (strongest) to 4; null for a tie.",
    )  # fmt: skip

    @classmethod
    def validated(cls, data) -> dict:
        """`cls(data=data).validated_data`, a ValidationError (400) on any problem. The plain judgment (integer ranks
        of distinct responses, optionally a time spent, empty flags and a blank rationale) is checked by hand: DRF
        deep-copies this nested serializer's fields for every instance, which cost more than storing the ranking on
        the labeling hot path (bench/labeling_load.py). Anything else goes through the serializer, so every error
        is its own; tests/annotation/api/test_ranking_input.py checks that both ways give the same result."""
        plain = _plain_ranking_input(data)
        if plain is not None:
            return plain
        serializer = cls(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def validate_ratings(self, ratings: list[dict]) -> dict[int, dict]:
        """[{response_id, values}, ...] -> {response_id: values}; a repeated id is an error."""
        ids = [item["response_id"] for item in ratings]
        duplicates = sorted({rid for rid in ids if ids.count(rid) > 1})
        if duplicates:
            raise serializers.ValidationError([RATING_DUPLICATE.format(response_id=rid) for rid in duplicates])
        return {item["response_id"]: item["values"] for item in ratings}

    def validate_ranks(self, ranks: list[dict]) -> dict[int, int]:
        """[{response_id, rank}, ...] -> {response_id: rank}, as the services take it; a repeated id is an error."""
        ids = [item["response_id"] for item in ranks]
        duplicates = sorted({rid for rid in ids if ids.count(rid) > 1})
        if duplicates:
            raise serializers.ValidationError([RANK_DUPLICATE.format(response_id=rid) for rid in duplicates])
        return {item["response_id"]: item["rank"] for item in ranks}


_PLAIN_KEYS = frozenset({"ranks", "time_spent_s", "flags", "rationale"})


def _plain_ranking_input(data) -> dict | None:
    """RankingInputSerializer's validated data for a judgment it accepts as is, None for anything else (to be left
    to the serializer): only JSON's own types, no conversions, no duplicates, nothing out of range."""
    if type(data) is not dict or not data.keys() <= _PLAIN_KEYS:
        return None
    ranks = data.get("ranks")
    if type(ranks) is not list or not 0 < len(ranks) <= MAX_RESPONSES:
        return None
    by_id = {}
    for item in ranks:
        if type(item) is not dict or len(item) != 2:
            return None
        rid, rank = item.get("response_id"), item.get("rank")
        if type(rid) is not int or type(rank) is not int or not 1 <= rid <= MAX_ID or rid in by_id:
            return None
        by_id[rid] = rank
    spent = data.get("time_spent_s")
    if spent is not None:
        if type(spent) not in (int, float) or not 0 <= spent <= MAX_TIME_SPENT_S:  # NaN fails the comparison
            return None
        spent = float(spent)
    if data.get("flags", []) != [] or data.get("rationale", "") != "":
        return None
    return {"ranks": by_id, "flags": [], "rationale": "", "time_spent_s": spent, "ratings": {}, "strength": None}


class RankingCreatedSerializer(serializers.Serializer):
    ranking_id = serializers.IntegerField()
    created = serializers.BooleanField(help_text="False when an identical ranking was already stored.")
    version = serializers.IntegerField()


class LabelerProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="Rankings I submitted in this project.")
    assigned = serializers.IntegerField(help_text="Tasks I hold a live lease on.")
    project_rankings = serializers.IntegerField()
    project_target = serializers.IntegerField(help_text="Prompts times overlap.")
