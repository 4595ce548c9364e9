"""SyncService: starting jobs from the API (one sync at a time per integration) and running
them in the workers (``workers/tasks.py`` calls the ``run_*`` functions with ids only).

Job lifecycle: ``queued`` (recorded here, then enqueued) → ``running`` (claimed by a worker,
heartbeating) → ``success`` / ``partial`` (some posts failed, named in the details) / ``failed``.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import IntegrityError

from .. import sync_schedule
from ..auth import Principal
from ..errors import Conflict, InvalidInput, NotFound, PlatformNotSupported
from ..extensions import db
from ..models import Content, SiteIntegration, SyncEvent, utcnow
from ..platforms.base import PlatformError, PostNotFound
from . import access, jobs
from .content_sync import ContentSyncService, Progress, SyncCounts, apply_remote
from .sync_metadata import SyncMetadataService

logger = logging.getLogger(__name__)

SYNC_PLATFORMS = frozenset({"wordpress"})
RECENT_EVENTS = 10
STATUS_URL = "/api/v1/integration/integrations/{id}/sync_status/"


class RetryLater(Exception):
    """A transient platform error: the task should be retried after ``countdown`` seconds."""

    def __init__(self, countdown: float, message: str) -> None:
        super().__init__(message)
        self.countdown = countdown


def client_for(integration: SiteIntegration):
    # Imported late: the platform registry pulls in the HTTP client stack.
    from ..platforms.registry import client_for as registry_client_for

    return registry_client_for(integration)


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

    @staticmethod
    def ensure_supported(integration: SiteIntegration) -> None:
        from ..platforms.registry import is_supported

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

    def start_sync(self, integration_id: int, direction: str, full: bool) -> dict[str, Any]:
        integration = self.integration(integration_id)
        self.ensure_supported(integration)
        self.ensure_can_sync(integration)
        # A job whose worker died must not block this request forever.
        jobs.recover_stuck_jobs(integration.id)
        previous_status = integration.sync_status
        event = SyncEvent(
            integration_id=integration.id,
            site_id=integration.site_id,
            event_type=jobs.EVENT_SYNC,
            action="sync",
            direction=direction,
            status="queued",
            details={"direction": direction, "full": full, "trigger": sync_schedule.TRIGGER_MANUAL},
            task_id=jobs.new_task_id(),
            sync_lock=integration.id,
        )
        self._record_locked(event, integration)
        event_id = event.id
        try:
            jobs.enqueue(event, jobs.TASK_SYNC)
        except Exception:
            db.session.execute(
                db.update(SiteIntegration)
                .where(SiteIntegration.id == integration_id)
                .values(sync_status=previous_status)
            )
            db.session.commit()
            raise
        logger.info("sync %s (%s, full=%s) queued for integration %s", event_id, direction, full, integration_id)
        return job_reference(event)

    def _record_locked(self, event: SyncEvent, integration: SiteIntegration) -> None:
        """Insert the job holding the integration's sync lock (a unique column): a concurrent
        request loses the race at the database and gets 409 with the winner's job id."""
        for attempt in range(2):
            db.session.add(event)
            integration.sync_status = "pending"
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
        if running is not None:
            details = {"job_id": running.task_id, "sync_event_id": running.id, "status": running.status}
        return Conflict(
            "A sync is already queued or running for this integration.",
            details=details,
            extra={key: details[key] for key in ("job_id", "sync_event_id") if key in details},
        )

    def start_content_pull(self, integration_id: int, content_id: int) -> dict[str, Any]:
        integration = self.integration(integration_id)
        self.ensure_supported(integration)
        self.ensure_can_sync(integration)
        content = db.session.scalar(
            access.contents_query(self.principal).where(
                Content.id == content_id, Content.site_id == integration.site_id
            )
        )
        if content is None:
            raise NotFound("Content not found.")
        if not content.external_id:
            raise InvalidInput(
                "This content has no WordPress post yet; push it with a to_external sync first.",
                details={"content_id": ["The content has no external_id."]},
            )
        event = SyncEvent(
            integration_id=integration.id,
            site_id=integration.site_id,
            event_type=jobs.EVENT_CONTENT_PULL,
            action="sync_wordpress_content",
            direction="from_external",
            status="queued",
            content_id=content.id,
            details={"content_id": content.id, "external_id": content.external_id},
            task_id=jobs.new_task_id(),
        )
        db.session.add(event)
        db.session.commit()
        jobs.enqueue(event, jobs.TASK_CONTENT_PULL)
        return job_reference(event)

    def start_structure_update(self, integration_id: int, structure: dict[str, Any]) -> dict[str, Any]:
        integration = self.integration(integration_id)
        self.ensure_supported(integration)
        if not integration.is_active:
            raise InvalidInput("The integration is inactive.", details={"is_active": ["Activate it first."]})
        # The payload travels in the job's row, not in the task arguments (ids only).
        event = SyncEvent(
            integration_id=integration.id,
            site_id=integration.site_id,
            event_type=jobs.EVENT_STRUCTURE,
            action="update_site_structure",
            direction="metadata",
            status="queued",
            details={"structure": structure},
            task_id=jobs.new_task_id(),
        )
        db.session.add(event)
        db.session.commit()
        jobs.enqueue(event, jobs.TASK_STRUCTURE)
        return job_reference(event)

    def content_types(self, integration_id: int) -> dict[str, Any]:
        return SyncMetadataService(self.integration(integration_id)).content_types()

    def sync_status(self, integration_id: int) -> dict[str, Any]:
        integration = self.integration(integration_id)
        # Both queries use an index: the unique sync_lock, and (integration_id, id).
        current = db.session.scalar(db.select(SyncEvent).where(SyncEvent.sync_lock == integration.id))
        recent = db.session.scalars(
            db.select(SyncEvent)
            .where(SyncEvent.integration_id == integration.id)
            .order_by(SyncEvent.id.desc())
            .limit(RECENT_EVENTS)
        ).all()
        return {
            "sync_status": integration.sync_status,
            "last_sync_at": integration.last_sync_at,
            "sync_error": integration.sync_error,
            "current_job": current_job(current),
            "recent_events": recent,
        }


