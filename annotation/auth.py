"""Sign-in throttling (django-axes): slow down, then lock; its responses. (API tokens: services/tokens.py.)

Slow down: from `LOGIN_SLOWDOWN_AFTER` failed sign-ins on (a user name, or a client address), the next attempt on it
is refused until `LOGIN_SLOWDOWN_SECONDS` x 2^(failures - LOGIN_SLOWDOWN_AFTER) seconds have passed since the last
failure (1, 2, 4 s with the defaults), with a clear message and `Retry-After`; a refused attempt is not counted and
checks no password. The wait is a refusal, not a server-side sleep: a sleeping worker would let a few attackers tie
up every worker. Lock: at `LOGIN_FAILURE_LIMIT` failures, every attempt is refused for `LOGIN_LOCKOUT_MINUTES`.
"""

import math
from datetime import datetime

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_failure_limit
from django.conf import settings
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

LOCKED_OUT = (
    "Too many failed sign-ins for this user name or from this address: signing in is locked for {minutes} minutes. "
    "Try again later, or ask an administrator to unlock it."
)
SLOWED_DOWN = (
    "Too many failed sign-ins for this user name or from this address: wait {seconds} s before trying again. "
    "After {limit} failed sign-ins, signing in is locked for {minutes} minutes."
)


def _minutes() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)


def lockout_message() -> str:
    return LOCKED_OUT.format(minutes=_minutes())


def slowdown_delay(failures: int) -> float:
    """Seconds an attempt must wait after the last of `failures` failed sign-ins (0: no wait)."""
    base, after = settings.LOGIN_SLOWDOWN_SECONDS, settings.LOGIN_SLOWDOWN_AFTER
    if base <= 0 or failures < after:
        return 0.0
    return base * 2 ** (failures - after)


def _now(request: HttpRequest) -> datetime:
    return getattr(request, "axes_attempt_time", None) or timezone.now()


class SlowdownAxesHandler(AxesDatabaseHandler):
    """axes' database handler, plus the slow-down window before the lock (AXES_HANDLER)."""

    def wait_seconds(self, request: HttpRequest, credentials: dict | None = None) -> float:
        """How long this attempt must still wait, over the user name's and the address's failures (0: none)."""
        wait = 0.0
        for attempts in self.get_user_attempts(request, credentials):
            row = attempts.aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
            delay = slowdown_delay(row["failures"] or 0)
            if delay and row["last"] is not None:
                wait = max(wait, delay - (_now(request) - row["last"]).total_seconds())
        return wait

    def is_locked(self, request: HttpRequest, credentials: dict | None = None) -> bool:
        return super().is_locked(request, credentials) or self.wait_seconds(request, credentials) > 0


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """429 with a clear message (locked, or wait N seconds): JSON under /api/ (the error shape of every API error),
    plain text elsewhere; `Retry-After` says when to try again."""
    handler = AxesProxyHandler.get_implementation()
    limit = get_failure_limit(request, credentials)
    wait = handler.wait_seconds(request, credentials) if isinstance(handler, SlowdownAxesHandler) else 0
    if wait > 0 and handler.get_failures(request, credentials) < limit:
        seconds = math.ceil(wait)
        message, code = SLOWED_DOWN.format(seconds=seconds, limit=limit, minutes=_minutes()), "slow_down"
    else:
        seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
        message, code = lockout_message(), "locked_out"
    if request.path.startswith("/api/"):
        response = JsonResponse({"errors": [message], "code": code, "detail": message}, status=429)
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(seconds)
    return response
