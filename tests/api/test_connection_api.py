"""Connection-test endpoints: ``/integrations/{id}/test_connection/`` and the onboarding
``/integrations/test-connection/`` (every branch of the contract, and its throttling)."""

from __future__ import annotations

import pytest

from integration_service.extensions import db
from integration_service.models import SiteIntegration, SyncEvent
from tests.platforms.fakes import (
    SITE,
    add_wordpress,
    fake_dns_fixture,  # noqa: F401 - fixture
    mocked_fixture,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.usefixtures("fake_dns")

BASE = "/api/v1/integration/integrations"
ONBOARD = f"{BASE}/test-connection/"


@pytest.fixture
def wp_site(site):
    site.url = SITE
    db.session.commit()
    return site


def integrations() -> list[SiteIntegration]:
    return list(db.session.scalars(db.select(SiteIntegration)))


def sync_events() -> list[SyncEvent]:
    return list(db.session.scalars(db.select(SyncEvent)))


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["error"]["code"] == code
    assert "request_id" in body
    return body


# -- POST /integrations/{id}/test_connection/ ------------------------------------------------


def test_stored_connection_success(mocked, editor_client, factory, wp_site) -> None:
    add_wordpress(mocked, api_key=wp_site.plain_api_key)
    integration = factory.integration(wp_site, config_json={"site_url": SITE})
    response = editor_client.post(f"{BASE}/{integration.id}/test_connection/")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["success"] is True and "Example Blog" in body["message"]
    assert body["details"]["wordpress_version"] == "6.1.9"
    assert body["details"]["plugin_present"] is True


def test_stored_connection_without_trailing_slash(mocked, editor_client, factory, wp_site) -> None:
    add_wordpress(mocked, api_key=wp_site.plain_api_key)
    integration = factory.integration(wp_site, config_json={"site_url": SITE})
    assert editor_client.post(f"{BASE}/{integration.id}/test_connection").status_code == 200


def test_stored_connection_failure_is_400_with_stage(mocked, editor_client, factory, wp_site) -> None:
    add_wordpress(mocked, plugin=False)
    integration = factory.integration(wp_site, config_json={"site_url": SITE})  # key only, no plugin
    body = assert_error(editor_client.post(f"{BASE}/{integration.id}/test_connection/"), 400, "connection_failed")
    assert body["error"]["details"]["stage"] == "plugin"
    assert [event.status for event in sync_events()] == ["failed"]


def test_stored_connection_for_unsupported_platform_is_501(editor_client, factory, wp_site) -> None:
    integration = factory.integration(wp_site, platform="custom", credentials_json={})
    assert_error(editor_client.post(f"{BASE}/{integration.id}/test_connection/"), 501, "platform_not_supported")


def test_stored_connection_needs_auth_and_editor(client, viewer_client, factory, wp_site) -> None:
    integration = factory.integration(wp_site)
    assert_error(client.post(f"{BASE}/{integration.id}/test_connection/"), 401, "not_authenticated")
    assert_error(viewer_client.post(f"{BASE}/{integration.id}/test_connection/"), 403, "permission_denied")


def test_stored_connection_of_another_tenant_is_404(api_client_for, factory, wp_site) -> None:
    integration = factory.integration(wp_site)
    stranger = api_client_for(factory.user(factory.account(), role="owner"))
    assert_error(stranger.post(f"{BASE}/{integration.id}/test_connection/"), 404, "not_found")
    assert_error(stranger.post(f"{BASE}/999999/test_connection/"), 404, "not_found")


# -- POST /integrations/test-connection/ (onboarding) ----------------------------------------


def onboard(client, site, api_key=None, site_url=SITE, **extra):
    body = {"site_id": site.id, "api_key": api_key or site.plain_api_key, "site_url": site_url, **extra}
    return client.post(ONBOARD, json=body)


def test_onboarding_creates_and_tests_the_integration(mocked, client, wp_site) -> None:
    add_wordpress(mocked, api_key=wp_site.plain_api_key)
    response = onboard(client, wp_site, plugin_version="1.0.0")  # extra fields are ignored
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["success"] is True and isinstance(body["integration_id"], int) and body["message"]
    [integration] = integrations()
    assert integration.id == body["integration_id"] and integration.platform == "wordpress"
    assert integration.credentials_json == {"api_key": wp_site.plain_api_key}
    assert integration.config_json["site_url"] == SITE
    assert integration.is_active and integration.last_connection_test_ok
    assert wp_site.plain_api_key not in response.get_data(as_text=True)


def test_onboarding_reuses_an_existing_integration(mocked, client, factory, wp_site) -> None:
    add_wordpress(mocked, api_key=wp_site.plain_api_key)
    existing = factory.integration(wp_site, config_json={"site_url": SITE})
    response = onboard(client, wp_site)
    assert response.status_code == 200
    assert response.get_json()["integration_id"] == existing.id
    assert len(integrations()) == 1


def test_onboarding_deletes_the_integration_it_created_when_the_test_fails(mocked, client, wp_site) -> None:
    add_wordpress(mocked, plugin=False)  # no plugin: an API key alone cannot be proven
    body = assert_error(onboard(client, wp_site), 400, "connection_failed")
    assert body["error"]["details"]["stage"] == "plugin"
    assert body["error"]["details"]["integration_kept"] is False
    db.session.expire_all()
    assert integrations() == []
    assert sync_events() == []


def test_onboarding_keeps_an_existing_integration_when_the_test_fails(mocked, client, factory, wp_site) -> None:
    mocked.get(f"{SITE}/wp-json/", status=500)
    existing = factory.integration(wp_site, config_json={"site_url": SITE})
    body = assert_error(onboard(client, wp_site), 400, "connection_failed")
    assert body["error"]["details"]["integration_kept"] is True
    db.session.expire_all()
    [integration] = integrations()
    assert integration.id == existing.id and integration.is_active is True  # a failed test never deactivates
    assert integration.last_connection_test_ok is False and integration.sync_status == "failed"


def test_onboarding_with_a_wrong_key_is_403_and_creates_nothing(mocked, client, wp_site) -> None:
    assert_error(onboard(client, wp_site, api_key="wrong-key-0123456789"), 403, "permission_denied")
    assert integrations() == [] and len(mocked.calls) == 0


def test_onboarding_unknown_site_is_404(client, wp_site) -> None:
    response = client.post(ONBOARD, json={"site_id": 987654, "api_key": "x" * 20, "site_url": SITE})
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("missing", ["site_id", "api_key", "site_url"])
def test_onboarding_missing_fields_are_400(client, wp_site, missing: str) -> None:
    body = {"site_id": wp_site.id, "api_key": wp_site.plain_api_key, "site_url": SITE}
    body.pop(missing)
    error = assert_error(client.post(ONBOARD, json=body), 400, "validation_error")
    assert missing in error["error"]["details"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("site_id", "abc"),
        ("site_id", 0),
        ("api_key", ""),
        ("api_key", 5),
        ("site_url", "ftp://x.example.com"),
        ("site_url", "https://user:pw@x.example.com"),
        ("site_url", "not a url"),
    ],
)
def test_onboarding_bad_fields_are_400(client, wp_site, field: str, value) -> None:
    body = {"site_id": wp_site.id, "api_key": wp_site.plain_api_key, "site_url": SITE, field: value}
    error = assert_error(client.post(ONBOARD, json=body), 400, "validation_error")
    assert field in error["error"]["details"]


