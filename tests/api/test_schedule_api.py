"""The schedule on the integration resource: sync_interval_minutes (writable), next_sync_at and
paused_reason (read-only), bad input, other tenants, and the schedule in debug_status."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from integration_service.extensions import db
from integration_service.models import SiteIntegration, utcnow

URL = "/api/v1/integration/integrations/"
WP_KEY = "plugin-key-0123456789abcdef"


def item_url(integration_id: int) -> str:
    return f"{URL}{integration_id}/"


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def create(editor_client, site, **extra: Any):
    return editor_client.post(URL, json={"site_id": site.id, "platform": "wordpress", "api_key": WP_KEY, **extra})


def test_a_new_integration_is_scheduled_every_15_minutes_by_default(editor_client, site):
    before = utcnow()
    response = create(editor_client, site)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["sync_interval_minutes"] == 15 and body["paused_reason"] is None
    # The first run falls somewhere within the first interval (jitter), not at creation.
    assert before <= parse(body["next_sync_at"]) <= utcnow() + timedelta(minutes=15)


def test_null_means_manual_syncs_only(editor_client, site):
    body = create(editor_client, site, sync_interval_minutes=None).get_json()
    assert body["sync_interval_minutes"] is None and body["next_sync_at"] is None


def test_changing_the_interval_retimes_the_next_run(editor_client, factory, site):
    integration = factory.integration(site, sync_interval_minutes=15, next_sync_at=utcnow() + timedelta(minutes=14))
    response = editor_client.patch(item_url(integration.id), json={"sync_interval_minutes": 1})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["sync_interval_minutes"] == 1
    assert parse(body["next_sync_at"]) <= utcnow() + timedelta(minutes=1)

    body = editor_client.patch(item_url(integration.id), json={"sync_interval_minutes": None}).get_json()
    assert body["sync_interval_minutes"] is None and body["next_sync_at"] is None


def test_read_only_schedule_fields_sent_back_are_ignored(editor_client, factory, site):
    integration = factory.integration(site, sync_interval_minutes=15, paused_reason="auth_failed")
    response = editor_client.patch(
        item_url(integration.id), json={"paused_reason": None, "next_sync_at": "2020-01-01T00:00:00Z"}
    )
    assert response.status_code == 200
    assert response.get_json()["paused_reason"] == "auth_failed"
    assert db.session.get(SiteIntegration, integration.id).next_sync_at is None


@pytest.mark.parametrize("value", [0, -5, "15", 1.5, True, [15], {"minutes": 15}, 10**12])
def test_a_bad_interval_is_400_with_the_error_envelope(editor_client, factory, site, value):
    integration = factory.integration(site, sync_interval_minutes=15)
    response = editor_client.patch(item_url(integration.id), json={"sync_interval_minutes": value})
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and "sync_interval_minutes" in error["details"]
    assert db.session.get(SiteIntegration, integration.id).sync_interval_minutes == 15

    response = create(editor_client, factory.site(site.account), sync_interval_minutes=value)
    assert response.status_code == 400
    assert "sync_interval_minutes" in response.get_json()["error"]["details"]


def test_a_schedule_change_on_another_tenants_integration_is_404(editor_client, factory):
    foreign = factory.integration(factory.site(factory.account()), sync_interval_minutes=15)
    response = editor_client.patch(item_url(foreign.id), json={"sync_interval_minutes": 1})
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert db.session.get(SiteIntegration, foreign.id).sync_interval_minutes == 15


def test_debug_status_shows_the_schedule(editor_client, factory, site):
    last = utcnow() - timedelta(minutes=40)
    integration = factory.integration(
        site,
        sync_interval_minutes=15,
        next_sync_at=utcnow() + timedelta(minutes=50),
        last_scheduled_sync_at=last,
        sync_failure_count=2,
    )
    response = editor_client.get(f"{item_url(integration.id)}debug_status/")
    assert response.status_code == 200
    schedule = response.get_json()["schedule"]
    assert schedule["enabled"] is True and schedule["interval_minutes"] == 15
    assert schedule["consecutive_failures"] == 2 and schedule["backoff"] is True
    assert schedule["paused_reason"] is None and schedule["overdue_seconds"] == 0
    assert parse(schedule["last_scheduled_sync_at"]) == last.replace(microsecond=last.microsecond)
    assert parse(schedule["next_sync_at"]) > utcnow() + timedelta(minutes=49)

    integration.paused_reason = "auth_failed"
    db.session.commit()
    schedule = editor_client.get(f"{item_url(integration.id)}debug_status/").get_json()["schedule"]
    assert schedule["paused_reason"] == "auth_failed" and schedule["backoff"] is False
