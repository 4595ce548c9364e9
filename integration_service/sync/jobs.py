"""Job rows shared by the API side and the workers: the kinds of job, enqueuing a recorded
``SyncEvent``'s Celery task, claiming it in a worker (claim tokens), heartbeats, finishing it
(releasing the integration's sync lock) and the retry backoff. Finding and recovering stuck jobs
is ``recovery``'s; this module imports nothing of the schedule (``schedule`` uses it).

Every state change a worker makes is a conditional UPDATE (on the status and on the claim token
of the worker that owns the job), so two workers can never both own one job and a job marked
failed by stuck-job recovery cannot be revived by a worker that was only slow.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import and_, false, func, or_, update

from ..errors import QueueUnavailable
from ..extensions import db, rowcount
from ..models import FINAL_JOB_STATUSES, JobStatus, SiteIntegration, SyncEvent, SyncStatus, utcnow

logger = logging.getLogger(__name__)

EVENT_SYNC = "sync"
EVENT_CONTENT_PULL = "content_pull"
EVENT_STRUCTURE = "structure_update"

TASK_SYNC = "integration.sync"
TASK_CONTENT_PULL = "integration.sync_wordpress_content"
TASK_STRUCTURE = "integration.update_site_structure"


@dataclass(frozen=True)
class JobKind:
    event_type: str
    task: str  # the Celery task name (fixed by the contract)
    action: str  # SyncEvent.action
    needs_sync_enabled: bool  # the integration's sync must be enabled to start one
    holds_lock: bool  # holds the integration's sync lock (one at a time per integration)


SYNC = JobKind(EVENT_SYNC, TASK_SYNC, "sync", needs_sync_enabled=True, holds_lock=True)
CONTENT_PULL = JobKind(
    EVENT_CONTENT_PULL, TASK_CONTENT_PULL, "sync_wordpress_content", needs_sync_enabled=True, holds_lock=False
)
STRUCTURE = JobKind(
    EVENT_STRUCTURE, TASK_STRUCTURE, "update_site_structure", needs_sync_enabled=False, holds_lock=False
)


def last_finished_sync(integration_id: int) -> SyncEvent | None:
    """The integration's latest sync that finished (success, partial or failed)."""
    return db.session.scalar(
        db.select(SyncEvent)
        .where(
            SyncEvent.integration_id == integration_id,
            SyncEvent.event_type == EVENT_SYNC,
            SyncEvent.status.in_(FINAL_JOB_STATUSES),
        )
        .order_by(SyncEvent.id.desc())
        .limit(1)
    )


class LostOwnership(Exception):
    """The job was taken over or marked failed while this worker ran it: stop without writing."""


@dataclass(frozen=True)
class Claim:
    event_id: int
    token: str


def new_task_id() -> str:
    return str(uuid.uuid4())


class RecordedJob(Protocol):
    """What ``enqueue`` reads of a job: a SyncEvent, or the ids of rows the dispatcher inserted in bulk."""

    @property
    def id(self) -> int: ...

    @property
    def task_id(self) -> str | None: ...


def enqueue(event: RecordedJob, task_name: str) -> None:
    """Send the job's task (arguments: the event id only). If the broker cannot take it, the
    recorded event is deleted again, so no ``queued`` row is left behind, and 503 is raised."""
    try:
        publish(event.id, event.task_id, task_name)
    except Exception as exc:
        if _eager():
            raise  # eager mode: the task itself failed, not the broker
        raise _unrecord_unsent([event], task_name, exc) from exc


def _eager() -> bool:
    return bool(current_app.config["CELERY"].get("task_always_eager"))


def _unrecord_unsent(events: Sequence[RecordedJob], task_name: str, exc: Exception) -> QueueUnavailable:
    """The broker did not take these jobs' tasks: delete their recorded events (no ``queued``
    row, no held lock left behind); returns the QueueUnavailable (503) to raise."""
    ids = [event.id for event in events]
    logger.warning("could not enqueue %s for events %s: %s", task_name, ids, type(exc).__name__)
    db.session.rollback()
    db.session.execute(db.delete(SyncEvent).where(SyncEvent.id.in_(ids)))
    db.session.commit()
    return QueueUnavailable()


# The producer that ``publish`` sends with inside ``enqueue_all`` (None: one from the pool per task).
_PRODUCER: ContextVar[Any] = ContextVar("sync_jobs_producer", default=None)


