from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from annotation.api.views.auth import (
    AuthTokenObtainApi,
    TokenMineApi,
    TokenRotateMineApi,
    UserTokenApi,
    UserTokenRotateApi,
)

urlpatterns = [
    path("auth/token/", AuthTokenObtainApi.as_view(), name="api-token"),
    path("auth/token/mine/", TokenMineApi.as_view(), name="api-token-mine"),
    path("auth/token/mine/rotate/", TokenRotateMineApi.as_view(), name="api-token-rotate-mine"),
    path("auth/tokens/<str:username>/", UserTokenApi.as_view(), name="api-token-user"),
    path("auth/tokens/<str:username>/rotate/", UserTokenRotateApi.as_view(), name="api-token-user-rotate"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Our template drops the Google Fonts links of drf-spectacular's: the docs pages load nothing from outside.
    path(
        "redoc/",
        SpectacularRedocView.as_view(url_name="api-schema", template_name="api/redoc.html"),
        name="api-redoc",
    ),
    path("", include("annotation.api.urls")),
    path("", include("rlhf.api.urls")),
]
