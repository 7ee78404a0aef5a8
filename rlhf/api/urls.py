from django.urls import path

from annotation.api.views.base import one_url
from rlhf.api.views import (
    RunCancelApi,
    RunComparisonCreateApi,
    RunComparisonListApi,
    RunCreateApi,
    RunDetailApi,
    RunDisagreementsApi,
    RunGenerateApi,
    RunListApi,
    RunMetricsApi,
    RunScoreApi,
)

urlpatterns = [
    path("runs/", one_url(RunListApi, RunCreateApi).as_view(), name="api-run-list"),
    path("runs/<int:run_id>/", RunDetailApi.as_view(), name="api-run-detail"),
    path("runs/<int:run_id>/metrics/", RunMetricsApi.as_view(), name="api-run-metrics"),
    path("runs/<int:run_id>/cancel/", RunCancelApi.as_view(), name="api-run-cancel"),
    path("runs/<int:run_id>/score/", RunScoreApi.as_view(), name="api-run-score"),
    path("runs/<int:run_id>/generate/", RunGenerateApi.as_view(), name="api-run-generate"),
    path(
        "runs/<int:run_id>/comparisons/",
        one_url(RunComparisonListApi, RunComparisonCreateApi).as_view(),
        name="api-run-comparisons",
    ),
    path("runs/<int:run_id>/disagreements/", RunDisagreementsApi.as_view(), name="api-run-disagreements"),
]
