"""The service under a real gunicorn started with the repository's gunicorn.conf.py: realistic
large inputs reach the app and get its envelope; only requests past the documented limits are
stopped by gunicorn, and those are answered in the same JSON envelope, not its HTML page."""

from __future__ import annotations

import runpy
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.service_server import ServiceServer

ROOT = Path(__file__).resolve().parent.parent
CONFIG = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
INTEGRATIONS = "/api/v1/integration/integrations/"


@pytest.fixture(scope="module")
def web(app, database_url: str, redis_url: str | None) -> Iterator[ServiceServer]:
    server = ServiceServer(
        database_url,
        redis_url or "",
        secret_key=app.config["SECRET_KEY"],
        encryption_keys=app.config["ENCRYPTION_KEYS"],
    )
    server.start_web()  # gunicorn only: these requests need no worker
    try:
        yield server
    finally:
        server.stop()


def assert_envelope(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:300]
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    return body


def raw_request(server: ServiceServer, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_the_config_chooses_the_limits_and_timeouts():
    assert CONFIG["limit_request_line"] == 8190
    assert CONFIG["limit_request_field_size"] >= 16 * 1024
    assert CONFIG["limit_request_fields"] == 100
    assert CONFIG["timeout"] == 30 and CONFIG["graceful_timeout"] == 30


def test_a_10_kb_api_key_is_the_apps_401(web):
    response = requests.get(web.url + INTEGRATIONS, headers={"X-API-Key": "k" * 10_000}, timeout=10)
    assert_envelope(response, 401, "not_authenticated")
    assert response.headers["X-Request-ID"]  # answered by the app


def test_a_long_query_string_is_the_apps_400(web):
    response = requests.get(
        web.url + "/api/v1/writer/content/", params={"page": "9" * 7000}, headers={"X-API-Key": "x" * 40}, timeout=10
    )
    # Authentication comes first; the point is that the app, not gunicorn, answered.
    assert_envelope(response, 401, "not_authenticated")
    assert response.headers["X-Request-ID"]


def test_a_request_line_past_the_limit_is_414_in_the_envelope(web):
    response = requests.get(web.url + INTEGRATIONS + "?q=" + "a" * 9000, timeout=10)
    body = assert_envelope(response, 414, "uri_too_long")
    assert body["request_id"] is None  # never reached the app


def test_a_header_past_the_limit_is_431_in_the_envelope(web):
    response = requests.get(web.url + INTEGRATIONS, headers={"X-API-Key": "k" * 40_000}, timeout=10)
    assert_envelope(response, 431, "header_too_large")


def test_an_unparsable_request_is_400_in_the_envelope(web):
    answer = raw_request(web, b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"application/json" in head and b"<html" not in body
    assert b'"code": "validation_error"' in body, body[:200]