def enqueue_all(events: Sequence[RecordedJob], task_name: str) -> None:
    """Send many jobs' tasks through one producer in one broker round trip: kombu's
    ``Producer.batch()`` buffers the task messages and their ``task-sent`` events in one Redis
    pipeline, flushed at the end (the dispatcher sends a batch per tick; one round trip per message
    and per event was most of its time). If the broker cannot take them, every recorded event is
    deleted again, as ``enqueue`` does for one, and QueueUnavailable is raised. A message that
    reached Redis before a failed flush finds its event gone and does nothing."""
    if not events:
        return
    try:
        with current_app.extensions["celery"].producer_or_acquire() as producer, producer.batch():
            token = _PRODUCER.set(producer)
            try:
                for event in events:
                    publish(event.id, event.task_id, task_name)
            finally:
                _PRODUCER.reset(token)
    except Exception as exc:
        if _eager():
            raise  # eager mode: a task itself failed, not the broker
        raise _unrecord_unsent(events, task_name, exc) from exc


def publish(event_id: int, task_id: str | None, task_name: str) -> None:
    """Send a job's task (ids only). Raises when the broker cannot take it."""
    task = current_app.extensions["celery"].tasks[task_name]
    # Bounded publish retries: an unreachable broker must answer the client within seconds.
    task.apply_async(
        args=[event_id],
        task_id=task_id,
        producer=_PRODUCER.get(),
        retry=True,
        retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
    )


def claim(event_id: int, task_id: str | None, *, commit: bool = True) -> Claim | None:
    """Take ownership of a queued job (or of a running one redelivered with the same task id,
    after its worker died). Returns None when the job is gone, finished or owned by another task.
    With ``commit=False`` the caller commits: the runner starts a job in one transaction (the
    claim, the job's rows read after it and what the job prepares, e.g. a sync's ``syncing``)."""
    token = str(uuid.uuid4())
    now = utcnow()
    takeover = and_(SyncEvent.status == JobStatus.running, SyncEvent.task_id == task_id) if task_id else false()
    result = db.session.execute(
        update(SyncEvent)
        .where(SyncEvent.id == event_id, or_(SyncEvent.status == JobStatus.queued, takeover))
        .values(
            status=JobStatus.running,
            claim_token=token,
            # A resumed job (next slice, retry, takeover) keeps its first start time.
            started_at=func.coalesce(SyncEvent.started_at, now),
            heartbeat_at=now,
            error_message=None,
        )
        .execution_options(synchronize_session=False)
    )
    if commit:
        db.session.commit()
    if rowcount(result) != 1:
        return None
    return Claim(event_id, token)


