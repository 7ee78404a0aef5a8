"""Issue #12, item 5: failed sign-ins lock (per user name and per client address) with a clear message, on the
login page and the token endpoint alike; API tokens can be rotated and revoked by their owner and by an admin, and
carry a last-used time."""

import pytest
from rest_framework.authtoken.models import Token

from tests.annotation.api._helpers import api_client
from tests.factories import PASSWORD, AdminFactory, ProjectFactory, labeler

LIMIT = 5


@pytest.fixture
def user(db):
    return labeler(ProjectFactory(), username="lea")


def _page_login(client, username: str, password: str, ip: str = "10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def _token(username: str, password: str, ip: str = "10.0.0.1"):
    return api_client().post("/api/auth/token/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_login_page_locks_a_user_name_after_repeated_failures(user, client):
    for _ in range(LIMIT - 1):
        assert _page_login(client, "lea", "wrong").status_code == 200  # the form again, with its error
    locked = _page_login(client, "lea", "wrong")
    assert locked.status_code == 429
    assert "locked for 15 minutes" in locked.content.decode()
    # Even the right password is refused while locked, from another address too.
    assert _page_login(client, "lea", PASSWORD, ip="10.0.0.2").status_code == 429


def test_login_page_locks_an_address_trying_many_user_names(user, client):
    for i in range(LIMIT):
        _page_login(client, f"guess{i}", "wrong", ip="10.9.9.9")
    assert _page_login(client, "lea", PASSWORD, ip="10.9.9.9").status_code == 429
    assert _page_login(client, "lea", PASSWORD, ip="10.0.0.3").status_code == 302  # another address signs in


def test_a_successful_sign_in_resets_the_count(user, client):
    for _ in range(LIMIT - 1):
        _page_login(client, "lea", "wrong")
    assert _page_login(client, "lea", PASSWORD).status_code == 302
    for _ in range(LIMIT - 1):
        assert _page_login(client, "lea", "wrong").status_code == 200


def test_token_endpoint_locks_with_a_json_429(user):
    for _ in range(LIMIT - 1):
        response = _token("lea", "wrong")
        assert response.status_code == 400
        assert response.json()["errors"] == ["Unable to log in with provided credentials."]
    locked = _token("lea", "wrong")
    assert locked.status_code == 429
    assert locked.json()["code"] == "locked_out" and "locked" in locked.json()["errors"][0]
    assert locked["Retry-After"] == "900"
    assert _token("lea", PASSWORD, ip="10.0.0.2").status_code == 429


def test_token_endpoint_still_issues_a_token(user):
    response = _token("lea", PASSWORD)
    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=user).key


def test_owner_rotates_their_token_and_the_old_one_stops_working(user):
    old = Token.objects.create(user=user).key
    client = api_client(user)
    new = client.post("/api/auth/token/mine/rotate/").json()["token"]
    assert new != old
    stale = api_client()
    stale.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert stale.get("/api/projects/").status_code == 401
    fresh = api_client()
    fresh.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert fresh.get("/api/projects/").status_code == 200


def test_owner_revokes_their_token(user):
    client = api_client(user)
    assert client.delete("/api/auth/token/mine/").status_code == 204
    assert not Token.objects.filter(user=user).exists()
    assert client.get("/api/projects/").status_code == 401


def test_last_used_time_is_recorded(user):
    client = api_client(user)
    assert client.get("/api/auth/token/mine/").json()["last_used_at"] is not None
    info = client.get("/api/auth/token/mine/").json()
    assert info["exists"] is True and info["created"]


def test_admin_rotates_and_revokes_anyones_token_and_others_cannot(user):
    Token.objects.create(user=user)
    admin = api_client(AdminFactory())
    other = api_client(labeler(ProjectFactory()))
    assert other.delete("/api/auth/tokens/lea/").status_code == 403
    assert other.post("/api/auth/tokens/lea/rotate/").status_code == 403
    rotated = admin.post("/api/auth/tokens/lea/rotate/")
    assert rotated.status_code == 200 and rotated.json()["token"] == Token.objects.get(user=user).key
    assert admin.get("/api/auth/tokens/lea/").json()["exists"] is True
    assert admin.delete("/api/auth/tokens/lea/").status_code == 204
    assert not Token.objects.filter(user=user).exists()
