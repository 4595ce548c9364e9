"""ConnectionTestService: what a connection test records, and that secrets stay out of it."""

from __future__ import annotations

import json
import logging

import pytest
import responses

from integration_service.auth import Principal
from integration_service.errors import ConnectionFailed, PlatformNotSupported
from integration_service.extensions import db
from integration_service.models import Role, SyncEvent
from integration_service.services.connection import ConnectionTestService, check_stored_connection
from tests.platforms.fakes import (
    APP_PASSWORD,
    SITE,
    USERNAME,
    add_wordpress,
    basic,
    fake_dns_fixture,  # noqa: F401 - fixture
    mocked_fixture,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.usefixtures("fake_dns")


@pytest.fixture
def integration(factory, site):
    site.url = SITE
    db.session.commit()
    return factory.integration(
        site,
        config_json={"site_url": SITE},
        credentials_json={"api_key": site.plain_api_key, "username": USERNAME, "app_password": APP_PASSWORD},
    )


def events() -> list[SyncEvent]:
    return list(db.session.scalars(db.select(SyncEvent).order_by(SyncEvent.id)))


def test_success_records_an_event_and_marks_the_integration_healthy(mocked, integration, site) -> None:
    add_wordpress(mocked, api_key=site.plain_api_key)
    integration.is_active = False
    integration.sync_error = "old failure"
    db.session.commit()
    report = ConnectionTestService().run(integration)
    assert report.success, report.message
    [event] = events()
    assert event.event_type == "test_connection" and event.status == "success"
    assert event.details["duration_ms"] >= 0 and "stage" not in event.details
    assert event.details["site_name"] == "Example Blog"
    assert event.started_at is not None and event.finished_at is not None and event.error_message is None
    db.session.refresh(integration)
    assert integration.is_active is True and integration.sync_error is None
    assert integration.last_connection_test_ok is True and integration.last_connection_test_at is not None


def test_failure_records_the_stage_and_deactivates(mocked, integration) -> None:
    mocked.get(f"{SITE}/wp-json/", status=500)
    with pytest.raises(ConnectionFailed) as excinfo:
        principal = Principal(account_id=integration.site.account_id, role=Role.editor, site_id=integration.site_id)
        check_stored_connection(principal, integration.id)
    assert excinfo.value.details["stage"] == "http"
    [event] = events()
    assert event.status == "failed" and event.details["stage"] == "http" and "500" in event.error_message
    db.session.refresh(integration)
    assert integration.is_active is False and integration.last_connection_test_ok is False
    assert "500" in integration.sync_error


def test_a_connection_test_retries_at_most_once(mocked, integration) -> None:
    mocked.get(f"{SITE}/wp-json/", status=503, headers={"Retry-After": "0"})
    report = ConnectionTestService().run(integration)
    assert report.details["stage"] == "http"
    assert len(mocked.calls) == 2  # TestingConfig allows 2 retries; a diagnostic uses at most 1


def test_unsupported_platform_records_nothing(factory, site) -> None:
    integration = factory.integration(site, platform="shopify", credentials_json={})
    with pytest.raises(PlatformNotSupported):
        ConnectionTestService().run(integration)
    assert events() == []


def test_no_secret_in_logs_events_or_report(mocked, integration, site, caplog) -> None:
    """A site that echoes the credentials it received: nothing secret may come back anywhere."""

    def echo(request):
        message = f"got {request.headers.get('Authorization')} and {request.headers.get('X-API-Key')}"
        return 401, {}, json.dumps({"code": "incorrect_password", "message": message})

    add_wordpress(mocked, api_key=site.plain_api_key)
    mocked.remove(responses.GET, f"{SITE}/wp-json/wp/v2/users/me")
    mocked.add_callback(responses.GET, f"{SITE}/wp-json/wp/v2/users/me", callback=echo)
    caplog.set_level(logging.DEBUG)
    report = ConnectionTestService().run(integration)
    assert not report.success and report.details["stage"] == "auth"
    secrets = [site.plain_api_key, APP_PASSWORD, APP_PASSWORD.replace(" ", ""), basic(USERNAME, APP_PASSWORD)]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    [event] = events()
    stored = json.dumps(event.details) + (event.error_message or "") + json.dumps(report.details) + report.message
    assert "connection test of integration" in logged  # the test did log
    for secret in secrets:
        assert secret not in logged
        assert secret not in stored
