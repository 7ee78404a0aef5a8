"""Sign-in throttling (django-axes) responses, and API tokens: rotate, revoke, last used."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

LOCKED_OUT = (
    "Too many failed sign-ins for this user name or from this address: signing in is locked for {minutes} minutes. "
    "Try again later, or ask an administrator to unlock it."
)


def lockout_message() -> str:
    return LOCKED_OUT.format(minutes=int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """429 with a clear message: JSON under /api/ (the error shape of every API error), plain text elsewhere."""
    message = lockout_message()
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if request.path.startswith("/api/"):
        response = JsonResponse({"errors": [message], "code": "locked_out", "detail": message}, status=429)
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = retry_after
    return response
