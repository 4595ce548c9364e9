"""SyncService, the API side of sync jobs: ``submit`` validates a request, records its
``SyncEvent`` and enqueues its task (one sync at a time per integration); ``sync_status`` reports.

Job lifecycle: ``queued`` (recorded here, then enqueued) → ``running`` (claimed by a worker,
heartbeating; see ``runner``) → ``success`` / ``partial`` (some posts failed, named in the
details) / ``failed``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError

from ..auth import Principal
from ..errors import Conflict, InvalidInput, NotFound, PlatformNotSupported
from ..extensions import db
from ..models import Content, JobStatus, SiteIntegration, SyncEvent, SyncStatus
from ..platforms.registry import is_supported
from ..services import access
from ..timeutil import parse_iso
from . import jobs, recovery
from .schedule import TRIGGER_MANUAL
from .status_query import current_and_recent
from .structure import SyncMetadataService

logger = logging.getLogger(__name__)

SYNC_PLATFORMS = frozenset({"wordpress"})
RECENT_EVENTS = 10
STATUS_URL = "/api/v1/integration/integrations/{id}/sync_status/"


def status_url(integration_id: int) -> str:
    return STATUS_URL.format(id=integration_id)


def job_reference(event: SyncEvent) -> dict[str, Any]:
    return {
        "job_id": event.task_id,
        "sync_event_id": event.id,
        "status": "queued",
        "status_url": status_url(event.integration_id),
    }


class SyncService:
    """API side: validates a request, records the job and enqueues it."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    def integration(self, integration_id: int) -> SiteIntegration:
        return access.get_integration(self.principal, integration_id)

    # ------------------------------------------------------------------ requests

    def _content_of(self, integration: SiteIntegration, content_id: int) -> Content:
        """The principal's content on the integration's site, or 404."""
        query = access.contents_query(self.principal)
        content = db.session.scalar(query.where(Content.id == content_id, Content.site_id == integration.site_id))
        if content is None:
            raise NotFound("Content not found.")
        return content

    def start_sync(self, integration_id: int, direction: str, full: bool) -> dict[str, Any]:
        return self.submit(
            integration_id,
            jobs.SYNC,
            lambda integration: {"direction": direction, "details": {"full": full, "trigger": TRIGGER_MANUAL}},
        )

    def start_content_pull(self, integration_id: int, content_id: int) -> dict[str, Any]:
        def describe(integration: SiteIntegration) -> dict[str, Any]:
            content = self._content_of(integration, content_id)
            if not content.external_id:
                raise InvalidInput(
                    "This content has no WordPress post yet; push it with a to_external sync first.",
                    details={"content_id": ["The content has no external_id."]},
                )
            return {
                "direction": "from_external",
                "content_id": content.id,
                "details": {"content_id": content.id, "external_id": content.external_id},
            }

        return self.submit(integration_id, jobs.CONTENT_PULL, describe)

    def start_publish(self, integration_id: int, content_id: int) -> dict[str, Any]:
        """Enqueue the push of one content (its images, then its post); see ``publish``."""
        from .publish import PUBLISH  # publish imports the runner, which the API side need not load

        def describe(integration: SiteIntegration) -> dict[str, Any]:
            content = self._content_of(integration, content_id)
            if content.conflict:
                raise Conflict(
                    "The content was changed in WordPress and on the platform since the last sync; resolve the "
                    'conflict first (PATCH the content with {"conflict": null} to publish the platform copy).',
                    details={"content_id": content.id, "conflict": ["The content has an unresolved conflict."]},
                )
            return {
                "direction": "to_external",
                "content_id": content.id,
                "details": {"content_id": content.id, "external_id": content.external_id},
            }

        return self.submit(integration_id, PUBLISH, describe)

    def start_structure_update(self, integration_id: int, structure: dict[str, Any]) -> dict[str, Any]:
        # The payload travels in the job's row, not in the task arguments (ids only).
        return self.submit(
            integration_id,
            jobs.STRUCTURE,
            lambda integration: {"direction": "metadata", "details": {"structure": structure}},
        )

    def submit(
        self, integration_id: int, kind: jobs.JobKind, describe: Callable[[SiteIntegration], dict[str, Any]]
    ) -> dict[str, Any]:
        """Validate (platform, active, sync enabled), record the job ``describe`` gives the
        SyncEvent fields of, and enqueue its task; returns the job reference (202 body)."""
        integration = self.integration(integration_id)
        self.ensure_supported(integration)
        if kind.needs_sync_enabled:
            self.ensure_can_sync(integration)
        elif not integration.is_active:
            raise InvalidInput("The integration is inactive.", details={"is_active": ["Activate it first."]})
        event = SyncEvent(
            integration_id=integration.id,
            site_id=integration.site_id,
            event_type=kind.event_type,
            action=kind.action,
            status=JobStatus.queued,
            task_id=jobs.new_task_id(),
            **describe(integration),
        )
        previous_status = integration.sync_status
        if kind.holds_lock:
            # A job whose worker died must not block this request forever.
            recovery.recover_stuck_jobs(integration.id)
            event.sync_lock = integration.id
            # Only a sync changes the integration's sync_status (a publish reports in its event).
            self._record_locked(event, integration, mark_pending=kind.event_type == jobs.EVENT_SYNC)
        else:
            db.session.add(event)
            db.session.commit()
        try:
            jobs.enqueue(event, kind.task)
        except Exception:
            if kind.holds_lock:
                db.session.execute(
                    db.update(SiteIntegration)
                    .where(SiteIntegration.id == integration_id)
                    .values(sync_status=previous_status)
                )
                db.session.commit()
            raise
        logger.info("%s %s (%s) queued for integration %s", kind.event_type, event.id, event.direction, integration_id)
        return job_reference(event)

    @staticmethod
    def ensure_supported(integration: SiteIntegration) -> None:
        if integration.platform not in SYNC_PLATFORMS or not is_supported(integration.platform):
            raise PlatformNotSupported(
                f"Syncing is not supported for {integration.platform} integrations.",
                details={"platform": integration.platform},
            )

    @staticmethod
    def ensure_can_sync(integration: SiteIntegration) -> None:
        if not integration.is_active:
            raise InvalidInput("The integration is inactive.", details={"is_active": ["Activate it to sync."]})
        if not integration.sync_enabled:
            raise InvalidInput("Sync is disabled for this integration.", details={"sync_enabled": ["Enable sync."]})

    def _record_locked(self, event: SyncEvent, integration: SiteIntegration, mark_pending: bool = True) -> None:
        """Insert the job holding the integration's sync lock (a unique column): a concurrent
        request loses the race at the database and gets 409 with the winner's job id."""
        for attempt in range(2):
            db.session.add(event)
            if mark_pending:
                integration.sync_status = SyncStatus.pending
            try:
                db.session.commit()
                return
            except IntegrityError:
                db.session.rollback()
                conflict = self._already_running(integration.id)
                if conflict.details or attempt == 1:
                    raise conflict from None
                # The lock holder finished between our insert and the lookup: try once more
                # (the rollback expunged the pending event, so it is added again).

    @staticmethod
    def _already_running(integration_id: int) -> Conflict:
        running = db.session.scalar(db.select(SyncEvent).where(SyncEvent.sync_lock == integration_id))
        details: dict[str, Any] = {}
        what = "A sync"
        if running is not None:
            details = {"job_id": running.task_id, "sync_event_id": running.id, "status": running.status}
            if running.event_type != jobs.EVENT_SYNC:
                details["event_type"] = running.event_type
                what = f"A {running.event_type} job (content {running.content_id})" if running.content_id else "A job"
        return Conflict(
            f"{what} is already queued or running for this integration.",
            details=details,
            extra={key: details[key] for key in ("job_id", "sync_event_id") if key in details},
        )

    # ------------------------------------------------------------------ status

    def content_types(self, integration_id: int) -> dict[str, Any]:
        return SyncMetadataService(self.integration(integration_id)).content_types()

    def sync_status(self, integration_id: int) -> dict[str, Any]:
        # The events first, then the integration (each statement sees what was committed before
        # it): a job's finish writes both in one transaction, so a poll that sees the job finished
        # also sees the integration's outcome, never "syncing" without a current job. Nothing is
        # returned before the tenancy check of get_integration_status (other tenants: 404).
        current, recent = current_and_recent(integration_id, RECENT_EVENTS)  # one statement, plain rows
        integration = access.get_integration_status(self.principal, integration_id)  # a row: no credentials
        return {
            "sync_status": integration.sync_status,
            "last_sync_at": integration.last_sync_at,
            "sync_error": integration.sync_error,
            "current_job": current_job(current),
            "recent_events": recent,
        }


def current_job(event: SyncEvent | Row[Any] | None) -> dict[str, Any] | None:
    """The job holding the sync lock, from the ORM object or a plain row (``status_query``)."""
    if event is None:
        return None
    details = event.details or {}
    # Why a job that already ran is queued again: a retry, its next slice, or a resume after its
    # worker died (set by the worker each time it puts the job back).
    waiting_for = details.get("waiting_for") if event.status == JobStatus.queued else None
    return {
        "job_id": event.task_id,
        "sync_event_id": event.id,
        "direction": event.direction,
        "state": event.status,
        "progress": {"done": event.progress_done, "total": event.progress_total},
        "started_at": event.started_at,
        "heartbeat_at": event.heartbeat_at,
        "stuck": recovery.is_stuck(event),
        # Added fields (issue 10): which attempt runs (or runs next), out of how many, and when a
        # waiting retry is due; ``waiting_for`` says why a started job is queued again.
        "attempt": int(details.get("attempt") or 1),
        "max_attempts": int(details.get("max_attempts") or current_app.config["SYNC_MAX_RETRIES"] + 1),
        "next_retry_at": parse_iso(details.get("next_retry_at")) if waiting_for == "retry" else None,
        "waiting_for": waiting_for,
    }