def test_onboarding_without_a_body_is_400(client) -> None:
    assert_error(client.post(ONBOARD), 400, "validation_error")
    assert_error(client.post(ONBOARD, data="nope", content_type="application/json"), 400, "validation_error")


def test_onboarding_by_an_editor_of_the_account_without_the_key(mocked, editor_client, wp_site) -> None:
    add_wordpress(mocked, api_key="the-key-the-user-typed-0123")
    response = onboard(editor_client, wp_site, api_key="the-key-the-user-typed-0123")
    assert response.status_code == 200, response.get_json()


def test_onboarding_by_a_viewer_or_another_account_without_the_key_is_403(
    viewer_client, api_client_for, factory, wp_site
) -> None:
    assert_error(onboard(viewer_client, wp_site, api_key="wrong-key-0123456789"), 403, "permission_denied")
    stranger = api_client_for(factory.user(factory.account(), role="owner"))
    assert_error(onboard(stranger, wp_site, api_key="wrong-key-0123456789"), 403, "permission_denied")


def test_onboarding_route_does_not_collide_with_item_routes(client) -> None:
    assert_error(client.get(ONBOARD), 405, "method_not_allowed")
    assert_error(client.delete(ONBOARD), 405, "method_not_allowed")


def test_onboarding_is_throttled_per_client_ip(app, client, factory, wp_site, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "RATELIMIT_ONBOARDING_IP", "3/minute")
    other_sites = [factory.site(wp_site.account) for _ in range(4)]
    for target in other_sites[:3]:
        assert onboard(client, target, api_key="wrong-key-0123456789").status_code == 403
    response = onboard(client, other_sites[3], api_key="wrong-key-0123456789")
    assert_error(response, 429, "throttled")
    assert int(response.headers["Retry-After"]) > 0
    other_ip = client.post(
        ONBOARD,
        json={"site_id": wp_site.id, "api_key": "wrong-key-0123456789", "site_url": SITE},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert other_ip.status_code == 403


def test_onboarding_is_throttled_per_site_across_ips(app, client, factory, wp_site, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "RATELIMIT_ONBOARDING_SITE", "2/minute")
    body = {"site_id": wp_site.id, "api_key": "wrong-key-0123456789", "site_url": SITE}
    for number in range(2):
        response = client.post(ONBOARD, json=body, environ_base={"REMOTE_ADDR": f"198.51.100.{number + 1}"})
        assert response.status_code == 403
    response = client.post(ONBOARD, json=body, environ_base={"REMOTE_ADDR": "198.51.100.50"})
    assert_error(response, 429, "throttled")
    other_site = factory.site(wp_site.account)
    assert onboard(client, other_site, api_key="wrong-key-0123456789").status_code == 403
