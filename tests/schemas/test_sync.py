"""``dump_sync_status`` (the poll's hand-written dump) gives exactly ``SyncStatusSchema().dump``."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from integration_service.auth import Principal, Role
from integration_service.extensions import db
from integration_service.models import SyncEvent, utcnow
from integration_service.schemas import SyncStatusSchema
from integration_service.schemas.sync import dump_sync_status
from integration_service.sync.requests import SyncService


def _event(integration, **fields) -> SyncEvent:
    values = {
        "integration_id": integration.id,
        "site_id": integration.site_id,
        "event_type": "sync",
        "status": "success",
        "task_id": str(uuid.uuid4()),
    }
    values.update(fields)
    event = SyncEvent(**values)
    db.session.add(event)
    db.session.commit()
    return event


def _status(integration) -> dict:
    principal = Principal(account_id=integration.site.account_id, role=Role.viewer, user_id=1)
    return SyncService(principal).sync_status(integration.id)


def test_the_written_out_dump_equals_the_schemas_for_every_kind_of_event(app, factory, site):
    integration = factory.integration(site, sync_error="HTTP 500 from the site")
    now = utcnow()
    # Every column shape a poll shows: nulls and values, a sync's direction folded into its
    # details, a structure update's payload shown as counts, webhook and failed events.
    _event(
        integration,
        direction="from_external",
        details={"counts": {"created": 3}},
        progress_done=3,
        started_at=now - timedelta(minutes=2),
        finished_at=now - timedelta(minutes=1),
    )
    _event(
        integration,
        event_type="site_structure",
        action="update",
        direction=None,
        task_id=None,
        details={"structure": {"post_types": {"post": {}, "page": {}}, "taxonomies": {"category": {}}}},
    )
    _event(
        integration,
        event_type="webhook_status",
        action="status",
        direction="from_external",
        status="failed",
        error_message="Content not found.",
        details={"outcome": "not_found", "post_id": 9},
        content_id=None,
        started_at=now,
        finished_at=now,
    )
    _event(integration, status="failed", details=None, error_message="boom", direction="both")
    # The current job: a retry waiting for its next attempt.
    _event(
        integration,
        status="queued",
        direction="both",
        sync_lock=integration.id,
        started_at=now,
        heartbeat_at=now,
        progress_done=40,
        progress_total=100,
        details={
            "attempt": 2,
            "max_attempts": 4,
            "waiting_for": "retry",
            "next_retry_at": (now + timedelta(seconds=30)).isoformat(),
        },
    )

    status = _status(integration)
    assert status["current_job"]["waiting_for"] == "retry" and len(status["recent_events"]) == 5
    assert dump_sync_status(status) == SyncStatusSchema().dump(status)


@pytest.mark.parametrize("job_state", [None, "running"])
def test_the_written_out_dump_equals_the_schemas_without_events_or_with_a_running_job(app, factory, site, job_state):
    integration = factory.integration(site)
    if job_state:
        _event(integration, status=job_state, sync_lock=integration.id, started_at=utcnow(), direction="to_external")
    status = _status(integration)
    assert (status["current_job"] is None) == (job_state is None)
    assert dump_sync_status(status) == SyncStatusSchema().dump(status)
