"""The annotation API under /api/. URLs serving several operations combine one-operation views with `one_url`."""

from django.urls import path

from annotation.api.views.agreement import (
    AgreementLabelersApi,
    AgreementLeaderboardApi,
    AgreementReportApi,
    GoldListApi,
    MembershipExclusionSetApi,
    PromptGoldSetApi,
    PromptGoldUnsetApi,
)
from annotation.api.views.base import one_url
from annotation.api.views.export import PreferenceExportApi, PreferenceExportMetaApi
from annotation.api.views.projects import (
    GuidelineListApi,
    GuidelinePublishApi,
    LabelerProgressApi,
    MembershipListApi,
    MembershipRemoveApi,
    MembershipSetApi,
    ProjectCreateApi,
    ProjectDashboardApi,
    ProjectDetailApi,
    ProjectListApi,
    ProjectProgressApi,
    ProjectUpdateApi,
    PromptImportApi,
)
from annotation.api.views.qualification import (
    QualificationAttemptsApi,
    QualificationDecideApi,
    QualificationMineApi,
)
from annotation.api.views.tasks import RankingMineListApi, RankingReviseApi, TaskNextApi, TaskSkipApi, TaskSubmitApi
from annotation.api.views.writing import EvalSetListApi, EvalSetUploadApi, WrittenPromptCreateApi, WrittenPromptListApi

urlpatterns = [
    path("projects/", one_url(ProjectListApi, ProjectCreateApi).as_view(), name="api-project-list"),
    path("projects/<slug:slug>/", one_url(ProjectDetailApi, ProjectUpdateApi).as_view(), name="api-project-detail"),
    path(
        "projects/<slug:slug>/guidelines/",
        one_url(GuidelineListApi, GuidelinePublishApi).as_view(),
        name="api-guideline-list",
    ),
    path(
        "projects/<slug:slug>/members/", one_url(MembershipListApi, MembershipSetApi).as_view(), name="api-member-list"
    ),
    path("projects/<slug:slug>/members/<str:username>/", MembershipRemoveApi.as_view(), name="api-member-remove"),
    path("projects/<slug:slug>/import/", PromptImportApi.as_view(), name="api-prompt-import"),
    path("projects/<slug:slug>/tasks/next/", TaskNextApi.as_view(), name="api-task-next"),
    path("projects/<slug:slug>/progress/", ProjectProgressApi.as_view(), name="api-project-progress"),
    path("projects/<slug:slug>/progress/dashboard/", ProjectDashboardApi.as_view(), name="api-project-dashboard"),
    path("projects/<slug:slug>/progress/mine/", LabelerProgressApi.as_view(), name="api-labeler-progress"),
    path("projects/<slug:slug>/qualification/", QualificationMineApi.as_view(), name="api-qualification-mine"),
    path(
        "projects/<slug:slug>/qualification/attempts/",
        QualificationAttemptsApi.as_view(),
        name="api-qualification-attempts",
    ),
    path(
        "projects/<slug:slug>/qualification/decisions/<str:username>/",
        QualificationDecideApi.as_view(),
        name="api-qualification-decide",
    ),
    path("tasks/<int:assignment_id>/submit/", TaskSubmitApi.as_view(), name="api-task-submit"),
    path("tasks/<int:assignment_id>/skip/", TaskSkipApi.as_view(), name="api-task-skip"),
    path("rankings/mine/", RankingMineListApi.as_view(), name="api-ranking-mine"),
    path("rankings/<int:ranking_id>/revise/", RankingReviseApi.as_view(), name="api-ranking-revise"),
    # Prompt writing (labelers) and evaluation sets (managers).
    path(
        "projects/<slug:slug>/prompts/written/",
        one_url(WrittenPromptListApi, WrittenPromptCreateApi).as_view(),
        name="api-written-prompts",
    ),
    path("projects/<slug:slug>/eval-sets/", one_url(EvalSetListApi, EvalSetUploadApi).as_view(), name="api-eval-sets"),
    # Agreement, gold prompts and labeler exclusion (managers and admins).
    path("projects/<slug:slug>/agreement/", AgreementReportApi.as_view(), name="api-agreement-report"),
    path("projects/<slug:slug>/agreement/labelers/", AgreementLabelersApi.as_view(), name="api-agreement-labelers"),
    path(
        "projects/<slug:slug>/agreement/leaderboard/",
        AgreementLeaderboardApi.as_view(),
        name="api-agreement-leaderboard",
    ),
    path("projects/<slug:slug>/gold/", GoldListApi.as_view(), name="api-gold-list"),
    path(
        "projects/<slug:slug>/prompts/<int:prompt_id>/gold/",
        one_url(PromptGoldSetApi, PromptGoldUnsetApi).as_view(),
        name="api-prompt-gold",
    ),
    path(
        "projects/<slug:slug>/members/<str:username>/exclusion/",
        MembershipExclusionSetApi.as_view(),
        name="api-member-exclusion",
    ),
    # Preference dataset export, streamed (managers and admins).
    path("projects/<slug:slug>/export/", PreferenceExportApi.as_view(), name="api-preference-export"),
    path("projects/<slug:slug>/export/meta/", PreferenceExportMetaApi.as_view(), name="api-preference-export-meta"),
]
