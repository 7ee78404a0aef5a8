"""Issue #12, item 5: failed sign-ins lock (per user name and per client address) with a clear message, on the
login page and the token endpoint alike; API tokens can be rotated and revoked by their owner and by an admin, and
carry a last-used time."""

import pytest
from rest_framework.authtoken.models import Token

from tests.annotation.api._helpers import api_client
from tests.factories import PASSWORD, AdminFactory, ProjectFactory, labeler

LIMIT = 5


@pytest.fixture(autouse=True)
def _no_slowdown(settings):
    """The lock tests fail sign-ins back to back: the slow-down before the lock has its own tests below."""
    settings.LOGIN_SLOWDOWN_SECONDS = 0


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


# --- slow down, then lock ------------------------------------------------------------------------------------------


@pytest.fixture
def slowdown(settings):
    settings.LOGIN_SLOWDOWN_SECONDS, settings.LOGIN_SLOWDOWN_AFTER = 1, 2


def _wait_out(seconds: float) -> None:
    """As if `seconds` had passed since every recorded failure (no sleeping in tests)."""
    from datetime import timedelta

    from axes.models import AccessAttempt

    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= timedelta(seconds=seconds)
        attempt.save(update_fields=["attempt_time"])


def test_failed_sign_ins_slow_down_then_lock(user, client, slowdown):
    """Issue #12 item 5: after 2 failures each attempt waits 1, 2, 4 s (a refusal that checks no password and
    counts nothing), then the 5th failure locks for 15 minutes."""
    from axes.models import AccessAttempt

    for _ in range(2):
        assert _page_login(client, "lea", "wrong").status_code == 200
    for wait in (1, 2, 4):
        early = _page_login(client, "lea", PASSWORD)  # even the right password: it is not checked yet
        assert early.status_code == 429 and early["Retry-After"] == str(wait)
        assert f"wait {wait} s before trying again" in early.content.decode()
        assert "After 5 failed sign-ins, signing in is locked for 15 minutes" in early.content.decode()
        _wait_out(wait - 0.5)
        assert _page_login(client, "lea", "wrong", ip="10.0.0.7").status_code == 429  # the user name waits too
        _wait_out(0.6)
        failed = _page_login(client, "lea", "wrong")
        assert failed.status_code == (429 if wait == 4 else 200)
    assert "locked for 15 minutes" in failed.content.decode() and failed["Retry-After"] == "900"
    assert max(AccessAttempt.objects.values_list("failures_since_start", flat=True)) == LIMIT  # refusals not counted
    _wait_out(60)
    assert _page_login(client, "lea", PASSWORD).status_code == 429  # locked: a minute is not enough


def test_waiting_out_the_slowdown_lets_the_right_password_in(user, client, slowdown):
    for _ in range(3):
        _page_login(client, "lea", "wrong")
    assert _page_login(client, "lea", PASSWORD).status_code == 429
    _wait_out(2.1)
    assert _page_login(client, "lea", PASSWORD).status_code == 302
    assert _page_login(client, "lea", "wrong").status_code == 200  # the count started again


def test_token_endpoint_slows_down_with_a_json_429(user, slowdown):
    for _ in range(2):
        assert _token("lea", "wrong").status_code == 400
    early = _token("lea", "wrong")
    assert early.status_code == 429 and early["Retry-After"] == "1"
    assert early.json()["code"] == "slow_down" and "wait 1 s" in early.json()["errors"][0]


def test_a_token_used_again_within_a_minute_costs_no_query(user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api_client(user)
    client.get("/api/projects/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/projects/").status_code == 200

    assert not [q["sql"] for q in queries.captured_queries if "apitokenuse" in q["sql"]]
    rotated = client.post("/api/auth/token/mine/rotate/")  # the new key's first use is recorded at once
    assert rotated.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {rotated.json()['token']}")
    assert client.get("/api/auth/token/mine/").json()["last_used_at"] is not None
