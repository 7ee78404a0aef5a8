"""Agreement figures, gold prompts and labeler exclusion: managers and admins only. A project's labelers get 403
(they never see others' rankings, nor which prompts are gold); outsiders get 404."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from annotation.api.agreement_serializers import (
    AgreementLabelersSerializer,
    AgreementLeaderboardSerializer,
    AgreementQuerySerializer,
    AgreementReportSerializer,
    ExclusionInputSerializer,
    GoldPromptSerializer,
    GoldSetInputSerializer,
)
from annotation.api.permissions import project_for
from annotation.api.serializers import MembershipSerializer, paginated
from annotation.api.views.base import PAGE_PARAMETERS, BaseApi, errors
from annotation.selectors_comparisons import policy_comparisons_get
from annotation.services.agreement import agreement_report_get
from annotation.services.gold import gold_prompts_get, prompt_gold_set, prompt_gold_unset
from annotation.services.projects import membership_set
from annotation.services.qualification import qualification_prompt_set

AGREEMENT = ["agreement"]

BOOT_PARAMETERS = [
    OpenApiParameter("n_boot", int, description="Bootstrap resamples for the 95% intervals, 0..2000 (default 200)."),
    OpenApiParameter("seed", int, description="Bootstrap seed (default 0): the same seed gives the same intervals."),
    OpenApiParameter(
        "tie_coding", str, enum=["average", "dense"],
        description="How Krippendorff's alpha codes tied ranks: average (default, mid-ranks) or dense.",
    ),
]  # fmt: skip


def _query(request) -> dict:
    query = AgreementQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


class AgreementReportApi(BaseApi):
    @extend_schema(
        operation_id="agreement_report", tags=AGREEMENT, parameters=BOOT_PARAMETERS,
        responses={200: AgreementReportSerializer, **errors(400, 403, 404)},
        description="Every agreement figure of the project: headline figures with 95% bootstrap intervals over "
        "prompts, the per-prompt distribution, the per-labeler table, flags, breakdowns by category, guideline "
        "version and week, the lowest-agreement prompts and the model leaderboard. Gold prompts and excluded "
        "labelers are left out of the project figures (excluded labelers stay in `labelers`, marked).",
    )  # fmt: skip
    def get(self, request, slug: str):
        project = project_for(request, slug, manage=True)
        return Response(agreement_report_get(project=project, **_query(request)))


class AgreementLabelersApi(BaseApi):
    @extend_schema(
        operation_id="agreement_labelers", tags=AGREEMENT,
        responses={200: AgreementLabelersSerializer, **errors(403, 404)},
    )  # fmt: skip
    def get(self, request, slug: str):
        """The per-labeler table: agreement with the others' consensus, outliers, gold accuracy, speed, flags."""
        project = project_for(request, slug, manage=True)
        report = agreement_report_get(project=project, n_boot=0)
        return Response({"project": project.slug, "labelers": report.get("labelers", [])})


class AgreementLeaderboardApi(BaseApi):
    @extend_schema(
        operation_id="agreement_leaderboard", tags=AGREEMENT, parameters=BOOT_PARAMETERS,
        responses={200: AgreementLeaderboardSerializer, **errors(400, 403, 404)},
    )  # fmt: skip
    def get(self, request, slug: str):
        """Models by Bradley-Terry strength (Elo scale) from the ranked responses, with bootstrap intervals; with a
        disconnected comparison graph or a fit that did not converge, `warnings` says so and `components` holds one
        leaderboard per connected component. `comparisons`: each blind batch of a new policy against its reference,
        the labelers' win rate (interval: bootstrap over prompts) next to the reward model's predicted one."""
        project = project_for(request, slug, manage=True)
        query = _query(request)
        report = agreement_report_get(project=project, **query)
        return Response(
            {
                "project": project.slug,
                "n_boot": query["n_boot"],
                "leaderboard": report.get("leaderboard", []),
                "components": report.get("leaderboard_components", []),
                "warnings": report.get("leaderboard_warnings", []),
                "comparisons": policy_comparisons_get(
                    project=project, n_boot=max(query["n_boot"], 1), seed=query["seed"]
                ),
            }
        )


class GoldListApi(BaseApi):
    @extend_schema(
        operation_id="gold_list", tags=AGREEMENT, parameters=PAGE_PARAMETERS,
        responses={200: paginated("GoldPromptPage", GoldPromptSerializer(many=True)), **errors(403, 404)},
    )  # fmt: skip
    def get(self, request, slug: str):
        """The project's gold prompts with their reference rankings (managers and admins)."""
        project = project_for(request, slug, manage=True)
        return self.paginated(request, gold_prompts_get(project=project), GoldPromptSerializer)


class PromptGoldSetApi(BaseApi):
    @extend_schema(
        operation_id="prompt_gold_set", tags=AGREEMENT, request=GoldSetInputSerializer,
        responses={200: GoldPromptSerializer, **errors(400, 403, 404)},
        description="Mark a prompt gold with a reference ranking of ALL its responses (1 = best, ties share a "
        "rank, dense), or replace its reference. Labelers see gold prompts like any other; their rankings of it "
        "count towards gold accuracy instead of agreement. Managers and admins.",
    )  # fmt: skip
    def post(self, request, slug: str, prompt_id: int):
        project = project_for(request, slug, manage=True)
        prompt = get_object_or_404(project.prompts, pk=prompt_id)
        data = GoldSetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        set_reference = qualification_prompt_set if data.validated_data["qualification"] else prompt_gold_set
        prompt = set_reference(prompt=prompt, ranks=data.validated_data["ranks"])
        return Response(GoldPromptSerializer(prompt).data)


class PromptGoldUnsetApi(BaseApi):
    @extend_schema(
        operation_id="prompt_gold_unset", tags=AGREEMENT,
        responses={204: OpenApiResponse(description="The prompt is an ordinary prompt (again)."), **errors(403, 404)},
    )  # fmt: skip
    def delete(self, request, slug: str, prompt_id: int):
        """Make a gold prompt ordinary again: its rankings count towards agreement and its overlap."""
        project = project_for(request, slug, manage=True)
        prompt_gold_unset(prompt=get_object_or_404(project.prompts, pk=prompt_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MembershipExclusionSetApi(BaseApi):
    @extend_schema(
        operation_id="membership_exclusion_set", tags=AGREEMENT, request=ExclusionInputSerializer,
        responses={200: MembershipSerializer, **errors(400, 403, 404)},
        description="Exclude a member's rankings from agreement figures and exports, or count them again. "
        "Nothing is deleted; the member stays in the per-labeler table, marked `excluded`. Managers and admins.",
    )  # fmt: skip
    def post(self, request, slug: str, username: str):
        project = project_for(request, slug, manage=True)
        membership = get_object_or_404(project.memberships.select_related("user"), user__username=username)
        data = ExclusionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = membership_set(
            project=project, user=membership.user, role=membership.role, excluded=data.validated_data["excluded"]
        )
        return Response(MembershipSerializer(membership).data)
