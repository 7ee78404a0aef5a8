"""Training runs over the API: create (snapshot + enqueue, returns at once), list, detail, metric history, cancel,
score responses, the model-vs-labelers report, and blind comparisons of a policy with its reference. Managers of the
run's project and admins only; a run of a project the caller does not manage is a 404."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from annotation.api.agreement_serializers import ComparisonReportSerializer
from annotation.api.permissions import project_for
from annotation.api.serializers import paginated
from annotation.api.views.base import PAGE_PARAMETERS, BaseApi, errors
from annotation.models import Project
from annotation.selectors_comparisons import policy_comparisons_get
from rlhf.api.serializers import (
    ComparisonOptionsSerializer,
    ExportOptionsSerializer,
    GenerateOptionsSerializer,
    RunConfigField,
    TrainingRunSerializer,
    run_config_validate,
)
from rlhf.models import TrainingRun
from rlhf.selectors import disagreements_get, metric_points, run_get_for_user, runs_for_user
from rlhf.services import (
    comparison_enqueue,
    generation_enqueue,
    scoring_enqueue,
    training_run_cancel,
    training_run_create,
    training_run_sweep_if_running,
)
from rlhf.services.boundary import boundary_warnings
from rlhf.training.ppo_config import PPO_RECIPE_LABELS, PPO_RECIPES_HELP
from rlhf.training.registry import STAGES

RUNS = ["training runs"]
WARNINGS_HELP = (
    "Warnings that do not stop the run: e.g. most of its prompts are out of its reward model's range (unlike the "
    "reward model's training prompts; docs/training.md, 'The reward model's boundary')."
)


class TrainingRunCreatedSerializer(TrainingRunSerializer):
    warnings = serializers.SerializerMethodField(help_text=WARNINGS_HELP)

    class Meta(TrainingRunSerializer.Meta):
        fields = [*TrainingRunSerializer.Meta.fields, "warnings"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_warnings(self, run: TrainingRun) -> list[str]:
        return boundary_warnings((run.export or {}).get("boundary"))


class RunListApi(BaseApi):
    @extend_schema(
        operation_id="run_list", tags=RUNS,
        parameters=[OpenApiParameter("project", str, description="Only this project's runs (its slug)."),
                    *PAGE_PARAMETERS],
        responses={200: paginated("TrainingRunPage", TrainingRunSerializer(many=True)), **errors(403, 404)},
    )  # fmt: skip
    def get(self, request):
        """The training runs of the projects I manage (admins: all), newest first."""
        slug = request.query_params.get("project")
        project = project_for(request, slug, manage=True) if slug else None
        return self.paginated(request, runs_for_user(user=request.user, project=project), TrainingRunSerializer)


class RunCreateApi(BaseApi):
    class InputSerializer(serializers.Serializer):
        project = serializers.SlugField(help_text="The project whose rankings are exported and trained on.")
        kind = serializers.ChoiceField(
            choices=[(kind, stage.label) for kind, stage in STAGES.items()], default=TrainingRun.Kind.REWARD_MODEL,
            help_text="The run kind (rlhf/training/registry.py), reward_model by default: "
            + "; ".join(f"{kind}: {stage.description}" for kind, stage in STAGES.items()),
        )  # fmt: skip
        name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
        config = RunConfigField(required=False, default=dict, help_text="The kind's settings (see RunConfig).")
        export = ExportOptionsSerializer(required=False, default=dict)
        policy = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=500,
            help_text="sft (base model), ppo, dpo, grpo: an earlier policy run ('run:ID' or its id), a local path "
            "or a model id; empty = 'default' (SmolLM2-135M-Instruct, offline). chain: set config.base_model instead.",
        )  # fmt: skip
        reward_run = serializers.IntegerField(
            required=False, allow_null=True, default=None,
            help_text="ppo, grpo: a succeeded reward-model run (any tokenizer).",
        )  # fmt: skip
        second_reward_run = serializers.IntegerField(
            required=False, allow_null=True, default=None,
            help_text="ppo: a second succeeded reward-model run that PPO does not optimise (the reward-hacking "
            "check: held-out samples scored by both, their gap charted).",
        )  # fmt: skip
        ensemble_reward_runs = serializers.ListField(
            child=serializers.IntegerField(), required=False, default=list, max_length=16,
            help_text="ppo: more succeeded reward-model runs (the same recipe on other seeds or splits) scored with "
            "reward_run as one ensemble; PPO optimises their combined reward (config.reward_ensemble_mode: mean, "
            "mean-std or min; config.reward_ensemble_normalize: true combines z-scores on the reference's samples, for "
            "members on different scales) and each member's held-out gain is reported.",
        )  # fmt: skip

        recipe = serializers.ChoiceField(
            choices=[("", "none")] + list(PPO_RECIPE_LABELS.items()), required=False, allow_blank=True, default="",
            help_text=f"ppo: named settings under `config` (config's fields win): {PPO_RECIPES_HELP}. Empty = the "
            "config's defaults (TRL's).",
        )  # fmt: skip

        def validate(self, attrs):
            attrs["config"] = run_config_validate(attrs["kind"], attrs.get("config") or {})
            return attrs

    @extend_schema(
        operation_id="run_create", tags=RUNS, request=InputSerializer,
        responses={201: TrainingRunCreatedSerializer, **errors(400, 403, 404)},
    )  # fmt: skip
    def post(self, request):
        """Start a run: write its data (export snapshot, prompts, best responses), queue it, return at once (queued).

        Reward models by default; SFT, PPO, DPO, GRPO/RLOO and the default chain with `kind`. A PPO reward model on
        another tokenizer than the policy's is read through a re-encoding wrapper. For PPO and GRPO the run's
        prompts are checked against the reward model's boundary first: `export.boundary` holds the report, and
        `warnings` says when more than half of them are out of its range (the run is created all the same)."""
        data = RunCreateApi.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        project = project_for(request, values["project"], manage=True)
        common = {"project": project, "user": request.user, "name": values["name"], "config": values["config"],
                  "export_options": dict(values["export"])}  # fmt: skip
        run = training_run_create(
            kind=values["kind"],
            policy=values["policy"],
            reward_run=values["reward_run"],
            second_reward_run=values["second_reward_run"],
            ensemble_reward_runs=values["ensemble_reward_runs"],
            recipe=values["recipe"],
            **common,
        )
        return Response(TrainingRunCreatedSerializer(run).data, status=status.HTTP_201_CREATED)


class RunDetailApi(BaseApi):
    @extend_schema(operation_id="run_detail", tags=RUNS, responses={200: TrainingRunSerializer, **errors(404)})
    def get(self, request, run_id: int):
        """A run: status, progress (step / total, ETA), config, export snapshot, final metrics, artifacts, log tail."""
        run = training_run_sweep_if_running(run=run_get_for_user(user=request.user, run_id=run_id))
        return Response(TrainingRunSerializer(run).data)


class RunMetricsApi(BaseApi):
    class OutputSerializer(serializers.Serializer):
        class PointSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            step = serializers.IntegerField()
            name = serializers.CharField(help_text="train/loss, train/accuracy, eval/accuracy, ...")
            value = serializers.FloatField()

        status = serializers.CharField()
        step = serializers.IntegerField()
        total_steps = serializers.IntegerField()
        eta_s = serializers.FloatField(allow_null=True)
        points = PointSerializer(many=True)
        last_id = serializers.IntegerField(help_text="Pass as `after` to get only newer points.")

    @extend_schema(
        operation_id="run_metrics", tags=RUNS,
        parameters=[OpenApiParameter("after", OpenApiTypes.INT, description="Only points with a larger id.")],
        responses={200: OutputSerializer, **errors(404)},
    )  # fmt: skip
    def get(self, request, run_id: int):
        """The run's metric history (loss, accuracy, ... by step) and its progress; poll with `after`."""
        run = run_get_for_user(user=request.user, run_id=run_id)
        try:
            after = max(int(request.query_params.get("after", 0)), 0)
        except ValueError:
            after = 0
        points = metric_points(run=run, after=after)
        body = {"status": run.status, "step": run.step, "total_steps": run.total_steps, "eta_s": run.eta_s,
                "points": points, "last_id": points[-1]["id"] if points else after}  # fmt: skip
        return Response(RunMetricsApi.OutputSerializer(body).data)


