"""Stuck jobs: which queued or running jobs count as stuck (no heartbeat within
SYNC_STUCK_AFTER_SECONDS, or never picked up within SYNC_QUEUED_STUCK_AFTER_SECONDS), and
recovering them (``recover_stuck_jobs``, the task ``integration.recover_stuck_jobs``): a dead sync
is resumed from its checkpoint, any other stuck job is marked failed and, for a sync, handed to the
schedule's completion hook.

Above both ``jobs`` (the job rows) and ``schedule`` (which uses ``jobs`` to enqueue): neither
imports this module.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Row, and_, func, or_, update

from ..extensions import db, rowcount
from ..models import ACTIVE_JOB_STATUSES, JobStatus, SiteIntegration, SyncEvent, SyncStatus, utcnow
from . import jobs, schedule

logger = logging.getLogger(__name__)


def stuck_cutoffs(now: datetime | None = None) -> tuple[datetime, datetime]:
    now = now or utcnow()
    running_after = int(current_app.config["SYNC_STUCK_AFTER_SECONDS"])
    queued_after = int(current_app.config["SYNC_QUEUED_STUCK_AFTER_SECONDS"])
    return now - timedelta(seconds=running_after), now - timedelta(seconds=queued_after)


def stuck_condition(now: datetime | None = None):
    running_cutoff, queued_cutoff = stuck_cutoffs(now)
    return or_(
        and_(
            SyncEvent.status == JobStatus.running,
            or_(SyncEvent.heartbeat_at.is_(None), SyncEvent.heartbeat_at < running_cutoff),
        ),
        # A job put back to queued (next slice, retry, resume) counts from then, not from its creation.
        and_(
            SyncEvent.status == JobStatus.queued,
            func.coalesce(SyncEvent.heartbeat_at, SyncEvent.created_at) < queued_cutoff,
        ),
    )


def is_stuck(event: SyncEvent | Row[Any], now: datetime | None = None) -> bool:
    running_cutoff, queued_cutoff = stuck_cutoffs(now)
    if event.status == JobStatus.running:
        return event.heartbeat_at is None or event.heartbeat_at < running_cutoff
    if event.status == JobStatus.queued:
        return (event.heartbeat_at or event.created_at) < queued_cutoff
    return False


def recover_stuck_jobs(integration_id: int | None = None) -> list[int]:
    """Deal with jobs whose worker died (no heartbeat within SYNC_STUCK_AFTER_SECONDS) or that
    never started (queued for SYNC_QUEUED_STUCK_AFTER_SECONDS). A dead sync is resumed from its
    checkpoint (put back to queued and re-enqueued, at most SYNC_MAX_RESUMES times); any other is
    marked failed, releasing its sync lock. Returns the ids of the jobs it failed or resumed.
    Only a sync it really fails (not a resumed one) reaches the schedule's completion hook, which
    backs the schedule off like any failed sync: a site whose jobs keep dying is not re-dispatched
    every tick, and a resumed job ends (and reaches the hook) once, in the runner."""
    query = db.select(
        SyncEvent.id,
        SyncEvent.integration_id,
        SyncEvent.status,
        SyncEvent.event_type,
        SyncEvent.checkpoint,
        SyncEvent.details,
    ).where(SyncEvent.status.in_(ACTIVE_JOB_STATUSES), stuck_condition())
    if integration_id is not None:
        query = query.where(SyncEvent.integration_id == integration_id)
    candidates = db.session.execute(query).all()
    recovered: list[int] = []
    failed_syncs: list[int] = []
    max_resumes = int(current_app.config["SYNC_MAX_RESUMES"])
    for event_id, owner_id, status, event_type, checkpoint, details in candidates:
        resumes = int((checkpoint or {}).get("resumes") or 0)
        resumable = status == JobStatus.running and event_type == jobs.EVENT_SYNC and resumes < max_resumes
        resumed = {**(checkpoint or {}), "resumes": resumes + 1}
        if resumable and _resume(event_id, resumed, {**(details or {}), "waiting_for": "resume"}):
            recovered.append(event_id)
            continue
        message = (
            "The worker stopped sending heartbeats (it probably died); the job was marked failed."
            if status == JobStatus.running
            else "The job was never picked up by a worker; it was marked failed."
        )
        if status == JobStatus.running and event_type == jobs.EVENT_SYNC:
            message = (
                f"The worker stopped sending heartbeats (it probably died) {resumes + 1} time(s); "
                "the job was marked failed."
            )
        # Re-check the condition in the UPDATE: a heartbeat may have arrived since the SELECT.
        result = db.session.execute(
            update(SyncEvent)
            .where(SyncEvent.id == event_id, SyncEvent.status.in_(ACTIVE_JOB_STATUSES), stuck_condition())
            .values(
                status=JobStatus.failed, finished_at=utcnow(), sync_lock=None, claim_token=None, error_message=message
            )
            .execution_options(synchronize_session=False)
        )
        if rowcount(result) == 1:
            recovered.append(event_id)
            if event_type == jobs.EVENT_SYNC:
                failed_syncs.append(event_id)
                db.session.execute(
                    update(SiteIntegration)
                    .where(SiteIntegration.id == owner_id)
                    .values(sync_status=SyncStatus.failed, sync_error=message)
                    .execution_options(synchronize_session=False)
                )
            logger.warning("sync event %s of integration %s was stuck (%s): marked failed", event_id, owner_id, status)
        db.session.commit()
    for event_id in failed_syncs:
        try:
            schedule.after_sync_job(event_id, JobStatus.failed)
        except Exception:  # its commit failed (the database went away): the next jobs still get theirs
            db.session.rollback()
            logger.exception("sync event %s: could not update the schedule", event_id)
    return recovered


def _resume(event_id: int, checkpoint: dict[str, Any], details: dict[str, Any]) -> bool:
    """Put a dead sync back to queued (no owner; its lock and checkpoint kept) and enqueue it
    again with its task id: the next worker claims it and goes on from the checkpoint. False when
    it was not stuck any more or the broker refused the task (it is then failed)."""
    result = db.session.execute(
        update(SyncEvent)
        .where(SyncEvent.id == event_id, SyncEvent.status == JobStatus.running, stuck_condition())
        .values(
            status=JobStatus.queued, claim_token=None, heartbeat_at=utcnow(), checkpoint=checkpoint, details=details
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if rowcount(result) != 1:
        return False
    logger.warning("sync event %s: its worker died; resuming it from its checkpoint", event_id)
    task_id = db.session.scalar(db.select(SyncEvent.task_id).where(SyncEvent.id == event_id))
    try:
        jobs.publish(event_id, task_id, jobs.TASK_SYNC)
        return True
    except Exception as exc:
        if current_app.config["CELERY"].get("task_always_eager"):
            raise
        logger.warning("sync event %s: could not enqueue its resume (%s)", event_id, type(exc).__name__)
    # Fail it now (the caller's UPDATE): make it match the stuck condition again.
    db.session.execute(
        update(SyncEvent)
        .where(SyncEvent.id == event_id, SyncEvent.status == JobStatus.queued)
        .values(status=JobStatus.running, heartbeat_at=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return False
