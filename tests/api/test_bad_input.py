"""Input the database or the parser cannot take is a 4xx in the envelope, never a 500 (issue 12):
out-of-range integers (path ids 404, body and query ones 400), NUL and lone surrogates in
strings, and JSON nested too deeply."""

from __future__ import annotations

import json

import pytest

from tests.api.test_errors import assert_envelope
from tests.api.test_webhooks import deliver

INTEGRATIONS = "/api/v1/integration/integrations/"
CONTENT = "/api/v1/writer/content/"
HUGE_IDS = ["2147483648", "99999999999999999999", "9223372036854775808"]


@pytest.fixture
def integration(factory, site):
    return factory.integration(site)


# --- out-of-range integers ---------------------------------------------------------------------


@pytest.mark.parametrize("huge", HUGE_IDS)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", INTEGRATIONS + "{}/"),
        ("PATCH", INTEGRATIONS + "{}/"),
        ("DELETE", INTEGRATIONS + "{}/"),
        ("GET", INTEGRATIONS + "{}/sync_status/"),
        ("GET", INTEGRATIONS + "{}/debug_status/"),
        ("GET", INTEGRATIONS + "{}/content_types/"),
        ("POST", INTEGRATIONS + "{}/sync/"),
        ("POST", INTEGRATIONS + "{}/test_connection/"),
        ("GET", CONTENT + "{}/"),
        ("PATCH", CONTENT + "{}/"),
    ],
)
def test_out_of_range_path_id_is_404(editor_client, method, path, huge):
    body = {} if method in ("POST", "PATCH") else None
    response = editor_client.open(method, path.format(huge), json=body)
    assert_envelope(response, 404, "not_found")


@pytest.mark.parametrize(
    "query",
    [
        "page=99999999999999999999",
        "page=9223372036854775807&page_size=100",
        "page=2147483648",
        "site_id=99999999999999999999",
        "site_id=2147483648",
        "page_size=99999999999999999999",
    ],
)
@pytest.mark.parametrize("url", [INTEGRATIONS, CONTENT])
def test_out_of_range_query_integer_is_400(editor_client, url, query):
    error = assert_envelope(editor_client.get(f"{url}?{query}"), 400, "validation_error")
    assert set(error["details"]) <= {"page", "page_size", "site_id"}
    assert error["details"]


def test_largest_page_is_an_empty_page(editor_client):
    response = editor_client.get(f"{CONTENT}?page=2147483647&page_size=100")
    assert response.status_code == 200
    assert response.get_json()["results"] == []


@pytest.mark.parametrize("huge", [2**31, 2**40, 2**63, 2**70])
def test_out_of_range_body_integers_are_400(editor_client, integration, huge):
    cases = [
        (INTEGRATIONS, {"site_id": huge, "platform": "custom"}, "site_id"),
        (CONTENT, {"site_id": huge, "title": "t"}, "site_id"),
        (f"{INTEGRATIONS}{integration.id}/sync_wordpress_content/", {"content_id": huge}, "content_id"),
    ]
    for url, body, field in cases:
        error = assert_envelope(editor_client.post(url, json=body), 400, "validation_error")
        assert field in error["details"], (url, error)


def test_out_of_range_site_id_on_onboarding_is_400(client, site):
    response = client.post(
        f"{INTEGRATIONS}test-connection/",
        json={"site_id": 2**40, "api_key": site.wp_api_key, "site_url": "https://blog.example.com"},
    )
    error = assert_envelope(response, 400, "validation_error")
    assert "site_id" in error["details"]


def test_out_of_range_content_id_in_a_webhook_body_is_refused(app):
    from integration_service.schemas import WebhookStatusSchema

    with pytest.raises(Exception) as excinfo:
        WebhookStatusSchema().load({"post_id": 5, "post_status": "publish", "content_id": 2**40})
    assert "content_id" in excinfo.value.messages  # type: ignore[attr-defined]


