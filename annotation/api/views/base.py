"""What every API operation shares: authentication, the standard error responses and pagination."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from annotation.api.authentication import TrackedTokenAuthentication
from annotation.api.serializers import ErrorSerializer

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input: `errors` lists every problem."),
    401: OpenApiResponse(ErrorSerializer, description="Not signed in (no or bad token / session)."),
    403: OpenApiResponse(ErrorSerializer, description="Signed in but not allowed (or CSRF token missing)."),
    404: OpenApiResponse(ErrorSerializer, description="No such object, or not visible to the caller."),
}

PAGE_PARAMETERS = [
    OpenApiParameter("limit", OpenApiTypes.INT, description="Items per page (default 50)."),
    OpenApiParameter("offset", OpenApiTypes.INT, description="Items to skip."),
]


def errors(*codes: int) -> dict:
    """The standard error responses for extend_schema(responses=...); 401 always applies."""
    return {code: ERRORS[code] for code in sorted({401, *codes})}


class ApiAutoSchema(AutoSchema):
    def get_serializer_name(self, serializer, direction) -> str:
        """Nested serializers are named after their view: ProjectCreateApi.InputSerializer -> ProjectCreateInput."""
        qualname = type(serializer).__qualname__
        if "." not in qualname:
            return super().get_serializer_name(serializer, direction)
        return qualname.replace("Api.", ".").replace("Serializer", "").replace(".", "")


class BaseApi(APIView):
    # Token first, so an anonymous request gets 401 with `WWW-Authenticate: Token` (session auth alone gives 403).
    # Session-authenticated unsafe requests must carry the CSRF token (DRF's SessionAuthentication enforces it).
    authentication_classes = [TrackedTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    schema = ApiAutoSchema()

    def paginated(self, request: Request, queryset, serializer_class) -> Response:
        paginator = api_settings.DEFAULT_PAGINATION_CLASS()
        page = paginator.paginate_queryset(queryset, request, view=self)
        context = {"request": request}
        return paginator.get_paginated_response(serializer_class(page, many=True, context=context).data)


class MethodsApi(BaseApi):
    """One URL served by several one-operation APIViews (e.g. GET list and POST create). Each HTTP method runs the
    handler of the operation that defines it, under that operation's permission classes."""

    operations: tuple[type[BaseApi], ...] = ()

    def _operation(self) -> type[BaseApi]:
        method = "get" if self.request.method.lower() == "head" else self.request.method.lower()
        return next((op for op in self.operations if method in vars(op)), self.operations[0])

    def get_permissions(self):
        return [permission() for permission in self._operation().permission_classes]


def one_url(*operations: type[BaseApi]) -> type[MethodsApi]:
    name = "".join(op.__name__.removesuffix("Api") for op in operations) + "Api"
    return type(name, (MethodsApi, *operations), {"operations": operations, "__doc__": operations[0].__doc__})