def current_job(event: SyncEvent | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "job_id": event.task_id,
        "sync_event_id": event.id,
        "direction": event.direction,
        "state": event.status,
        "progress": {"done": event.progress_done, "total": event.progress_total},
        "started_at": event.started_at,
        "heartbeat_at": event.heartbeat_at,
        "stuck": jobs.is_stuck(event),
    }


# ---------------------------------------------------------------------- worker side


def _describe(exc: PlatformError) -> str:
    return f"{exc.stage}: {exc.message}" + (f" (HTTP {exc.status_code})" if exc.status_code else "")


def _retry_or_fail(
    claim: jobs.Claim, exc: PlatformError, details: dict[str, Any], retries: int, max_retries: int
) -> str | None:
    """Requeue for a retry (raises RetryLater) on a transient error with retries left; else return
    the failure message."""
    message = _describe(exc)
    if exc.transient and retries < max_retries:
        countdown = jobs.backoff_seconds(retries, exc.retry_after)
        retry_details = {**details, "attempts": retries + 1, "next_retry_in_seconds": countdown}
        if jobs.requeue_for_retry(claim, f"attempt {retries + 1} failed ({message}); retrying", retry_details):
            logger.warning("sync event %s: transient error (%s); retry in %ss", claim.event_id, message, countdown)
            raise RetryLater(countdown, message)
        return None
    return message


