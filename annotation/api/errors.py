"""One DRF exception handler, one error shape: every error body carries `errors`, a list of readable messages, and
`code`, a stable machine-readable error code (DRF's: invalid, parse_error, not_authenticated, permission_denied,
not_found, method_not_allowed, throttled, ...; ours: server_error, database_unavailable).

Django's ValidationError becomes a 400 and PermissionDenied a 403, with their messages. Serializer errors are
flattened to "field: message" (nested fields as "ranks[1].rank: message"); the original per-field structure is kept
under `fields` for forms. Errors other than 400 also keep DRF's `detail` string. Any other exception is logged with
its traceback and answered with a JSON 500 (a database that is locked or unreachable: 503 with Retry-After), never
Django's HTML page; `ApiErrorMiddleware` does the same for what happens outside DRF's views under /api/.
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

logger = logging.getLogger("annotation.api")

SERVER_ERROR = "server_error"
DATABASE_UNAVAILABLE = "database_unavailable"
MESSAGES = {
    SERVER_ERROR: "Internal server error; it has been logged.",
    DATABASE_UNAVAILABLE: "The database is busy or unavailable; try again in a moment.",
}
CODES_BY_STATUS = {
    400: "invalid", 401: "not_authenticated", 403: "permission_denied", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 413: "too_large", 415: "unsupported_media_type",
    429: "throttled", 500: SERVER_ERROR, 503: DATABASE_UNAVAILABLE,
}  # fmt: skip

UNPREFIXED = {"errors", "non_field_errors", "detail", "__all__"}


def error_messages(data, path: str = "") -> list[str]:
    """Flatten DRF error data (nested dicts and lists of strings) into messages prefixed with their field path."""
    if isinstance(data, dict):
        messages = []
        for key, value in data.items():
            if key in UNPREFIXED:
                sub = path
            elif str(key).isdigit():  # DRF reports a list's bad items by index: {"ranks": {"0": {...}}}
                sub = f"{path}[{key}]"
            else:
                sub = f"{path}.{key}" if path else str(key)
            messages += error_messages(value, sub)
        return messages
    if isinstance(data, list):
        if all(isinstance(item, str) for item in data):
            return [f"{path}: {item}" if path else str(item) for item in data]
        messages = []
        for i, item in enumerate(data):
            if item:  # DRF reports a list of child serializers with {} for the valid children
                messages += error_messages(item, f"{path}[{i}]")
        return messages
    return [f"{path}: {data}" if path else str(data)]


def unexpected_error_response(exc: BaseException, path: str) -> JsonResponse:
    """A JSON 500 (503 for a locked or unreachable database), its traceback logged: never internals in the body."""
    code = DATABASE_UNAVAILABLE if isinstance(exc, OperationalError) else SERVER_ERROR
    logger.error("Unhandled %s under %s", type(exc).__name__, path, exc_info=exc)
    response = JsonResponse(
        {"errors": [MESSAGES[code]], "code": code, "detail": MESSAGES[code]},
        status=503 if code == DATABASE_UNAVAILABLE else 500,
    )
    if code == DATABASE_UNAVAILABLE:
        response["Retry-After"] = "5"
    return response


def _code(exc: Exception, status: int) -> str:
    if isinstance(exc, exceptions.APIException):
        return exc.default_code
    return CODES_BY_STATUS.get(status, "error")


def exception_handler(exc, context):
    request = context.get("request")
    if isinstance(exc, DjangoValidationError):
        # A model's full_clean() reports per field: keep the field names ("slug: ...") in the messages.
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"errors": exc.messages})
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:  # not an API error: a bug or an outage, answered in JSON all the same
        set_rollback()
        return unexpected_error_response(exc, request.path if request is not None else "?")
    data = response.data
    body = {"errors": error_messages(data), "code": _code(exc, response.status_code)}
    if isinstance(data, dict) and "detail" in data and response.status_code != 400:
        body["detail"] = data["detail"]
    if isinstance(data, dict) and set(data) - UNPREFIXED:
        body["fields"] = data
    response.data = body
    return response
