"""Helpers shared by the API tests."""

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

SECRET_MODELS = ["secret-model-alpha-7b", "secret-model-beta-13b", "secret-model-gamma-70b", "secret-model-delta-1b"]


def api_client(user=None) -> APIClient:
    """A client that authenticates with a real DRF token (or an anonymous one)."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def ranks_body(shown: list[int], ranks: list[int] | None = None, **extra) -> dict:
    ranks = ranks or list(range(1, len(shown) + 1))
    return {"ranks": [{"response_id": rid, "rank": r} for rid, r in zip(shown, ranks, strict=True)], **extra}