def run_sync_job(event_id: int, task_id: str | None, retries: int = 0, max_retries: int = 3) -> dict[str, Any]:
    claim = jobs.claim(event_id, task_id)
    if claim is None:
        logger.info("sync event %s: not claimable (finished, gone or owned elsewhere); skipping", event_id)
        return {"status": "skipped"}
    event = db.session.get(SyncEvent, event_id)
    db.session.refresh(event)
    integration = db.session.get(SiteIntegration, event.integration_id)
    direction = event.direction or "both"
    full = bool((event.details or {}).get("full"))
    base_details: dict[str, Any] = {
        **sync_schedule.carried_details(event.details),
        "direction": direction,
        "full": full,
        "attempts": retries + 1,
    }
    if not integration.is_active or not integration.sync_enabled:
        message = "The integration was deactivated or its sync disabled before the job ran."
        jobs.finish(claim, "failed", base_details, message, update_integration=True)
        return {"status": "failed"}
    integration.sync_status = "syncing"
    db.session.commit()

    counts = SyncCounts()
    progress = Progress(lambda done, total: jobs.heartbeat(claim, done, total))
    extra: dict[str, Any] = {}
    failure: str | None = None
    failed_stage: str | None = None
    try:
        client = client_for(integration)
        try:
            if direction == "metadata":
                extra = SyncMetadataService(integration).fetch_and_store(client)
            else:
                service = ContentSyncService(integration, client, counts, progress, job_id=event_id)
                if direction in ("from_external", "both"):
                    service.pull(full=full, detect_conflicts=True)
                    extra["incremental"] = service.incremental_used
                if direction in ("to_external", "both"):
                    progress.add_total(service.count_push_candidates())
                    progress.report()
                    service.push(count_unchanged=direction == "to_external")
        finally:
            close = getattr(client, "close", None)
            if close is not None:
                close()
    except jobs.LostOwnership:
        db.session.rollback()
        logger.warning("sync event %s: lost ownership (taken over or marked stuck); stopping", event_id)
        return {"status": "abandoned"}
    except PlatformError as exc:
        db.session.rollback()
        failed_stage = exc.stage
        failure = _retry_or_fail(claim, exc, {**base_details, **counts.as_details()}, retries, max_retries)
        if failure is None:
            return {"status": "abandoned"}
    except SoftTimeLimitExceeded:
        db.session.rollback()
        failure = "The sync exceeded its time limit."
    except Exception as exc:
        db.session.rollback()
        logger.exception("sync event %s failed unexpectedly", event_id)
        failure = f"Internal error ({type(exc).__name__}); see the worker log."

    details = {**base_details, **counts.as_details(), **extra}
    if failure is not None:
        status, error = "failed", failure
    elif counts.errors:
        status = "partial"
        named = ", ".join(_item_name(item) for item in counts.failed_items[:5])
        error = f"{counts.errors} item(s) could not be synced: {named}"
    else:
        status, error = "success", None
    if not jobs.finish(claim, status, details, error, done=progress.done, update_integration=True):
        return {"status": "abandoned"}
    sync_schedule.after_sync_job(event_id, status, failed_stage)
    summary = {key: value for key, value in counts.as_details().items() if isinstance(value, int)}
    logger.info("sync event %s finished: %s %s", event_id, status, summary)
    return {"status": status}


def _item_name(item: dict[str, Any]) -> str:
    if item.get("external_id"):
        return f"{item.get('content_type', 'post')} {item['external_id']}"
    if item.get("content_id"):
        return f"content {item['content_id']}"
    if item.get("page"):
        return f"{item.get('content_type')} page {item['page']}"
    return "unknown item"


def run_content_pull_job(event_id: int, task_id: str | None, retries: int = 0, max_retries: int = 3) -> dict[str, Any]:
    """Pull one content's post from WordPress (WordPress wins: an explicit pull clears a conflict)."""
    claim = jobs.claim(event_id, task_id)
    if claim is None:
        return {"status": "skipped"}
    event = db.session.get(SyncEvent, event_id)
    db.session.refresh(event)
    content = db.session.get(Content, event.content_id) if event.content_id else None
    base = dict(event.details or {})
    if content is None or not content.external_id:
        jobs.finish(claim, "failed", base, "The content no longer exists or has no WordPress post.")
        return {"status": "failed"}
    integration = db.session.get(SiteIntegration, event.integration_id)
    try:
        client = client_for(integration)
        try:
            remote = client.get_post(content.content_type, content.external_id)
        finally:
            close = getattr(client, "close", None)
            if close is not None:
                close()
    except PostNotFound:
        content.external_status = "missing"
        content.last_synced_at = utcnow()
        db.session.commit()
        jobs.finish(claim, "success", {**base, "result": "missing", "missing": 1})
        return {"status": "success"}
    except PlatformError as exc:
        db.session.rollback()
        failure = _retry_or_fail(claim, exc, base, retries, max_retries)
        if failure is None:
            return {"status": "abandoned"}
        jobs.finish(claim, "failed", base, failure)
        return {"status": "failed"}
    except Exception as exc:
        db.session.rollback()
        logger.exception("content pull %s failed unexpectedly", event_id)
        jobs.finish(claim, "failed", base, f"Internal error ({type(exc).__name__}); see the worker log.")
        return {"status": "failed"}
    apply_remote(content, remote, utcnow())
    db.session.commit()
    jobs.finish(claim, "success", {**base, "result": "updated", "updated": 1})
    return {"status": "success"}


def run_structure_job(event_id: int, task_id: str | None) -> dict[str, Any]:
    claim = jobs.claim(event_id, task_id)
    if claim is None:
        return {"status": "skipped"}
    event = db.session.get(SyncEvent, event_id)
    db.session.refresh(event)
    structure = dict((event.details or {}).get("structure") or {})
    integration = db.session.get(SiteIntegration, event.integration_id)
    stored = SyncMetadataService(integration).store(structure, source="plugin")
    summary = {
        "post_types": len(structure.get("post_types") or {}),
        "taxonomies": len(structure.get("taxonomies") or {}),
        "last_structure_fetch": stored.get("last_structure_fetch"),
    }
    jobs.finish(claim, "success", summary)
    return {"status": "success"}
