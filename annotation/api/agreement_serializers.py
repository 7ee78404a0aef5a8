"""Serializers of the agreement, gold-prompt and labeler-exclusion operations (managers and admins only).

The agreement report is `annotation.services.agreement.agreement_report_get`'s dict, returned as is; the
serializers below describe it in the OpenAPI schema (a test checks they name every key the service returns).
Floats are rounded to 4 places; a figure that is undefined (e.g. alpha with a single labeler) is null.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation.agreement import DEFAULT_TIE_CODING, TIE_CODINGS
from annotation.api.serializers import RankSerializer
from annotation.models import Prompt

MAX_BOOT = 2000
RANK_DUPLICATE = "Response {response_id} is ranked more than once."


def _figure(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, required=False, help_text=help_text)


def _interval(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.FloatField(allow_null=True), min_length=2, max_length=2, help_text=help_text
    )


class AgreementQuerySerializer(serializers.Serializer):
    n_boot = serializers.IntegerField(
        min_value=0, max_value=MAX_BOOT, default=200, help_text="Bootstrap resamples for the intervals (0: none)."
    )
    seed = serializers.IntegerField(min_value=0, default=0, help_text="Seed of the bootstrap (same seed, same CIs).")
    tie_coding = serializers.ChoiceField(
        choices=TIE_CODINGS,
        default=DEFAULT_TIE_CODING,
        help_text="How Krippendorff's alpha codes tied ranks: average (1, 1, 2 -> 1.5, 1.5, 3; the default, "
        "Kendall's mid-ranks) or dense (1, 1, 2). docs/agreement.md.",
    )


class IntervalsSerializer(serializers.Serializer):
    alpha_ordinal = _interval("95% bootstrap interval over prompts: [low, high].")
    alpha_interval = _interval("95% bootstrap interval over prompts: [low, high].")
    kendall_w_mean = _interval("95% bootstrap interval over prompts: [low, high].")
    pairwise_agreement_ties_dropped = _interval("95% bootstrap interval over prompts: [low, high].")
    pairwise_agreement_ties_as_outcome = _interval("95% bootstrap interval over prompts: [low, high].")


class HistogramSerializer(serializers.Serializer):
    edges = serializers.ListField(child=serializers.FloatField(), help_text="Bin edges from 0 to 1.")
    counts = serializers.ListField(child=serializers.IntegerField(), help_text="Prompts per bin.")


class LowPromptSerializer(serializers.Serializer):
    prompt_id = serializers.IntegerField()
    text = serializers.CharField(help_text="The first 200 characters.")
    pairwise_agreement = _figure("Pairwise agreement on this prompt (ties dropped).")
    n_labelers = serializers.IntegerField()


class LabelerRowSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    excluded = serializers.BooleanField(help_text="Left out of the project figures by a manager (rankings kept).")
    removed = serializers.BooleanField(help_text="No longer a member of the project (their rankings are kept).")
    outlier = serializers.BooleanField(
        help_text="Agreement with the others' consensus significantly below the other labelers' (one-sided "
        "Mann-Whitney U test, Holm-adjusted p < 0.05; docs/agreement.md)."
    )
    outlier_p_value = _figure("Holm-adjusted p-value, for outliers.")
    n_rankings = serializers.IntegerField()
    agreement = _figure("Mean Kendall tau-b with the leave-one-out consensus of the other labelers.")
    n_agreement_undefined = serializers.IntegerField(
        help_text="Rankings left out of `agreement`: tau-b undefined (fewer than two responses shared with the "
        "prompt's other labelers, or everything tied)."
    )
    position_bias = _figure("Correlation of the rank given with the position shown (0: none).")
    median_seconds = _figure("Median time per prompt.")
    flag_rate = _figure("Share of rankings with at least one flag.")
    gold_accuracy = _figure("Share of gold pairs ordered as the reference (ties count 1/2); null without gold.")
    n_gold_pairs = serializers.IntegerField()


class FlagRowSerializer(serializers.Serializer):
    flag = serializers.CharField()
    label = serializers.CharField()
    rate = _figure("Share of rankings with this flag.")
    kappa = _figure("Fleiss' kappa of the flag over prompts.")


class BreakdownSerializer(serializers.Serializer):
    group = serializers.CharField(help_text="A category, a guideline version (-1: none) or an ISO week.")
    n_prompts = serializers.IntegerField()
    n_rankings = serializers.IntegerField()
    pairwise_agreement_ties_dropped = _figure("Within the group.")
    alpha_ordinal = _figure("Within the group.")


class LeaderboardRowSerializer(serializers.Serializer):
    model = serializers.CharField()
    rating = _figure("Bradley-Terry strength on the Elo scale.")
    low = _figure("95% bootstrap interval over prompts (null without bootstrap).")
    high = _figure("95% bootstrap interval over prompts (null without bootstrap).")
    n_comparisons = serializers.IntegerField()
    win_rate = _figure("Share of comparisons won (ties count 1/2).")
    component = serializers.IntegerField(
        help_text="The connected component of the comparison graph the model lies in (0 when it is connected)."
    )


class ScoreAgreementSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="The likert field's key.")
    label = serializers.CharField()
    scale = serializers.ListField(child=serializers.IntegerField(), help_text="[min, max].")
    n_rated = serializers.IntegerField(help_text="Ratings with a score.")
    mean = _figure("Mean score.")
    alpha_interval = _figure("Krippendorff's alpha, interval level: units = responses, coders = labelers.")
    interval = _interval("95% bootstrap interval of alpha_interval over prompts (nulls when n_boot = 0).")
    alpha_ordinal = _figure("Krippendorff's alpha, ordinal level.")
    n_units = serializers.IntegerField(help_text="Responses scored by at least two labelers.")


class LabelAgreementSerializer(serializers.Serializer):
    field = serializers.CharField()
    label = serializers.CharField()
    n_rated = serializers.IntegerField()
    rate = _figure("Share of ratings answering yes.")
    alpha_nominal = _figure("Krippendorff's alpha, nominal level.")
    interval = _interval("95% bootstrap interval of alpha_nominal over prompts (nulls when n_boot = 0).")
    kappa = _figure("Fleiss' kappa over responses (unequal numbers of raters allowed).")
    n_units = serializers.IntegerField(help_text="Responses rated by at least two labelers.")


class TextFieldCountSerializer(serializers.Serializer):
    field = serializers.CharField()
    label = serializers.CharField()
    n_filled = serializers.IntegerField(help_text="Ratings with a non-empty text (no agreement for free text).")


class ResponseFormAgreementSerializer(serializers.Serializer):
    n_ratings = serializers.IntegerField(help_text="Per-response ratings counted.")
    n_labelers = serializers.IntegerField()
    score = ScoreAgreementSerializer(allow_null=True, help_text="Null when the form has no likert field.")
    labels = LabelAgreementSerializer(many=True)
    texts = TextFieldCountSerializer(many=True)


class AgreementReportSerializer(serializers.Serializer):
    """A project without rankings returns only `project`, `n_rankings`, `n_prompts` and `n_labelers` (all 0)."""

    project = serializers.SlugField()
    n_rankings = serializers.IntegerField(help_text="Current rankings counted (no gold prompts, no excluded).")
    n_prompts = serializers.IntegerField()
    n_labelers = serializers.IntegerField()
    alpha_ordinal = _figure("Krippendorff's alpha over (prompt, response) units, ordinal level.")
    alpha_interval = _figure("Krippendorff's alpha, interval level.")
    alpha_nominal = _figure("Krippendorff's alpha, nominal level.")
    alpha_ratio = _figure("Krippendorff's alpha, ratio level.")
    tie_coding = serializers.ChoiceField(
        choices=TIE_CODINGS, required=False, help_text="How alpha coded tied ranks: average or dense."
    )
    kendall_w_mean = _figure("Kendall's W with the tie correction, mean over prompts.")
    pairwise_agreement_ties_dropped = _figure("Share of labeler pairs preferring the same response; ties dropped.")
    pairwise_agreement_ties_as_outcome = _figure("Same, with a tie as a third outcome that must match.")
    intervals = IntervalsSerializer(required=False, help_text="Absent when n_boot = 0.")
    per_prompt_histogram = HistogramSerializer(required=False)
    lowest_prompts = LowPromptSerializer(many=True, required=False)
    labelers = LabelerRowSerializer(many=True, required=False, help_text="Best agreement first.")
    flags = FlagRowSerializer(many=True, required=False)
    by_category = BreakdownSerializer(many=True, required=False)
    by_guideline_version = BreakdownSerializer(many=True, required=False)
    over_time = BreakdownSerializer(many=True, required=False)
    leaderboard = LeaderboardRowSerializer(many=True, required=False)
    leaderboard_components = serializers.ListField(
        child=LeaderboardRowSerializer(many=True),
        required=False,
        help_text="When the comparison graph is disconnected: one leaderboard per component, fitted on its own "
        "comparisons (ratings compare only within a component). Empty when connected.",
    )
    leaderboard_warnings = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Disconnected comparison graph; Bradley-Terry fit not converged. Empty when neither.",
    )
    response_form = ResponseFormAgreementSerializer(
        required=False, allow_null=True,
        help_text="Agreement on each field of the per-response form; null when the project has no form.",
    )  # fmt: skip
    n_boot = serializers.IntegerField(required=False)


class AgreementLabelersSerializer(serializers.Serializer):
    project = serializers.SlugField()
    labelers = LabelerRowSerializer(many=True)


class WinRateSerializer(serializers.Serializer):
    win_rate = serializers.FloatField(allow_null=True, help_text="Pairs won / pairs judged (ties count 1/2).")
    low = serializers.FloatField(allow_null=True, help_text="95% bootstrap interval over prompts (null: 1 prompt).")
    high = serializers.FloatField(allow_null=True)
    wins = serializers.FloatField()
    pairs = serializers.IntegerField()
    judgments = serializers.IntegerField()
    prompts = serializers.IntegerField()


class ComparisonReportSerializer(serializers.Serializer):
    run_id = serializers.IntegerField()
    round = serializers.IntegerField()
    policy = serializers.CharField()
    reference = serializers.CharField()
    prompts = serializers.IntegerField()
    rankings = serializers.IntegerField()
    simulated_rankings = serializers.IntegerField(help_text="Rankings made by the demo's simulated labelers.")
    few_prompts = serializers.BooleanField(help_text="Fewer than 10 prompts ranked: the interval is rough.")
    human = WinRateSerializer(help_text="The policy's win rate against the reference by the labelers' rankings.")
    rm = WinRateSerializer(allow_null=True, help_text="The reward model's predicted win rate (its scores).")


class AgreementLeaderboardSerializer(serializers.Serializer):
    project = serializers.SlugField()
    n_boot = serializers.IntegerField()
    leaderboard = LeaderboardRowSerializer(many=True)
    components = serializers.ListField(
        child=LeaderboardRowSerializer(many=True), help_text="Per-component leaderboards; empty when connected."
    )
    warnings = serializers.ListField(child=serializers.CharField(), help_text="Disconnected graph, no convergence.")
    comparisons = ComparisonReportSerializer(
        many=True, help_text="Blind comparison batches of a new policy against its reference, newest first."
    )


class GoldSetInputSerializer(serializers.Serializer):
    ranks = RankSerializer(many=True, allow_empty=False, help_text="A rank for every response of the prompt.")
    qualification = serializers.BooleanField(
        required=False, default=False,
        help_text="Also make it one of the qualification prompts new labelers rank first (if the project asks).",
    )  # fmt: skip

    def validate_ranks(self, ranks: list[dict]) -> dict[int, int]:
        ids = [item["response_id"] for item in ranks]
        duplicates = sorted({rid for rid in ids if ids.count(rid) > 1})
        if duplicates:
            raise serializers.ValidationError([RANK_DUPLICATE.format(response_id=rid) for rid in duplicates])
        return {item["response_id"]: item["rank"] for item in ranks}


class GoldPromptSerializer(serializers.ModelSerializer):
    """A gold prompt with its reference ranking (managers only: it names the models)."""

    class GoldResponseSerializer(serializers.Serializer):
        response_id = serializers.IntegerField(source="id")
        text = serializers.CharField()
        model_name = serializers.CharField()
        rank = serializers.IntegerField(help_text="Reference rank (1 = best; ties share a rank).")

    prompt_id = serializers.IntegerField(source="id")
    responses = serializers.SerializerMethodField()

    class Meta:
        model = Prompt
        fields = ["prompt_id", "text", "category", "is_gold", "is_qualification", "responses"]

    @extend_schema_field(GoldResponseSerializer(many=True))
    def get_responses(self, prompt: Prompt) -> list[dict]:
        reference = prompt.gold_ranks or {}
        rows = [
            {"id": r.id, "text": r.text, "model_name": r.model_name, "rank": reference[str(r.id)]}
            for r in prompt.responses.all()
            if str(r.id) in reference
        ]
        rows.sort(key=lambda row: (row["rank"], row["id"]))
        return self.GoldResponseSerializer(rows, many=True).data


class ExclusionInputSerializer(serializers.Serializer):
    excluded = serializers.BooleanField(
        help_text="true: keep this member's rankings but leave them out of agreement and exports; false: count them."
    )
