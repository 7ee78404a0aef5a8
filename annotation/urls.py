from django.urls import path

from annotation import views, views_agreement, views_dashboard

app_name = "annotation"
urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("<slug:slug>/", views.project_detail, name="project-detail"),
    path("<slug:slug>/guidelines/", views.guidelines, name="guidelines"),
    path("<slug:slug>/label/", views.label, name="label"),
    path("<slug:slug>/label/<int:assignment_id>/submit/", views.label_submit, name="label-submit"),
    path("<slug:slug>/label/<int:assignment_id>/skip/", views.label_skip, name="label-skip"),
    path("<slug:slug>/my-rankings/", views.my_rankings, name="my-rankings"),
    path("<slug:slug>/progress/", views_dashboard.progress_dashboard, name="progress"),
    path("<slug:slug>/agreement/", views_agreement.agreement, name="agreement"),
    path("<slug:slug>/agreement/exclusion/", views_agreement.agreement_exclusion, name="agreement-exclusion"),
]
