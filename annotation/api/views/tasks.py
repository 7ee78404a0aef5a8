"""The labeling queue and the caller's own rankings. Nothing here ever names the model behind a response."""

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from annotation.api.permissions import project_for
from annotation.api.serializers import (
    LabelerProgressSerializer,
    RankingCreatedSerializer,
    RankingInputSerializer,
    RankSerializer,
    RatingSerializer,
    paginated,
)
from annotation.api.views.base import PAGE_PARAMETERS, BaseApi, errors
from annotation.models import Project, Prompt, Ranking
from annotation.models import Response as ResponseModel
from annotation.selectors import assignment_get_for_labeler, labeler_progress_get, rankings_for_labeler, task_responses
from annotation.services.assignments import assignment_next, assignment_skip
from annotation.services.rankings import NotAMember, ProjectClosed, RevisionClosed, ranking_revise, ranking_submit

TASKS = ["tasks"]
RANKINGS = ["rankings"]
NO_SUCH_RANKING = "No such ranking."
NO_SUCH_TASK = "No such task."


class TaskNextApi(BaseApi):
    class OutputSerializer(serializers.Serializer):
        class PromptSerializer(serializers.ModelSerializer):
            class Meta:
                model = Prompt
                fields = ["id", "text", "messages", "category"]

        class ResponseSerializer(serializers.ModelSerializer):
            class Meta:
                model = ResponseModel
                fields = ["id", "text"]  # never model_name: labelers must not know which model wrote what

        assignment_id = serializers.IntegerField()
        kind = serializers.ChoiceField(choices=Project.Kind.choices, help_text="ranking or pairwise.")
        prompt = PromptSerializer()
        responses = ResponseSerializer(many=True, help_text="In the order this labeler sees them (pairwise: A, B).")
        response_form = serializers.JSONField(
            help_text='The per-response form to fill in for every response: {"fields": [...]} ({} for none).'
        )
        strength_labels = serializers.ListField(
            child=serializers.CharField(), help_text="Pairwise: the names of strength 1 (strongest) to 4; else []."
        )
        expires_at = serializers.DateTimeField(help_text="The lease: submit before this, or the task may move on.")
        progress = LabelerProgressSerializer()

    @extend_schema(
        operation_id="task_next", tags=TASKS, request=None,
        responses={
            200: OutputSerializer,
            204: OpenApiResponse(description="Nothing left for this labeler in the project."),
            **errors(404),
        },
    )  # fmt: skip
    def post(self, request, slug: str):
        """My next task in the project (my unfinished one first), leased to me until `expires_at`."""
        project = project_for(request, slug)
        assignment = assignment_next(project=project, labeler=request.user)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        prompt = assignment.prompt
        # Built by hand (the shape OutputSerializer documents): this is the hottest endpoint, and nested
        # ModelSerializers cost more than the database work here.
        fields = project.response_fields
        task = {
            "assignment_id": assignment.id,
            "kind": project.kind,
            "prompt": {"id": prompt.id, "text": prompt.text, "messages": prompt.messages, "category": prompt.category},
            "responses": [{"id": r.id, "text": r.text} for r in task_responses(assignment=assignment)],
            "response_form": {"fields": fields} if fields else {},
            "strength_labels": [c["label"] for c in project.strength_choices] if project.is_pairwise else [],
            "expires_at": serializers.DateTimeField().to_representation(assignment.expires_at),
            "progress": labeler_progress_get(project=project, labeler=request.user),
        }
        return Response(task)


