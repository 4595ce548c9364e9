"""The one error envelope: malformed bodies, media types, sizes, methods, routes, throttling,
uncaught exceptions, and the request id on every response."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from config import TestingConfig
from integration_service import create_app
from integration_service.errors import QueueUnavailable
from integration_service.extensions import db
from integration_service.services.integrations import IntegrationService

URL = "/api/v1/integration/integrations/"
SECRET_MARKER = "do-not-leak-this-4242"


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body["error"]


# --- bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ['{"site_id": 1,', "{'site_id': 1}", "not json at all", "{" * 10])
def test_malformed_json_is_400(editor_client, raw):
    response = editor_client.post(URL, data=raw, content_type="application/json")
    error = assert_envelope(response, 400, "validation_error")
    assert error["details"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/xml"]
)
def test_non_json_content_type_is_415(editor_client, site, content_type):
    response = editor_client.post(URL, data=f"site_id={site.id}&platform=custom", content_type=content_type)
    assert_envelope(response, 415, "unsupported_media_type")
    assert_envelope(
        editor_client.patch(f"{URL}1/", data="is_active=false", content_type=content_type),
        415,
        "unsupported_media_type",
    )


def test_json_with_charset_is_accepted(editor_client, site):
    response = editor_client.post(
        URL, data=f'{{"site_id": {site.id}, "platform": "custom"}}', content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 201


def test_body_over_max_content_length_is_413(editor_client, app, site):
    limit = app.config["MAX_CONTENT_LENGTH"]
    padding = "x" * (limit + 1)
    response = editor_client.post(
        URL, json={"site_id": site.id, "platform": "custom", "config_json": {"padding": padding}}
    )
    assert_envelope(response, 413, "payload_too_large")
    # A retry cannot make the body smaller: no Retry-After (urllib3 would wait and resend).
    assert "Retry-After" not in response.headers


def test_max_content_length_comes_from_config(editor_client, app, site, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 200)
    small = editor_client.post(URL, json={"site_id": site.id, "platform": "custom"})
    assert small.status_code == 201
    big = editor_client.patch(f"{URL}{small.get_json()['id']}/", json={"config_json": {"padding": "x" * 300}})
    assert_envelope(big, 413, "payload_too_large")


# --- routing -----------------------------------------------------------------------------------


def test_wrong_method_is_405_with_allow(editor_client):
    response = editor_client.put(URL, json={})
    assert_envelope(response, 405, "method_not_allowed")
    assert {method.strip() for method in response.headers["Allow"].split(",")} >= {"GET", "POST"}
    assert_envelope(editor_client.delete(URL), 405, "method_not_allowed")
    assert_envelope(editor_client.post("/healthz", json={}), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nope/", "/api/v1/integration/integrations/abc/", "/api/v1/integration/integrations/1/nope/", "/x"],
)
def test_unknown_route_is_404(editor_client, path):
    assert_envelope(editor_client.get(path), 404, "not_found")


def test_unknown_route_is_404_for_anonymous_callers_too(client):
    assert_envelope(client.get("/api/v1/does-not-exist"), 404, "not_found")


# --- request id --------------------------------------------------------------------------------


def test_valid_request_id_is_honoured(editor_client):
    response = editor_client.get(URL, headers={"X-Request-ID": "req-2026.11:abc_DEF"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-2026.11:abc_DEF"
    error = editor_client.get(f"{URL}424242/", headers={"X-Request-ID": "trace-42"})
    assert error.get_json()["request_id"] == "trace-42"


@pytest.mark.parametrize("incoming", [None, "", "has spaces", "x" * 129, "<script>", "é-unicode", "a\tb"])
def test_request_id_is_made_when_absent_or_invalid(client, incoming):
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    response = client.get("/api/v1/nope", headers=headers)
    request_id = response.headers["X-Request-ID"]
    assert request_id and request_id != incoming
    assert len(request_id) == 32 and all(c in "0123456789abcdef" for c in request_id)
    assert response.get_json()["request_id"] == request_id


def test_every_request_gets_a_distinct_request_id(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


# --- throttling --------------------------------------------------------------------------------


def test_throttled_requests_get_429_in_the_envelope_with_retry_after(editor_client, app, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_INTEGRATION", "2/minute")
    first, second, third = (editor_client.get(URL) for _ in range(3))
    assert first.status_code == second.status_code == 200
    error = assert_envelope(third, 429, "throttled")
    retry_after = int(third.headers["Retry-After"])
    assert 1 <= retry_after <= 61
    assert error["details"]["retry_after"] == retry_after
    assert third.headers["X-RateLimit-Limit"] == "2"


def test_retry_after_follows_the_window_of_the_limit(editor_client, app, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_INTEGRATION", "1/second")
    editor_client.get(URL)
    response = editor_client.get(URL)
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 2  # the window, not a fixed minute


def test_retry_after_only_on_429(editor_client, site):
    ok = editor_client.get(URL)
    bad = editor_client.post(URL, json={"site_id": site.id, "platform": "nope"})
    assert ok.status_code == 200 and bad.status_code == 400
    assert "Retry-After" not in ok.headers and "Retry-After" not in bad.headers
    assert "X-RateLimit-Remaining" in ok.headers  # the limiter's own headers stay


def test_a_retry_after_set_by_the_service_is_kept(editor_client, monkeypatch):
    def unavailable(self, *args, **kwargs):
        raise QueueUnavailable(headers={"Retry-After": "5"})

    monkeypatch.setattr(IntegrationService, "list", unavailable)
    response = editor_client.get(URL)
    assert_envelope(response, 503, "queue_unavailable")
    assert response.headers["Retry-After"] == "5"


# --- uncaught exceptions -----------------------------------------------------------------------


@pytest.fixture
def raising_app(app: Flask, database_url: str) -> Iterator[Flask]:
    """A second app with a route that raises; the session app's Celery default is restored."""
    test_app = create_app(TestingConfig, overrides={"SQLALCHEMY_DATABASE_URI": database_url})

    @test_app.route("/api/v1/boom")
    def boom():
        raise RuntimeError(f"password={SECRET_MARKER}")

    yield test_app
    app.extensions["celery"].set_default()
    with test_app.app_context():
        db.engine.dispose()


def test_uncaught_exception_is_500_internal_error_without_trace(raising_app, caplog):
    response = raising_app.test_client().get("/api/v1/boom", headers={"X-Request-ID": "boom-1"})
    error = assert_envelope(response, 500, "internal_error")
    assert error["details"] == {}
    text = response.get_data(as_text=True)
    assert SECRET_MARKER not in text
    assert "Traceback" not in text and "RuntimeError" not in text and ".py" not in text
    assert response.get_json()["request_id"] == "boom-1"
    # The trace goes to the log, tagged with the request id, for operators.
    assert any("boom-1" in record.getMessage() and record.exc_info for record in caplog.records)


def test_uncaught_exception_in_a_service_is_500(editor_client, monkeypatch):
    def explode(self, *args, **kwargs):
        raise KeyError(SECRET_MARKER)

    monkeypatch.setattr(IntegrationService, "list", explode)
    response = editor_client.get(URL)
    assert_envelope(response, 500, "internal_error")
    assert SECRET_MARKER not in response.get_data(as_text=True)
