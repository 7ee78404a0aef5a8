"""Projects, their guidelines, members, prompt import and progress."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from annotation.api.permissions import IsAdmin, project_for
from annotation.api.serializers import (
    GuidelineSerializer,
    LabelerProgressSerializer,
    MembershipSerializer,
    ProjectSerializer,
    ProjectSettingsSerializer,
    paginated,
    user_by_username_field,
)
from annotation.api.views.base import PAGE_PARAMETERS, BaseApi, errors
from annotation.models import Membership
from annotation.selectors import labeler_progress_get, project_progress_get, projects_with_role_for_user
from annotation.selectors_dashboard import project_dashboard_get
from annotation.services.imports import prompts_import
from annotation.services.projects import (
    DEFAULT_GUIDELINES,
    guideline_publish,
    membership_remove,
    membership_set,
    project_create,
    project_update,
)

PROJECTS = ["projects"]


class ProjectListApi(BaseApi):
    @extend_schema(
        operation_id="project_list", tags=PROJECTS,
        parameters=PAGE_PARAMETERS,
        responses={200: paginated("ProjectPage", ProjectSerializer(many=True)), **errors()},
    )  # fmt: skip
    def get(self, request):
        """The projects I belong to (admins: all of them), each with my role."""
        return self.paginated(request, projects_with_role_for_user(user=request.user), ProjectSerializer)


class ProjectCreateApi(BaseApi):
    permission_classes = [IsAdmin]

    class InputSerializer(ProjectSettingsSerializer):
        slug = serializers.SlugField(max_length=100, required=False, help_text="Default: derived from the name.")
        guidelines = serializers.CharField(required=False, default=DEFAULT_GUIDELINES, help_text="Markdown, v1.")

    @extend_schema(
        operation_id="project_create", tags=PROJECTS,
        request=InputSerializer, responses={201: ProjectSerializer, **errors(400, 403)},
    )  # fmt: skip
    def post(self, request):
        """Create a project with its first guidelines version (admins only)."""
        data = ProjectCreateApi.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = project_create(created_by=request.user, **data.validated_data)
        return Response(ProjectSerializer(project, context={"request": request}).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(BaseApi):
    @extend_schema(
        operation_id="project_detail", tags=PROJECTS, responses={200: ProjectSerializer, **errors(404)}
    )  # fmt: skip
    def get(self, request, slug: str):
        """One of my projects: its settings and my role."""
        project = project_for(request, slug)
        return Response(ProjectSerializer(project, context={"request": request}).data)


class ProjectUpdateApi(BaseApi):
    class InputSerializer(ProjectSettingsSerializer):
        pass

    @extend_schema(
        operation_id="project_update", tags=PROJECTS,
        request=InputSerializer, responses={200: ProjectSerializer, **errors(400, 403, 404)},
    )  # fmt: skip
    def patch(self, request, slug: str):
        """Change a project's settings (managers and admins); send only the fields to change."""
        project = project_for(request, slug, manage=True)
        data = ProjectUpdateApi.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project = project_update(project=project, **data.validated_data)
        return Response(ProjectSerializer(project, context={"request": request}).data)


class GuidelineListApi(BaseApi):
    @extend_schema(
        operation_id="guideline_list", tags=PROJECTS,
        parameters=PAGE_PARAMETERS,
        responses={200: paginated("GuidelinePage", GuidelineSerializer(many=True)), **errors(404)},
    )  # fmt: skip
    def get(self, request, slug: str):
        """Every version of the project's guidelines, newest first."""
        project = project_for(request, slug)
        return self.paginated(request, project.guidelines.select_related("created_by"), GuidelineSerializer)


class GuidelinePublishApi(BaseApi):
    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(max_length=100_000, help_text="Markdown.")

    @extend_schema(
        operation_id="guideline_publish", tags=PROJECTS,
        request=InputSerializer, responses={201: GuidelineSerializer, **errors(400, 403, 404)},
    )  # fmt: skip
    def post(self, request, slug: str):
        """Publish a new guidelines version (managers and admins); rankings keep the version they were made under."""
        project = project_for(request, slug, manage=True)
        data = GuidelinePublishApi.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        guideline = guideline_publish(project=project, text=data.validated_data["text"], user=request.user)
        return Response(GuidelineSerializer(guideline).data, status=status.HTTP_201_CREATED)