def _update_if_owned(claim_: Claim, **values: Any) -> bool:
    """Update the job only while this worker still owns it (running, with its claim token): a job
    taken over or failed as stuck must not be written by its old worker. True when it was."""
    result = db.session.execute(
        update(SyncEvent).where(_owned(claim_)).values(**values).execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def _owned(claim_: Claim) -> Any:
    return and_(
        SyncEvent.id == claim_.event_id, SyncEvent.claim_token == claim_.token, SyncEvent.status == JobStatus.running
    )


def heartbeat(claim_: Claim, done: int | None = None, total: int | None = None) -> None:
    """Prove the worker is alive (and publish progress); raises LostOwnership when the job is no
    longer ours, so the caller stops."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if done is not None:
        values["progress_done"] = done
    if total is not None:
        values["progress_total"] = total
    owned = _update_if_owned(claim_, **values)
    db.session.commit()
    if not owned:
        raise LostOwnership(f"sync event {claim_.event_id} is no longer owned by this worker")


def save_checkpoint(claim_: Claim, checkpoint: dict[str, Any], done: int, total: int | None) -> None:
    """Stage the job's checkpoint and progress in the current transaction (the caller commits it
    with the page it describes). A worker that lost the job writes nothing: the transaction,
    page included, is rolled back and LostOwnership raised."""
    if not _update_if_owned(
        claim_, checkpoint=checkpoint, progress_done=done, progress_total=total, heartbeat_at=utcnow()
    ):
        db.session.rollback()
        raise LostOwnership(f"sync event {claim_.event_id} is no longer owned by this worker")


@contextmanager
def keep_alive(claim_: Claim) -> Iterator[None]:
    """Heartbeat from a thread every SYNC_HEARTBEAT_SECONDS while the job runs, so a worker that
    is only waiting (a slow page, a politeness slot, an HTTP retry) is never taken for dead; only a
    dead process stops heartbeating. 0 disables it (progress reports still heartbeat)."""
    period = float(current_app.config["SYNC_HEARTBEAT_SECONDS"])
    if period <= 0:
        yield
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(period):
            try:
                with app.app_context(), db.engine.begin() as connection:
                    result = connection.execute(update(SyncEvent).where(_owned(claim_)).values(heartbeat_at=utcnow()))
                if rowcount(result) != 1:
                    return  # no longer ours: the job's own next write finds out and stops
            except Exception:  # a database blip: the next beat tries again
                logger.warning("sync event %s: heartbeat failed", claim_.event_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"heartbeat-{claim_.event_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def hand_off(claim_: Claim, task_name: str, details: dict[str, Any]) -> bool:
    """End this run's slice: enqueue the job's next run (same task id, behind the waiting jobs)
    and put the job back to ``queued`` (keeping its sync lock and checkpoint). The next run claims
    it with a fresh token, so this worker can no longer write. False when the broker refused the
    task (the caller goes on itself)."""
    try:
        publish(claim_.event_id, _task_id(claim_), task_name)
    except Exception as exc:
        if current_app.config["CELERY"].get("task_always_eager"):
            raise
        logger.warning("sync event %s: could not enqueue the next slice (%s)", claim_.event_id, type(exc).__name__)
        return False
    # In eager mode the next slice already ran (and took the job over): nothing is written then.
    _update_if_owned(
        claim_,
        status=JobStatus.queued,
        claim_token=None,
        heartbeat_at=utcnow(),
        details={**details, "waiting_for": "next_slice"},
    )
    db.session.commit()
    return True


def _task_id(claim_: Claim) -> str | None:
    return db.session.scalar(db.select(SyncEvent.task_id).where(SyncEvent.id == claim_.event_id))


def finish(
    claim_: Claim,
    status: JobStatus,
    details: dict[str, Any] | None = None,
    error_message: str | None = None,
    done: int | None = None,
    update_integration: bool = False,
    *,
    total: int | None = None,
    checkpoint: dict[str, Any] | None = None,
    commit: bool = True,
) -> bool:
    """Write the final state and release the integration's sync lock. Returns False when the job
    was no longer ours (nothing written, and the caller's uncommitted writes rolled back with it).
    With ``update_integration`` the integration's sync_status/sync_error/last_sync_at change in
    the same transaction, so a poller never sees the job finished while the integration still
    says ``syncing``. ``total`` and ``checkpoint`` publish the last progress and position the job
    kept in memory (a pull that found nothing commits them here, not in transactions of their
    own). With ``commit=False`` the caller commits, after staging what completes the job (the
    schedule), so a job ends in one transaction."""
    values: dict[str, Any] = {
        "status": status,
        "finished_at": utcnow(),
        "sync_lock": None,
        "error_message": error_message,
        "heartbeat_at": utcnow(),
    }
    if details is not None:
        values["details"] = details
    if done is not None:
        values["progress_done"] = done
    if total is not None:
        values["progress_total"] = total
    if checkpoint is not None:
        values["checkpoint"] = checkpoint
    if not _update_if_owned(claim_, **values):
        db.session.rollback()
        return False
    if update_integration:
        outcome: dict[str, Any] = {
            # sync_error only beside "failed": a partial sync names its failed items in the event.
            "sync_error": error_message if status == JobStatus.failed else None,
            "sync_status": SyncStatus.failed if status == JobStatus.failed else SyncStatus.success,
        }
        if status != JobStatus.failed:
            outcome["last_sync_at"] = utcnow()
        integration_id = db.select(SyncEvent.integration_id).where(SyncEvent.id == claim_.event_id).scalar_subquery()
        db.session.execute(
            update(SiteIntegration)
            .where(SiteIntegration.id == integration_id)
            .values(**outcome)
            .execution_options(synchronize_session=False)
        )
    if commit:
        db.session.commit()
    return True


def requeue_for_retry(claim_: Claim, error_message: str, details: dict[str, Any]) -> bool:
    """Put a job that hit a transient error back to ``queued`` (keeping its lock) until its retry runs."""
    owned = _update_if_owned(
        claim_,
        status=JobStatus.queued,
        claim_token=None,
        error_message=error_message,
        details={**details, "waiting_for": "retry"},
        heartbeat_at=utcnow(),
    )
    db.session.commit()
    return owned


def backoff_seconds(retries: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter between half and one and a half times the step."""
    base = float(current_app.config["SYNC_RETRY_BACKOFF_SECONDS"])
    cap = float(current_app.config["SYNC_RETRY_BACKOFF_MAX_SECONDS"])
    delay = min(cap, base * (2**retries)) * random.uniform(0.5, 1.5)
    if retry_after:
        delay = max(delay, min(cap, retry_after))
    return round(delay, 2)
