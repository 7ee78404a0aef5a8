from django.urls import path

from annotation import (
    views,
    views_agreement,
    views_dashboard,
    views_export,
    views_feedback,
    views_qualification,
    views_rankings,
    views_writing,
)

app_name = "annotation"
urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("<slug:slug>/", views.project_detail, name="project-detail"),
    path("<slug:slug>/guidelines/", views.guidelines, name="guidelines"),
    path("<slug:slug>/label/", views.label, name="label"),
    path("<slug:slug>/label/<int:assignment_id>/submit/", views.label_submit, name="label-submit"),
    path("<slug:slug>/label/<int:assignment_id>/skip/", views.label_skip, name="label-skip"),
    path("<slug:slug>/my-rankings/", views_rankings.my_rankings, name="my-rankings"),
    path("<slug:slug>/my-rankings/<int:ranking_id>/", views_rankings.ranking_detail, name="ranking-detail"),
    path("<slug:slug>/rankings/<int:ranking_id>/history/", views_rankings.ranking_history_page, name="ranking-history"),
    path("<slug:slug>/export/", views_export.export_page, name="export"),
    path("<slug:slug>/export/download/", views_export.export_download, name="export-download"),
    path("<slug:slug>/qualification/", views_qualification.qualification, name="qualification"),
    path(
        "<slug:slug>/qualification/manage/",
        views_qualification.qualification_manage,
        name="qualification-manage",
    ),
    path("<slug:slug>/feedback/", views_feedback.feedback, name="feedback"),
    path("<slug:slug>/write/", views_writing.write_prompts, name="write"),
    path("<slug:slug>/progress/", views_dashboard.progress_dashboard, name="progress"),
    path("<slug:slug>/agreement/", views_agreement.agreement, name="agreement"),
    path("<slug:slug>/agreement/exclusion/", views_agreement.agreement_exclusion, name="agreement-exclusion"),
]
