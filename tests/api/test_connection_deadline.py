"""A connection test against a slow site ends at CONNECTION_TEST_DEADLINE_SECONDS with
400 ``connection_failed`` stage ``timeout``, records its SyncEvent, and onboarding leaves no
integration behind on any failure path (issue 12, item 2)."""

from __future__ import annotations

import time

import pytest

from integration_service.extensions import db
from integration_service.models import SiteIntegration, SyncEvent
from integration_service.platforms.base import ConnectionReport
from integration_service.platforms.wordpress import WordPressClient
from tests.support.slow_site import SlowSite

BASE = "/api/v1/integration/integrations"
ONBOARD = f"{BASE}/test-connection/"
DEADLINE = 1.5
SLACK = 1.0


@pytest.fixture
def slow_site(app, monkeypatch):
    monkeypatch.setitem(app.config, "CONNECTION_TEST_DEADLINE_SECONDS", DEADLINE)
    with SlowSite("trickle", interval=0.1) as site:
        yield site


def integrations() -> list[SiteIntegration]:
    return list(db.session.scalars(db.select(SiteIntegration)))


def test_stored_connection_test_ends_at_the_deadline_and_records_the_event(
    editor_client, factory, site, slow_site
) -> None:
    integration = factory.integration(
        site, config_json={"site_url": slow_site.url}, credentials_json={"api_key": site.plain_api_key}
    )
    started = time.monotonic()
    response = editor_client.post(f"{BASE}/{integration.id}/test_connection/")
    elapsed = time.monotonic() - started
    body = response.get_json()
    assert response.status_code == 400, body
    assert body["error"]["code"] == "connection_failed"
    assert body["error"]["details"]["stage"] == "timeout"
    assert body["error"]["details"]["deadline_seconds"] == DEADLINE
    assert elapsed < DEADLINE + SLACK
    db.session.expire_all()
    [event] = db.session.scalars(db.select(SyncEvent))
    assert event.event_type == "test_connection" and event.status == "failed"
    assert event.details["stage"] == "timeout" and event.integration_id == integration.id
    assert db.session.get(SiteIntegration, integration.id).last_connection_test_ok is False


def test_onboarding_against_a_slow_site_answers_timeout_and_stores_nothing(client, site, slow_site) -> None:
    started = time.monotonic()
    response = client.post(ONBOARD, json={"site_id": site.id, "api_key": site.plain_api_key, "site_url": slow_site.url})
    elapsed = time.monotonic() - started
    body = response.get_json()
    assert response.status_code == 400, body
    assert body["error"]["code"] == "connection_failed" and body["error"]["details"]["stage"] == "timeout"
    assert body["error"]["details"]["integration_kept"] is False
    assert elapsed < DEADLINE + SLACK
    db.session.expire_all()
    assert integrations() == [] and list(db.session.scalars(db.select(SyncEvent))) == []


def test_onboarding_stores_no_integration_while_the_test_runs(app, client, site, monkeypatch) -> None:
    """A worker killed mid-test (gunicorn's timeout) can leave only what was committed before."""
    seen: list[int] = []

    def observe(self):
        # What another connection (or a later request, after a kill) sees during the test.
        with db.engine.connect() as connection:
            seen.append(connection.scalar(db.select(db.func.count()).select_from(SiteIntegration)))
        return ConnectionReport(True, "Connected.", {})

    monkeypatch.setattr(WordPressClient, "test_connection", observe)
    response = client.post(
        ONBOARD, json={"site_id": site.id, "api_key": site.plain_api_key, "site_url": "http://127.0.0.1:9/"}
    )
    assert response.status_code == 200, response.get_json()
    assert seen == [0]
    db.session.expire_all()
    [integration] = integrations()
    assert response.get_json()["integration_id"] == integration.id
    [event] = db.session.scalars(db.select(SyncEvent))
    assert event.integration_id == integration.id and event.status == "success"


def test_onboarding_that_crashes_mid_test_leaves_nothing(client, site, monkeypatch) -> None:
    def crash(self):
        raise RuntimeError("worker died")

    monkeypatch.setattr(WordPressClient, "test_connection", crash)
    response = client.post(
        ONBOARD, json={"site_id": site.id, "api_key": site.plain_api_key, "site_url": "http://127.0.0.1:9/"}
    )
    assert response.status_code == 500 and response.get_json()["error"]["code"] == "internal_error"
    db.session.rollback()
    assert integrations() == []
