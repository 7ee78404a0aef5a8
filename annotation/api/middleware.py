"""Under /api/, every error is JSON: what DRF's exception handler does not see (an unknown URL, a request body over
the size limit, a CSRF failure, an exception in a non-DRF view or middleware) is turned into the same body shape,
`{"errors": [...], "code": ..., "detail": ...}`, here. The traceback of an unexpected exception is logged."""

from django.http import HttpRequest, HttpResponse, JsonResponse

from annotation.api.errors import CODES_BY_STATUS, unexpected_error_response

API_PREFIX = "/api/"
DEFAULT_MESSAGES = {
    400: "Bad request.", 403: "You do not have permission to perform this action.", 404: "Not found.",
    405: "Method not allowed.", 413: "Request body too large.",
}  # fmt: skip


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _json_error(status: int, message: str) -> JsonResponse:
    code = CODES_BY_STATUS.get(status, "error")
    return JsonResponse({"errors": [message], "code": code, "detail": message}, status=status)


class ApiErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not _is_api(request) or response.status_code < 400 or _is_json(response):
            return response
        data = getattr(response, "data", None)
        if isinstance(data, dict) and "errors" in data:  # DRF's error, rendered for a browser: the same body in JSON
            return JsonResponse(data, status=response.status_code)
        if response.status_code >= 500:
            return _json_error(response.status_code, "Internal server error; it has been logged.")
        message = DEFAULT_MESSAGES.get(response.status_code, "Request refused.")
        return _json_error(response.status_code, message)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not _is_api(request):
            return None
        return unexpected_error_response(exception, request.path)


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")