class TaskSubmitApi(BaseApi):
    class InputSerializer(RankingInputSerializer):
        pass

    @extend_schema(
        operation_id="task_submit", tags=TASKS, request=InputSerializer,
        responses={
            201: RankingCreatedSerializer,
            200: OpenApiResponse(RankingCreatedSerializer, description="An identical ranking was already stored."),
            **errors(400, 404),
        },
    )  # fmt: skip
    def post(self, request, assignment_id: int):
        """Submit my ranking of a task: a rank per shown response (1 = best, ties share a rank), with the ratings of
        a per-response form and, in a pairwise project, the strength. Idempotent; a bad part stores nothing."""
        data = TaskSubmitApi.InputSerializer.validated(request.data)
        try:  # the service loads (and locks) the assignment itself: no second lookup here
            ranking, created = ranking_submit(labeler=request.user, assignment_id=assignment_id, **data)
        except (NotAMember, ProjectClosed):
            raise
        except PermissionDenied:  # someone else's task, or none: as if it did not exist
            raise NotFound(NO_SUCH_TASK) from None
        body = {"ranking_id": ranking.id, "created": created, "version": ranking.version}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class TaskSkipApi(BaseApi):
    class OutputSerializer(serializers.Serializer):
        assignment_id = serializers.IntegerField(source="id")
        status = serializers.CharField()

    @extend_schema(
        operation_id="task_skip", tags=TASKS, request=None, responses={200: OutputSerializer, **errors(404)}
    )  # fmt: skip
    def post(self, request, assignment_id: int):
        """Pass on a task: it goes back to the pool for others and is not offered to me again."""
        assignment = assignment_get_for_labeler(labeler=request.user, assignment_id=assignment_id)
        assignment = assignment_skip(assignment=assignment)
        return Response(TaskSkipApi.OutputSerializer(assignment).data)


class RankingMineListApi(BaseApi):
    class OutputSerializer(serializers.ModelSerializer):
        project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
        prompt = serializers.SerializerMethodField()
        ranks = RankSerializer(source="entries", many=True, read_only=True)
        ratings = serializers.SerializerMethodField()

        class Meta:
            model = Ranking
            fields = [
                "id", "project", "prompt", "version", "ranks", "shown_order", "flags", "rationale", "time_spent_s",
                "strength", "ratings", "guideline_version", "created_at",
            ]  # fmt: skip

        @extend_schema_field(RatingSerializer(many=True))
        def get_ratings(self, ranking: Ranking) -> list[dict]:
            return [{"response_id": r.response_id, "values": r.values} for r in ranking.ratings.all()]

        def get_prompt(self, ranking: Ranking) -> dict:
            return {"id": ranking.prompt_id, "text": ranking.prompt.text}

    @extend_schema(
        operation_id="ranking_mine_list", tags=RANKINGS,
        parameters=[OpenApiParameter("project", str, description="Only this project (its slug)."), *PAGE_PARAMETERS],
        responses={200: paginated("RankingPage", OutputSerializer(many=True)), **errors(404)},
    )  # fmt: skip
    def get(self, request):
        """My current rankings (the latest version of each), newest first."""
        slug = request.query_params.get("project")
        project = project_for(request, slug) if slug else None
        rankings = rankings_for_labeler(labeler=request.user, project=project)
        return self.paginated(request, rankings, RankingMineListApi.OutputSerializer)


class RankingReviseApi(BaseApi):
    class InputSerializer(RankingInputSerializer):
        pass

    @extend_schema(
        operation_id="ranking_revise", tags=RANKINGS, request=InputSerializer,
        responses={201: RankingCreatedSerializer, **errors(400, 403, 404)},
    )  # fmt: skip
    def post(self, request, ranking_id: int):
        """Correct one of my rankings: a new version becomes current and the old one is kept."""
        data = RankingReviseApi.InputSerializer.validated(request.data)
        try:
            ranking = ranking_revise(labeler=request.user, ranking_id=ranking_id, **data)
        except (NotAMember, RevisionClosed):  # their own ranking: say why (403)
            raise
        except PermissionDenied:  # someone else's ranking: as for tasks, a 404 tells them nothing
            raise NotFound(NO_SUCH_RANKING)
        body = {"ranking_id": ranking.id, "created": True, "version": ranking.version}
        return Response(body, status=status.HTTP_201_CREATED)
