"""ConnectionTestService: what a connection test records, and that secrets stay out of it."""

from __future__ import annotations

import json
import logging

import pytest
import requests
import responses

from integration_service.auth import Principal
from integration_service.errors import ConnectionFailed, PlatformNotSupported
from integration_service.extensions import db
from integration_service.models import Role, SyncEvent
from integration_service.platforms.ssrf import DnsFailure
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
    integration.sync_status, integration.sync_error = "failed", "old connection failure"
    db.session.commit()
    report = ConnectionTestService().run(integration)
    assert report.success, report.message
    [event] = events()
    assert event.event_type == "test_connection" and event.status == "success"
    assert event.details["duration_ms"] >= 0 and "stage" not in event.details
    assert event.details["site_name"] == "Example Blog"
    assert event.started_at is not None and event.finished_at is not None and event.error_message is None
    db.session.refresh(integration)
    # No sync ever finished: back to idle, and no error beside it.
    assert integration.sync_status == "idle" and integration.sync_error is None
    assert integration.last_connection_test_ok is True and integration.last_connection_test_at is not None


def test_a_passing_test_does_not_reactivate_an_integration_the_owner_disabled(mocked, integration, site) -> None:
    add_wordpress(mocked, api_key=site.plain_api_key)
    integration.is_active = False
    db.session.commit()
    assert ConnectionTestService().run(integration).success
    db.session.refresh(integration)
    assert integration.is_active is False and integration.last_connection_test_ok is True


def _break_site(mocked, integration, stage: str) -> None:
    body = {
        "connect": requests.ConnectionError("[Errno 111] Connection refused"),
        "timeout": requests.exceptions.ConnectTimeout("timed out"),
        "tls": requests.exceptions.SSLError("CERTIFICATE_VERIFY_FAILED"),
    }
    if stage == "dns":
        mocked.get(f"{SITE}/wp-json/", body=DnsFailure("The host name wp.example.test could not be resolved."))
    elif stage == "http":
        mocked.get(f"{SITE}/wp-json/", status=503, headers={"Retry-After": "0"})
    elif stage == "auth":
        add_wordpress(mocked, api_key=integration.site.plain_api_key)
        integration.credentials_json = {**integration.credentials_json, "app_password": "wrong password"}
        db.session.commit()
    else:
        mocked.get(f"{SITE}/wp-json/", body=body[stage])


@pytest.mark.parametrize("stage", ["dns", "connect", "timeout", "tls", "http", "auth"])
def test_a_failed_test_records_the_failure_and_never_deactivates(mocked, integration, stage) -> None:
    _break_site(mocked, integration, stage)
    with pytest.raises(ConnectionFailed) as excinfo:
        principal = Principal(account_id=integration.site.account_id, role=Role.editor, site_id=integration.site_id)
        check_stored_connection(principal, integration.id)
    assert excinfo.value.details["stage"] == stage
    [event] = events()
    assert event.status == "failed" and event.details["stage"] == stage and event.error_message
    db.session.refresh(integration)
    assert integration.is_active is True
    assert integration.last_connection_test_ok is False
    # sync_status and sync_error agree: an error is never shown beside "success".
    assert integration.sync_status == "failed" and integration.sync_error == event.error_message


def test_a_passing_test_after_a_failed_one_restores_the_last_sync_outcome(mocked, integration, site) -> None:
    db.session.add(
        SyncEvent(integration_id=integration.id, site_id=site.id, event_type="sync", action="sync", status="success")
    )
    integration.sync_status = "success"
    db.session.commit()
    mocked.get(f"{SITE}/wp-json/", body=requests.ConnectionError("[Errno 111] Connection refused"))
    assert not ConnectionTestService().run(integration).success
    db.session.refresh(integration)
    assert (integration.sync_status, integration.last_connection_test_ok) == ("failed", False)
    mocked.reset()
    add_wordpress(mocked, api_key=site.plain_api_key)
    assert ConnectionTestService().run(integration).success
    db.session.refresh(integration)
    assert integration.sync_status == "success" and integration.sync_error is None and integration.is_active


def test_a_failed_test_leaves_a_running_sync_to_report_its_own_outcome(mocked, integration) -> None:
    integration.sync_status = "syncing"
    db.session.commit()
    mocked.get(f"{SITE}/wp-json/", status=500)
    assert not ConnectionTestService().run(integration).success
    db.session.refresh(integration)
    assert integration.sync_status == "syncing" and integration.sync_error is None
    assert integration.last_connection_test_ok is False and integration.is_active


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