class RunCancelApi(BaseApi):
    @extend_schema(
        operation_id="run_cancel", tags=RUNS, request=None, responses={200: TrainingRunSerializer, **errors(400, 404)}
    )  # fmt: skip
    def post(self, request, run_id: int):
        """Cancel a run: a queued one at once, a running one at its next progress report. 400 once finished."""
        run = training_run_cancel(run=run_get_for_user(user=request.user, run_id=run_id))
        return Response(TrainingRunSerializer(run).data)


class RunScoreApi(BaseApi):
    class InputSerializer(serializers.Serializer):
        project = serializers.SlugField(required=False, help_text="Whose responses to score (default: the run's).")

    @extend_schema(
        operation_id="run_score", tags=RUNS, request=InputSerializer,
        responses={
            202: inline_serializer("RunScoreQueued", {
                "run_id": serializers.IntegerField(), "scoring": serializers.DictField(),
                "warnings": serializers.ListField(child=serializers.CharField(), help_text=WARNINGS_HELP)}),
            **errors(400, 403, 404),
        },
    )  # fmt: skip
    def post(self, request, run_id: int):
        """Queue scoring every response of a project with the run's reward model (stored per response). The
        project's prompts are checked against the reward model's boundary first (`scoring.boundary`; `warnings` when
        more than half are out of range)."""
        run = run_get_for_user(user=request.user, run_id=run_id)
        data = RunScoreApi.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        slug = data.validated_data.get("project")
        project = project_for(request, slug, manage=True) if slug else get_object_or_404(Project, pk=run.project_id)
        run = scoring_enqueue(run=run, project=project)
        body = {"run_id": run.pk, "scoring": run.scoring, "warnings": boundary_warnings(run.scoring.get("boundary"))}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class RunDisagreementsApi(BaseApi):
    @extend_schema(
        operation_id="run_disagreements", tags=RUNS,
        parameters=[OpenApiParameter("limit", OpenApiTypes.INT, description="Prompts to list (default 50).")],
        responses={200: OpenApiTypes.OBJECT, **errors(404)},
    )  # fmt: skip
    def get(self, request, run_id: int):
        """The prompts where the run's scores and the labelers' majority order disagree most (pairwise), worst first."""
        run = run_get_for_user(user=request.user, run_id=run_id)
        try:
            limit = min(max(int(request.query_params.get("limit", 50)), 1), 500)
        except ValueError:
            limit = 50
        project = get_object_or_404(Project, pk=run.project_id)
        return Response(disagreements_get(run=run, project=project, limit=limit))


