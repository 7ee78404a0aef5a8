from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
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