def test_openapi_documents_the_id_range(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    parameter = spec["paths"]["/api/v1/integration/integrations/{integration_id}/"]["parameters"][0]
    assert parameter["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


# --- NUL and lone surrogates -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("content_type=%00", "content_type"),
        ("external_status=%00x", "external_status"),
        ("source=%00", "source"),
    ],
)
def test_nul_in_a_query_parameter_is_400_naming_it(editor_client, query, field):
    error = assert_envelope(editor_client.get(f"{CONTENT}?{query}"), 400, "validation_error")
    assert field in error["details"]


@pytest.mark.parametrize("bad", ["a\u0000b", "\ud800", "x\udfffy"])
def test_unstorable_text_in_a_content_title_is_400_naming_it(editor_client, site, bad):
    raw = json.dumps({"site_id": site.id, "title": bad})  # ensure_ascii keeps the lone surrogate
    response = editor_client.post(CONTENT, data=raw, content_type="application/json")
    error = assert_envelope(response, 400, "validation_error")
    assert list(error["details"]) == ["title"]


def test_unstorable_text_nested_in_an_object_field_is_refused(editor_client, site):
    body = {"site_id": site.id, "title": "ok", "metadata": {"seo": {"title": "a\u0000"}}}
    error = assert_envelope(editor_client.post(CONTENT, json=body), 400, "validation_error")
    assert list(error["details"]) == ["metadata"]


def test_nul_in_a_login_email_is_400(client):
    response = client.post("/api/v1/auth/token/", json={"email": "a\u0000@example.com", "password": "x"})
    error = assert_envelope(response, 400, "validation_error")
    assert "email" in error["details"]


def test_nul_in_an_integration_update_is_400(editor_client, integration):
    response = editor_client.patch(f"{INTEGRATIONS}{integration.id}/", json={"config_json": {"k\u0000": "v"}})
    error = assert_envelope(response, 400, "validation_error")
    assert "config_json" in error["details"]


def test_plain_unicode_is_still_accepted(editor_client, site):
    response = editor_client.post(CONTENT, json={"site_id": site.id, "title": "Café 🚀 日本"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["title"] == "Café 🚀 日本"


# --- deep JSON ---------------------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
def test_deeply_nested_json_is_400(client, editor_client, integration, site, depth):
    for url, sender in [
        ("/api/v1/auth/token/", client),
        (INTEGRATIONS, editor_client),
        (f"{INTEGRATIONS}{integration.id}/sync/", editor_client),
        (f"{INTEGRATIONS}test-connection/", client),
        (CONTENT, editor_client),
    ]:
        response = sender.post(url, data=_nested(depth), content_type="application/json")
        assert_envelope(response, 400, "validation_error")
    metadata = '{"a":' * depth + "1" + "}" * depth
    deep_object = f'{{"site_id": {site.id}, "title": "t", "metadata": {metadata}}}'
    response = editor_client.post(CONTENT, data=deep_object, content_type="application/json")
    error = assert_envelope(response, 400, "validation_error")
    assert "nested too deeply" in json.dumps(error)


@pytest.mark.parametrize("depth", [65, 1000, 20_000])  # 20,000 deep still fits the 64 kB webhook cap
def test_deeply_nested_signed_webhook_body_is_400(client, site, depth):
    body = ('{"post_id": 1, "post_status": "publish", "x": ' + _nested(depth) + "}").encode()
    response = deliver(client, "/api/v1/integration/webhooks/wordpress/status/", site.plain_api_key, body=body)
    error = assert_envelope(response, 400, "validation_error")
    assert "nested too deeply" in error["message"]


def test_nesting_within_the_limit_is_accepted(editor_client, site):
    metadata = '{"a":' * 60 + "1" + "}" * 60
    raw = f'{{"site_id": {site.id}, "title": "t", "metadata": {metadata}}}'
    assert editor_client.post(CONTENT, data=raw, content_type="application/json").status_code == 201
