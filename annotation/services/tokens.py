"""API tokens: issue, rotate, revoke, and record when one was last used (DRF's Token, one per user)."""

from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import AbstractUser
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from annotation.models import ApiTokenUse

TOUCH_EVERY = timedelta(minutes=1)  # at most one write per token and minute: a busy client must not queue writers


def token_get_or_create(*, user: AbstractUser) -> Token:
    return Token.objects.get_or_create(user=user)[0]


@transaction.atomic
def token_rotate(*, user: AbstractUser) -> Token:
    """A new key for the user; the old one stops working at once."""
    Token.objects.filter(user=user).delete()
    ApiTokenUse.objects.filter(user=user).update(last_used_at=None)
    return Token.objects.create(user=user)


def token_revoke(*, user: AbstractUser) -> bool:
    """Delete the user's token (they can sign in for a new one); True when there was one."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)


# When this process last recorded each token's use (by key: a rotated token is a new key): a token used again within
# TOUCH_EVERY costs no query (every API request authenticates; on the labeling hot path a query is a measurable share
# of a request). Bounded: cleared when it grows past _TOUCHED_MAX keys.
_touched: dict[str, datetime] = {}
_TOUCHED_MAX = 100_000


def token_touch(*, user: AbstractUser, key: str = "") -> None:
    """Record that the user's token was just used (at most once a minute)."""
    now = timezone.now()
    if key:
        if now - _touched.get(key, datetime.min.replace(tzinfo=UTC)) < TOUCH_EVERY:
            return
        if len(_touched) >= _TOUCHED_MAX:
            _touched.clear()
        _touched[key] = now
    recent = ApiTokenUse.objects.filter(user=user, last_used_at__gte=now - TOUCH_EVERY)
    if recent.exists():  # another process recorded it
        return
    ApiTokenUse.objects.update_or_create(user=user, defaults={"last_used_at": now})


def token_info_get(*, user: AbstractUser) -> dict:
    token = Token.objects.filter(user=user).first()
    use = ApiTokenUse.objects.filter(user=user).first()
    return {
        "exists": token is not None,
        "created": token.created if token else None,
        "last_used_at": use.last_used_at if (use and token) else None,
    }
