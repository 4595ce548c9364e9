"""CORS for a browser frontend on another origin (``CORS_ORIGINS``, integration_service/cors.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from config import TestingConfig
from integration_service import create_app
from integration_service.extensions import db

FRONTEND = "https://app.example.com"
INTEGRATIONS = "/api/v1/integration/integrations/"
WEBHOOK = "/api/v1/integration/webhooks/wordpress/status/"


def _cors_app(app: Flask, database_url: str, origins: list[str]) -> Iterator[Flask]:
    cors_app = create_app(TestingConfig, overrides={"SQLALCHEMY_DATABASE_URI": database_url, "CORS_ORIGINS": origins})
    yield cors_app
    app.extensions["celery"].set_default()  # create_app made the second app's Celery the default
    with cors_app.app_context():
        db.engine.dispose()


@pytest.fixture
def cors_app(app: Flask, database_url: str) -> Iterator[Flask]:
    yield from _cors_app(app, database_url, [FRONTEND, "https://admin.example.com"])


@pytest.fixture
def any_origin_app(app: Flask, database_url: str) -> Iterator[Flask]:
    yield from _cors_app(app, database_url, ["*"])


def _preflight(client, path: str, origin: str = FRONTEND, method: str = "POST"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "Authorization, Content-Type, X-API-Key",
        },
    )


def _listed(header: str | None) -> set[str]:
    return {item.strip().lower() for item in (header or "").split(",") if item.strip()}


def test_an_allowed_origin_gets_its_origin_back_and_the_throttling_headers_exposed(cors_app, factory, editor):
    response = cors_app.test_client().get(
        INTEGRATIONS, headers={"Origin": FRONTEND, "Authorization": f"Bearer {factory.token(editor)}"}
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert "Origin" in response.headers.get("Vary", "")
    exposed = _listed(response.headers.get("Access-Control-Expose-Headers"))
    assert {"retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= exposed
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_another_origin_gets_no_cors_headers(cors_app, factory, editor):
    response = cors_app.test_client().get(
        INTEGRATIONS, headers={"Origin": "https://evil.example.net", "Authorization": f"Bearer {factory.token(editor)}"}
    )
    assert response.status_code == 200  # CORS is the browser's check; the server only withholds the grant
    assert not [name for name, _ in response.headers if name.startswith("Access-Control-")]


def test_a_preflight_is_answered_with_the_allowed_methods_and_headers_without_authentication(cors_app):
    response = _preflight(cors_app.test_client(), INTEGRATIONS + "1/", method="PATCH")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert {"get", "post", "put", "patch", "delete"} <= _listed(response.headers.get("Access-Control-Allow-Methods"))
    assert {"authorization", "content-type", "x-api-key"} <= _listed(
        response.headers.get("Access-Control-Allow-Headers")
    )
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_a_preflight_from_another_origin_grants_nothing(cors_app):
    response = _preflight(cors_app.test_client(), INTEGRATIONS, origin="https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("GET", INTEGRATIONS, {}, 401, "not_authenticated"),
        ("GET", INTEGRATIONS + "999999/", "editor", 404, "not_found"),
        ("POST", INTEGRATIONS, "editor", 400, "validation_error"),
        ("GET", "/api/v1/no-such-route/", {}, 404, "not_found"),
    ],
)
def test_errors_keep_the_envelope_and_carry_the_cors_headers(
    cors_app, factory, editor, method, path, headers, status, code
):
    sent = {"Origin": FRONTEND}
    if headers == "editor":
        sent["Authorization"] = f"Bearer {factory.token(editor)}"
    response = cors_app.test_client().open(path, method=method, headers=sent, json={} if method == "POST" else None)
    assert response.status_code == status
    body = response.get_json()
    assert body["error"]["code"] == code and body["request_id"]
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert "retry-after" in _listed(response.headers.get("Access-Control-Expose-Headers"))


def test_webhooks_never_answer_cors(cors_app, site):
    client = cors_app.test_client()
    delivery = client.post(WEBHOOK, json={}, headers={"Origin": FRONTEND, "X-API-Key": site.plain_api_key})
    assert delivery.status_code in (400, 401)  # unsigned: refused either way
    assert "Access-Control-Allow-Origin" not in delivery.headers
    preflight = _preflight(client, WEBHOOK)
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_operations_routes_outside_the_api_have_no_cors(cors_app):
    response = cors_app.test_client().get("/healthz", headers={"Origin": FRONTEND})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_any_origin_is_a_star_without_credentials(any_origin_app, factory, editor):
    response = any_origin_app.test_client().get(
        INTEGRATIONS,
        headers={"Origin": "https://anywhere.example.org", "Authorization": f"Bearer {factory.token(editor)}"},
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_without_cors_origins_no_response_has_cors_headers(client, factory, editor):
    response = client.get(
        INTEGRATIONS, headers={"Origin": FRONTEND, "Authorization": f"Bearer {factory.token(editor)}"}
    )
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = _preflight(client, INTEGRATIONS)
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_cors_origins_is_read_as_a_comma_separated_list():
    env = {**os.environ, "CORS_ORIGINS": " https://a.example.com, ,https://b.example.com ", "ENV_FILE": os.devnull}
    shown = subprocess.run(
        [sys.executable, "-c", "import json, config; print(json.dumps(config.Config.CORS_ORIGINS))"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(shown.stdout) == ["https://a.example.com", "https://b.example.com"]
