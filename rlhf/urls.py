from django.urls import path

from rlhf import views

app_name = "rlhf"
urlpatterns = [
    path("", views.run_list, name="run-list"),
    path("compare/", views.run_compare, name="run-compare"),
    path("project/<slug:slug>/", views.project_runs, name="project-runs"),
    path("project/<slug:slug>/new/", views.run_create, name="run-create"),
    path("project/<slug:slug>/new-policy/", views.policy_run_create_view, name="policy-run-create"),
    path("<int:run_id>/", views.run_detail, name="run-detail"),
    path("<int:run_id>/progress.json", views.run_progress, name="run-progress"),
    path("<int:run_id>/cancel/", views.run_cancel, name="run-cancel"),
    path("<int:run_id>/score/", views.run_score, name="run-score"),
    path("<int:run_id>/generate/", views.run_generate, name="run-generate"),
    path("<int:run_id>/comparison/", views.run_comparison_create, name="run-comparison-create"),
    path("<int:run_id>/disagreements/", views.run_disagreements, name="run-disagreements"),
]
