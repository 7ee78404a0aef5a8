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
    # Our templates drop drf-spectacular's Google Fonts links and add a Content-Security-Policy that refuses files
    # from outside (ReDoc's bundle loads a logo from its CDN): the docs pages load nothing from outside the server.
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
    path(
        "redoc/",
        SpectacularRedocView.as_view(url_name="api-schema", template_name="api/redoc.html"),
        name="api-redoc",
    ),
    path("", include("annotation.api.urls")),
    path("", include("rlhf.api.urls")),
]
