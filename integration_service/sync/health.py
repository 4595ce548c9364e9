"""SyncHealthService: the ``debug_status`` health view of one integration.

Every query is bounded and indexed (sync_lock is unique; events by (integration_id, id) and
(integration_id, event_type, status); contents by (site_id, external_status)), so the endpoint
is cheap enough to poll."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import func

from ..auth import Principal
from ..extensions import db
from ..models import Content, JobStatus, SyncEvent, utcnow
from ..services import access
from . import jobs, recovery, schedule
from .requests import current_job

RECENT_FAILURES = 5
COUNT_KEYS = ("created", "updated", "unchanged", "missing", "pushed", "conflicts", "errors")


class SyncHealthService:
    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    def debug_status(self, integration_id: int) -> dict[str, Any]:
        integration = access.get_integration(self.principal, integration_id)
        now = utcnow()
        active = db.session.scalar(db.select(SyncEvent).where(SyncEvent.sync_lock == integration.id))
        last_sync = jobs.last_finished_sync(integration.id)
        failures = db.session.scalars(
            db.select(SyncEvent)
            .where(SyncEvent.integration_id == integration.id, SyncEvent.status == JobStatus.failed)
            .order_by(SyncEvent.id.desc())
            .limit(RECENT_FAILURES)
        ).all()
        by_state = dict(
            db.session.execute(
                db.select(Content.external_status, func.count(Content.id))
                .where(Content.site_id == integration.site_id)
                .group_by(Content.external_status)
            ).all()
        )
        conflicts = db.session.scalar(
            db.select(func.count(Content.id)).where(
                Content.site_id == integration.site_id, Content.conflict.is_not(None)
            )
        )
        content_types = (integration.config_json or {}).get("content_types") or {}
        stuck = recovery.is_stuck(active, now) if active is not None else False
        return {
            "integration_id": integration.id,
            "platform": integration.platform,
            "is_active": integration.is_active,
            "sync_enabled": integration.sync_enabled,
            "sync_status": integration.sync_status,
            "sync_error": integration.sync_error,
            "last_sync_at": integration.last_sync_at,
            "last_connection_test": {
                "at": integration.last_connection_test_at,
                "success": integration.last_connection_test_ok,
            },
            "last_sync": _event_summary(last_sync),
            "current_job": current_job(active),
            "stuck_job": {
                "detected": stuck,
                "stuck_after_seconds": int(current_app.config["SYNC_STUCK_AFTER_SECONDS"]),
                "heartbeat_age_seconds": _age(active.heartbeat_at, now) if active is not None else None,
                "sync_event_id": active.id if stuck and active is not None else None,
            },
            "recent_failures": [_event_summary(event) for event in failures],
            "schedule": schedule.schedule_status(integration, now),
            "last_webhook_at": integration.last_webhook_at,
            "last_pull_modified_gmt": integration.last_pull_modified_gmt,
            "last_structure_fetch": content_types.get("last_structure_fetch")
            if isinstance(content_types, dict)
            else None,
            "content_counts": {
                "total": sum(by_state.values()),
                "by_external_status": {
                    (state or "not_synced"): count
                    for state, count in sorted(by_state.items(), key=lambda item: item[0] or "")
                },
                "conflicts": conflicts,
            },
        }


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round((now - moment).total_seconds(), 1)


def _event_summary(event: SyncEvent | None) -> dict[str, Any] | None:
    if event is None:
        return None
    details = event.details or {}
    return {
        "id": event.id,
        "job_id": event.task_id,
        "event_type": event.event_type,
        "direction": event.direction,
        "status": event.status,
        "counts": {key: details[key] for key in COUNT_KEYS if key in details},
        "error_message": event.error_message,
        "started_at": event.started_at,
        "finished_at": event.finished_at,
    }
