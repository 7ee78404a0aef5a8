"""Authentication (token and session + CSRF), the OpenAPI schema and the offline docs pages; one test over HTTP."""

import re
import secrets

import pytest
import requests
from django.contrib.staticfiles import finders
from django.urls import URLPattern, URLResolver
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from annotation.models import Assignment, Ranking
from config import api_urls as config_api_urls
from tests.annotation.api._helpers import ranks_body
from tests.factories import PASSWORD

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def test_token_is_issued_for_good_credentials_and_works(world):
    response = APIClient().post("/api/auth/token/", {"username": "lea", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get("/api/projects/alpha/").json()["role"] == "labeler"


def test_token_is_refused_for_bad_credentials_and_a_bad_token_is_a_401(world):
    refused = APIClient().post("/api/auth/token/", {"username": "lea", "password": "wrong"}, format="json")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    bad_token = client.get("/api/projects/")

    assert refused.status_code == 400
    assert refused.json()["errors"] == ["Unable to log in with provided credentials."]
    assert bad_token.status_code == 401 and bad_token.json()["errors"] == ["Invalid token."]


def test_session_post_without_csrf_token_is_refused(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.labeler)  # django-axes needs a request to check a password: the login page has one

    read = client.get("/api/projects/alpha/")
    refused = client.post("/api/projects/alpha/tasks/next/")

    assert read.status_code == 200  # safe methods need no CSRF token
    assert refused.status_code == 403 and "CSRF Failed" in refused.json()["errors"][0]
    assert Assignment.objects.count() == 0


def test_session_post_with_csrf_token_is_accepted(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.labeler)  # django-axes needs a request to check a password: the login page has one
    token = secrets.token_hex(16)  # 32 characters: a valid unmasked CSRF secret
    client.cookies["csrftoken"] = token

    response = client.post("/api/projects/alpha/tasks/next/", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 200 and Assignment.objects.filter(labeler=world.labeler).count() == 1


# POST operations that are plain actions on the resource in the URL and take no body.
BODYLESS_ACTIONS = {"task_next", "task_skip", "run_cancel", "auth_token_rotate_mine", "auth_token_rotate"}


def _api_paths(patterns, prefix="/api/") -> set[str]:
    paths = set()
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            paths |= _api_paths(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            paths.add(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))
    return paths


def test_schema_is_valid_openapi_and_documents_every_endpoint(db):
    response = APIClient().get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)  # raises on an invalid OpenAPI 3 document
    # Every route of every app under /api/ (annotation, rlhf, ...) except the schema and docs pages themselves.
    expected = _api_paths(config_api_urls.urlpatterns) - {"/api/schema/", "/api/docs/", "/api/redoc/"}
    assert len(expected) >= 14 and expected <= set(schema["paths"])
    for path in expected - {"/api/auth/token/"}:
        for method, operation in schema["paths"][path].items():
            codes = set(operation["responses"])
            assert "401" in codes and any(code.startswith("2") for code in codes), (path, method)
            if method in ("post", "patch") and operation["operationId"] not in BODYLESS_ACTIONS:
                assert "requestBody" in operation, (path, method)
    submit = schema["paths"]["/api/tasks/{assignment_id}/submit/"]["post"]
    assert {"200", "201", "400", "404"} <= set(submit["responses"])
    assert "tokenAuth" in schema["components"]["securitySchemes"]


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_docs_page_renders_with_local_assets_only(db, url):
    response = APIClient().get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assets = ASSET.findall(html)
    assert any(a.endswith(".js") for a in assets)
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", html, re.IGNORECASE)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not among the static files"


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_docs_page_policy_refuses_images_fonts_and_requests_from_elsewhere(db, url):
    html = APIClient().get(url).content.decode()

    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert policy and html.index(policy.group()) < html.index("<script")  # it governs every script's loads
    directives = dict(d.strip().split(" ", 1) for d in policy.group(1).split(";"))
    assert directives["img-src"] == "'self' data: blob:" and directives["font-src"] == "'self' data:"
    assert directives["connect-src"] == "'self'"


def test_swagger_ui_has_no_validator_badge_that_would_load_from_swagger_io(db):
    """Swagger UI's default validatorUrl puts an <img> from validator.swagger.io on every host but localhost."""
    html = APIClient().get("/api/docs/").content.decode()

    assert re.search(r'"validatorUrl":\s*null', html)
    assert "swagger.io" not in html


@pytest.mark.server
def test_labeling_over_real_http_with_token_auth(live_server, world):
    base = f"{live_server.url}/api"
    token = requests.post(f"{base}/auth/token/", json={"username": "lea", "password": PASSWORD}, timeout=10)
    assert token.status_code == 200
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token.json()['token']}"

    assert requests.get(f"{base}/projects/", timeout=10).status_code == 401
    task = session.post(f"{base}/projects/alpha/tasks/next/", timeout=10)
    assert task.status_code == 200
    body = ranks_body([r["id"] for r in task.json()["responses"]], [2, 1, 3, 3])
    first = session.post(f"{base}/tasks/{task.json()['assignment_id']}/submit/", json=body, timeout=10)
    again = session.post(f"{base}/tasks/{task.json()['assignment_id']}/submit/", json=body, timeout=10)

    assert (first.status_code, first.json()["created"]) == (201, True)
    assert (again.status_code, again.json()["created"]) == (200, False)
    assert Ranking.objects.filter(labeler=world.labeler).count() == 1
    mine = session.get(f"{base}/rankings/mine/", timeout=10).json()
    assert [r["id"] for r in mine["results"]] == [first.json()["ranking_id"]]

    docs = requests.get(f"{base}/docs/", timeout=10)
    scripts = [a for a in ASSET.findall(docs.text) if a.endswith(".js")]
    assert docs.status_code == 200 and scripts
    for script in scripts:
        assert requests.get(f"{live_server.url}{script}", timeout=10).status_code == 200