class MembershipListApi(BaseApi):
    @extend_schema(
        operation_id="membership_list", tags=PROJECTS,
        parameters=PAGE_PARAMETERS,
        responses={200: paginated("MembershipPage", MembershipSerializer(many=True)), **errors(403, 404)},
    )  # fmt: skip
    def get(self, request, slug: str):
        """The project's members and their roles (managers and admins)."""
        project = project_for(request, slug, manage=True)
        members = project.memberships.select_related("user").order_by("user__username")
        return self.paginated(request, members, MembershipSerializer)


class MembershipSetApi(BaseApi):
    class InputSerializer(serializers.Serializer):
        username = user_by_username_field()
        role = serializers.ChoiceField(choices=Membership.Role.choices)
        excluded = serializers.BooleanField(
            required=False, help_text="Keep this labeler's rankings out of agreement and exports."
        )

    @extend_schema(
        operation_id="membership_set", tags=PROJECTS,
        request=InputSerializer, responses={200: MembershipSerializer, **errors(400, 403, 404)},
    )  # fmt: skip
    def post(self, request, slug: str):
        """Add a user to the project, or change their role (managers and admins)."""
        project = project_for(request, slug, manage=True)
        data = MembershipSetApi.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        membership = membership_set(
            project=project, user=fields["username"], role=fields["role"], excluded=fields.get("excluded")
        )
        return Response(MembershipSerializer(membership).data)


