"""The sync jobs' Celery tasks (``workers/tasks.py``, the worker entry point, imports them).
Arguments are ids only (never secrets): the job's ``SyncEvent`` row holds the rest. Long syncs
run on the ``sync`` queue, short jobs on ``short`` (see CELERY task_routes), so a long sync never
delays a structure update.

Retries: a transient platform error (connection error, timeout, 429/502/503/504) requeues the job
with exponential backoff and jitter, up to SYNC_MAX_RETRIES; auth and validation errors fail it
at once. ``acks_late`` + ``reject_on_worker_lost`` redeliver a job whose worker died; the
redelivered task takes the job over (same task id) and the dead run's writes are fenced off by
its claim token.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task
from celery.exceptions import Reject
from flask import current_app

from . import jobs, publish, recovery, runner, schedule

logger = logging.getLogger(__name__)

SHORT_TIME_LIMIT = 120
SHORT_SOFT_TIME_LIMIT = 100
# A publish uploads its images first: a few seconds each on a slow site (sub-sizes are made in
# the upload request), so it gets more time than the other short jobs.
PUBLISH_TIME_LIMIT = 600
PUBLISH_SOFT_TIME_LIMIT = 570


def _with_retries(task: Any, job_class: type[runner.Job], sync_event_id: int) -> dict[str, Any]:
    """Run a job; on a transient error (RetryLater) schedule the retry with the job's backoff.
    The job itself counts attempts and decides when to give up (SYNC_MAX_RETRIES)."""
    max_retries = int(current_app.config["SYNC_MAX_RETRIES"])
    retries = task.request.retries
    while True:
        try:
            return runner.run(job_class, sync_event_id, task.request.id, retries, max_retries)
        except runner.RetryLater as exc:
            if task.request.is_eager:
                retries += 1  # eager mode (tests): retry inline, without waiting
                continue
            try:
                raise task.retry(countdown=exc.countdown, max_retries=None) from None
            except Reject:
                # The broker cannot take the retry (Celery turns the failed publish into Reject):
                # the job, already back to queued, would hold the integration's lock until
                # SYNC_QUEUED_STUCK_AFTER_SECONDS. This run waits out the backoff and retries
                # itself; once the retries run out the job fails with its message.
                logger.warning(
                    "sync event %s: could not enqueue the retry; retrying in this worker in %ss",
                    sync_event_id,
                    exc.countdown,
                )
                time.sleep(exc.countdown)
                retries += 1


@shared_task(name=jobs.TASK_SYNC, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def sync(self: Any, sync_event_id: int) -> dict[str, Any]:
    """Run one sync job (direction and options are read from its SyncEvent)."""
    return _with_retries(self, runner.SyncJob, sync_event_id)


@shared_task(
    name=jobs.TASK_CONTENT_PULL,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    time_limit=SHORT_TIME_LIMIT,
    soft_time_limit=SHORT_SOFT_TIME_LIMIT,
)
def sync_wordpress_content(self: Any, sync_event_id: int) -> dict[str, Any]:
    """Pull one content's WordPress post."""
    return _with_retries(self, runner.ContentPullJob, sync_event_id)


@shared_task(
    name=publish.TASK_PUBLISH,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    time_limit=PUBLISH_TIME_LIMIT,
    soft_time_limit=PUBLISH_SOFT_TIME_LIMIT,
)
def publish_content(self: Any, sync_event_id: int) -> dict[str, Any]:
    """Publish one content: its images into the media library, then its post."""
    return _with_retries(self, publish.PublishJob, sync_event_id)


@shared_task(
    name=jobs.TASK_STRUCTURE,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=SHORT_TIME_LIMIT,
    soft_time_limit=SHORT_SOFT_TIME_LIMIT,
)
def update_site_structure(self: Any, sync_event_id: int) -> dict[str, Any]:
    """Store the site structure pushed by the plugin (kept in the job's SyncEvent)."""
    return runner.run(runner.StructureJob, sync_event_id, self.request.id)


@shared_task(name="integration.recover_stuck_jobs", time_limit=SHORT_TIME_LIMIT, soft_time_limit=SHORT_SOFT_TIME_LIMIT)
def recover_stuck_jobs() -> list[int]:
    """Mark jobs without a heartbeat (dead worker) or never started as failed; workers run this
    periodically in-process (see ``workers.signals``), and it can also be scheduled with celery beat."""
    return recovery.recover_stuck_jobs()


@shared_task(bind=True, name="integration.dispatch_due_syncs", ignore_result=True, time_limit=60, soft_time_limit=50)
def dispatch_due_syncs(self: Any) -> dict[str, int]:
    """Celery beat runs this every SCHEDULER_TICK_SECONDS (see ``beat_schedule`` in config):
    claims the due integrations and enqueues their scheduled syncs (``schedule.dispatch_due``).

    A tick claims at most SCHEDULER_BATCH_SIZE; when it claimed a full batch it enqueues the next
    tick at once, so a backlog drains as a chain of short tasks (each well under 100 ms) instead
    of one long one, and any free worker can take the next (SKIP LOCKED keeps them apart)."""
    limit = int(current_app.config["SCHEDULER_BATCH_SIZE"])
    outcome = schedule.dispatch_due(limit=limit)
    if schedule.batch_was_full(outcome, limit):
        try:
            self.apply_async()
        except Exception:  # beat's next tick takes over; the backlog waits one tick
            logger.warning("dispatcher: could not enqueue the follow-up tick", exc_info=True)
    return outcome