class RunGenerateApi(BaseApi):
    @extend_schema(
        operation_id="run_generate", tags=RUNS, request=GenerateOptionsSerializer,
        responses={
            202: inline_serializer("RunGenerateQueued", {"run_id": serializers.IntegerField(),
                                                          "generation": serializers.DictField()}),
            **errors(400, 403, 404),
        },
    )  # fmt: skip
    def post(self, request, run_id: int):
        """Queue sampling k responses per prompt from this policy run into a new labeling round of a project (the
        responses record the run as their model, hidden from labelers)."""
        return _queue_job(request, run_id, GenerateOptionsSerializer, generation_enqueue, "generation")


def _queue_job(request, run_id: int, serializer_class: type, enqueue, field: str) -> Response:
    """Validate the options, find the project (the run's own unless `project` names another the user manages),
    queue the job and answer 202 with its state (`field` of the run)."""
    run = run_get_for_user(user=request.user, run_id=run_id)
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    options = dict(data.validated_data)
    slug = options.pop("project", None)
    project = project_for(request, slug, manage=True) if slug else get_object_or_404(Project, pk=run.project_id)
    run = enqueue(run=run, project=project, **options)
    return Response({"run_id": run.pk, field: getattr(run, field)}, status=status.HTTP_202_ACCEPTED)


class RunComparisonListApi(BaseApi):
    @extend_schema(
        operation_id="run_comparison_list", tags=RUNS,
        responses={200: ComparisonReportSerializer(many=True), **errors(404)},
    )  # fmt: skip
    def get(self, request, run_id: int):
        """This policy's blind comparison batches against its reference, newest first: the labelers' win rate with a
        95% interval (bootstrap over prompts) next to the reward model's predicted win rate."""
        run = run_get_for_user(user=request.user, run_id=run_id)
        project = get_object_or_404(Project, pk=run.project_id)
        return Response(
            ComparisonReportSerializer(policy_comparisons_get(project=project, run_id=run.pk), many=True).data
        )


class RunComparisonCreateApi(BaseApi):
    @extend_schema(
        operation_id="run_comparison_create", tags=RUNS, request=ComparisonOptionsSerializer,
        responses={
            202: inline_serializer("RunComparisonQueued", {"run_id": serializers.IntegerField(),
                                                            "comparison": serializers.DictField()}),
            **errors(400, 403, 404),
        },
    )  # fmt: skip
    def post(self, request, run_id: int):
        """Queue a blind comparison batch: k responses per prompt from this policy and k from its reference, scored by
        its reward model, as a new labeling round (model names hidden, order shuffled per labeler)."""
        return _queue_job(request, run_id, ComparisonOptionsSerializer, comparison_enqueue, "comparison")