class MembershipRemoveApi(BaseApi):
    @extend_schema(
        operation_id="membership_remove", tags=PROJECTS,
        responses={204: OpenApiResponse(description="Removed."), **errors(403, 404)},
    )  # fmt: skip
    def delete(self, request, slug: str, username: str):
        """Remove a member (managers and admins); their rankings stay."""
        project = project_for(request, slug, manage=True)
        membership = get_object_or_404(project.memberships.select_related("user"), user__username=username)
        membership_remove(project=project, user=membership.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PromptImportApi(BaseApi):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(help_text="JSONL or CSV: prompts with responses, or pairwise (TRL) preferences.")
        kind = serializers.ChoiceField(choices=["auto", "prompts", "pairwise"], default="auto")
        on_refusal = serializers.ChoiceField(
            choices=["all_or_nothing", "per_line"], required=False,
            help_text="A line the hygiene checks refuse: fail the whole file (all_or_nothing) or leave the line out "
            "and report it (per_line). Default: the project's `import_refusals`.",
        )  # fmt: skip

    class OutputSerializer(serializers.Serializer):
        kind = serializers.CharField()
        prompts_created = serializers.IntegerField()
        responses_created = serializers.IntegerField()
        rankings_created = serializers.IntegerField()
        duplicates_skipped = serializers.IntegerField()
        prompts_refused = serializers.IntegerField(help_text="Lines the hygiene checks refused (per_line).")
        prompts_redacted = serializers.IntegerField(help_text="Lines whose personal information was redacted.")
        warnings = serializers.ListField(
            child=serializers.CharField(), help_text="Per line: 'line N: ...' (duplicates, redactions, refusals)."
        )

    @extend_schema(
        operation_id="prompts_import", tags=PROJECTS,
        request={"multipart/form-data": InputSerializer}, responses={201: OutputSerializer, **errors(400, 403, 404)},
        description="All or nothing: any bad line is a 400 listing every bad line (`line N: reason`), and nothing "
        "is stored. The hygiene checks (cap per `author`, personal information, near duplicates, evaluation sets) "
        "decide every new line: a refused line fails the file too, or with `on_refusal=per_line` is left out and "
        "listed in `warnings`. Managers and admins.",
    )  # fmt: skip
    def post(self, request, slug: str):
        project = project_for(request, slug, manage=True)
        data = PromptImportApi.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        result = prompts_import(
            project=project,
            file=upload,
            filename=upload.name,
            kind=data.validated_data["kind"],
            created_by=request.user,
            on_refusal=data.validated_data.get("on_refusal"),
        )
        return Response(PromptImportApi.OutputSerializer(result.as_dict()).data, status=status.HTTP_201_CREATED)


class ProjectProgressApi(BaseApi):
    class OutputSerializer(serializers.Serializer):
        class LabelerCount(serializers.Serializer):
            labeler = serializers.CharField()
            rankings = serializers.IntegerField()

        prompts = serializers.IntegerField()
        done = serializers.IntegerField()
        in_progress = serializers.IntegerField()
        untouched = serializers.IntegerField()
        held_back = serializers.IntegerField(help_text="Unfinished prompts matching an evaluation set: not handed out.")
        rankings = serializers.IntegerField()
        target_rankings = serializers.IntegerField()
        gold_prompts = serializers.IntegerField()
        active_leases = serializers.IntegerField()
        per_labeler = LabelerCount(many=True)

    @extend_schema(
        operation_id="project_progress", tags=PROJECTS, responses={200: OutputSerializer, **errors(403, 404)}
    )  # fmt: skip
    def get(self, request, slug: str):
        """Prompts done, in progress and untouched; rankings against the target and per labeler (managers)."""
        project = project_for(request, slug, manage=True)
        return Response(ProjectProgressApi.OutputSerializer(project_progress_get(project=project)).data)


class LabelerProgressApi(BaseApi):
    @extend_schema(
        operation_id="labeler_progress", tags=PROJECTS, responses={200: LabelerProgressSerializer, **errors(404)}
    )  # fmt: skip
    def get(self, request, slug: str):
        """My own progress in the project: rankings done, tasks in hand, and the project's total and target."""
        project = project_for(request, slug)
        return Response(LabelerProgressSerializer(labeler_progress_get(project=project, labeler=request.user)).data)


class ProjectDashboardApi(BaseApi):
    class OutputSerializer(serializers.Serializer):
        class Day(serializers.Serializer):
            day = serializers.DateField()
            rankings = serializers.IntegerField()

        class Labeler(serializers.Serializer):
            labeler = serializers.CharField()
            rankings = serializers.IntegerField()
            last_7_days = serializers.IntegerField()
            median_s = serializers.FloatField(allow_null=True, help_text="Median seconds per prompt.")
            last_ranking_at = serializers.DateTimeField(allow_null=True)
            leases_held = serializers.IntegerField()
            oldest_lease_at = serializers.DateTimeField(allow_null=True)
            idle = serializers.BooleanField(help_text="Holds an old lease, no submit since.")

        class ShortPrompt(serializers.Serializer):
            id = serializers.IntegerField()
            text = serializers.CharField()
            rankings = serializers.IntegerField()
            missing = serializers.IntegerField()

        class Eta(serializers.Serializer):
            remaining = serializers.IntegerField(help_text="Rankings still wanted to reach every prompt's overlap.")
            rate_per_hour = serializers.FloatField(allow_null=True)
            hours = serializers.FloatField(allow_null=True)
            finish_at = serializers.DateTimeField(allow_null=True)
            reason = serializers.CharField()

        per_day = Day(many=True)
        labelers = Labeler(many=True)
        idle_labelers = serializers.ListField(child=serializers.CharField())
        idle_after_minutes = serializers.IntegerField()
        median_s = serializers.FloatField(allow_null=True)
        short_prompts = serializers.IntegerField()
        short_sample = ShortPrompt(many=True)
        eta = Eta()
        overlap = serializers.IntegerField()

    @extend_schema(
        operation_id="project_dashboard", tags=PROJECTS, responses={200: OutputSerializer, **errors(403, 404)}
    )  # fmt: skip
    def get(self, request, slug: str):
        """The progress dashboard (managers): rankings per day for 30 days, per-labeler throughput and median time
        per prompt, prompts short of their overlap, an ETA from the last 3 days' rate, and labelers holding leases
        without working."""
        project = project_for(request, slug, manage=True)
        return Response(ProjectDashboardApi.OutputSerializer(project_dashboard_get(project=project)).data)
