"""One DRF exception handler, one error shape: every error body carries `errors`, a list of readable messages.

Django's ValidationError becomes a 400 and PermissionDenied a 403, with their messages. Serializer errors are
flattened to "field: message" (nested fields as "ranks[1].rank: message"); the original per-field structure is kept
under `fields` for forms. Errors other than 400 also keep DRF's `detail` string.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

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


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        # A model's full_clean() reports per field: keep the field names ("slug: ...") in the messages.
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"errors": exc.messages})
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    body = {"errors": error_messages(data)}
    if isinstance(data, dict) and "detail" in data and response.status_code != 400:
        body["detail"] = data["detail"]
    if isinstance(data, dict) and set(data) - UNPREFIXED:
        body["fields"] = data
    response.data = body
    return response
