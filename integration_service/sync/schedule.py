"""Schedules: every active, sync-enabled integration with a ``sync_interval_minutes`` is synced on
its own, plus a reconcile sweep on a longer interval (SCHEDULE_RECONCILE_INTERVAL_MINUTES).

Two layers:

- **Decisions** (pure functions of the integration's schedule fields and ``now``): when the next
  run is due (with jitter, so integrations created together do not fire together), how far
  consecutive failures push it out (exponential, capped at SCHEDULE_BACKOFF_MAX_SECONDS), when an
  authentication failure pauses the schedule, and whether the run is the reconcile sweep.
- **The dispatcher** (``dispatch_due``, the task ``integration.dispatch_due_syncs`` in ``tasks``,
  run by celery beat every SCHEDULER_TICK_SECONDS): claims the due integrations with one indexed
  query (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two dispatchers never take the same row), records their queued
  SyncEvents holding the one-sync-per-integration lock (``sync_events.sync_lock``), advances
  ``next_sync_at`` and enqueues. The number of statements per tick does not depend on how many
  integrations exist.

Job completion (``after_sync_job``, called by the sync runner for manual and scheduled jobs alike,
and by ``recovery`` for a sync it fails) resets or backs off the schedule;
``resume_after_connection_test`` lifts an auth pause.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from .. import metrics
from ..errors import QueueUnavailable
from ..extensions import db
from ..models import SYNC_DIRECTIONS, JobStatus, SiteIntegration, SyncEvent, SyncStatus, utcnow
from . import jobs

logger = logging.getLogger(__name__)
_RANDOM = random.Random()  # jitter needs no reproducibility; tests pass their own seeded Random

TRIGGER_MANUAL = "manual"
TRIGGER_SCHEDULED = "scheduled"
PAUSED_AUTH_FAILED = "auth_failed"
AUTH_STAGE = "auth"

KIND_INCREMENTAL = "incremental"
KIND_RECONCILE = "reconcile"
# The reconcile sweep is a sync with direction "reconcile" once the sync engine accepts that
# direction. Until then it is dispatched as a full pull (from_external, full=true), which also
# re-reads every post; this switches by itself when "reconcile" joins SYNC_DIRECTIONS.
RECONCILE_AVAILABLE = "reconcile" in SYNC_DIRECTIONS
RECONCILE_DIRECTION = "reconcile" if RECONCILE_AVAILABLE else "from_external"
RECONCILE_FULL = not RECONCILE_AVAILABLE


# ---------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Policy:
    """The schedule settings (from app.config), kept apart so the decisions are pure."""

    jitter_ratio: float = 0.1
    backoff_max_seconds: float = 6 * 3600
    reconcile_interval_minutes: float = 24 * 60
    direction: str = "from_external"

    @classmethod
    def from_config(cls, config: Any) -> Policy:
        return cls(
            jitter_ratio=float(config["SCHEDULE_JITTER_RATIO"]),
            backoff_max_seconds=float(config["SCHEDULE_BACKOFF_MAX_SECONDS"]),
            reconcile_interval_minutes=float(config["SCHEDULE_RECONCILE_INTERVAL_MINUTES"]),
            direction=str(config["SCHEDULE_SYNC_DIRECTION"]),
        )


def policy() -> Policy:
    return Policy.from_config(current_app.config)


def first_due(now: datetime, interval_minutes: float, rng: random.Random | None = None) -> datetime:
    """A new (or re-timed) schedule's first run: anywhere within one interval, so a thousand
    integrations created in the same minute spread over the interval instead of one second."""
    rng = rng or _RANDOM
    return now + timedelta(minutes=rng.uniform(0, interval_minutes))


def next_due(now: datetime, interval_minutes: float, pol: Policy, rng: random.Random | None = None) -> datetime:
    """The run after a successful one: one interval later, give or take the jitter ratio (so
    schedules that started together drift apart instead of staying in lockstep)."""
    rng = rng or _RANDOM
    factor = rng.uniform(1 - pol.jitter_ratio, 1 + pol.jitter_ratio)
    return now + timedelta(minutes=interval_minutes * factor)


def backoff_delay_seconds(
    failures: int, interval_minutes: float, pol: Policy, rng: random.Random | None = None
) -> float:
    """After ``failures`` consecutive failures (>= 1): interval × 2^failures, jittered, never more
    than ``backoff_max_seconds``."""
    rng = rng or _RANDOM
    base = interval_minutes * 60 * (2 ** min(failures, 32))
    jittered = base * rng.uniform(1 - pol.jitter_ratio, 1 + pol.jitter_ratio)
    return min(pol.backoff_max_seconds, jittered)


def run_kind(next_reconcile_at: datetime | None, now: datetime) -> str:
    """A due run is the reconcile sweep when the sweep is due too, else an incremental sync."""
    if next_reconcile_at is not None and next_reconcile_at <= now:
        return KIND_RECONCILE
    return KIND_INCREMENTAL


def job_options(kind: str, pol: Policy) -> tuple[str, bool]:
    """(direction, full) of a scheduled job."""
    if kind == KIND_RECONCILE:
        return RECONCILE_DIRECTION, RECONCILE_FULL
    return pol.direction, False


@dataclass(frozen=True)
class Outcome:
    """What a finished job does to the schedule."""

    failure_count: int
    next_sync_at: datetime | None
    paused_reason: str | None


def outcome_after_job(
    status: str,
    failed_stage: str | None,
    failures: int,
    interval_minutes: int | None,
    now: datetime,
    pol: Policy,
    current_pause: str | None = None,
    rng: random.Random | None = None,
) -> Outcome:
    """Success (or partial: the site answered) resets the failure count; a failure backs off;
    an authentication failure pauses the schedule until a connection test passes, so a revoked
    password does not produce a stream of failing jobs."""
    if status != JobStatus.failed:
        due = next_due(now, interval_minutes, pol, rng) if interval_minutes else None
        return Outcome(0, due, current_pause)
    failures += 1
    if failed_stage == AUTH_STAGE:
        return Outcome(failures, None, PAUSED_AUTH_FAILED)
    if not interval_minutes:
        return Outcome(failures, None, current_pause)
    delay = backoff_delay_seconds(failures, interval_minutes, pol, rng)
    return Outcome(failures, now + timedelta(seconds=delay), current_pause)


# ------------------------------------------------------------- integration resource side


def apply_interval(integration: SiteIntegration, interval_minutes: int | None, now: datetime | None = None) -> None:
    """Set the interval of a new integration, or change it: the next run is re-timed within the
    new interval (``None`` = manual only: nothing is scheduled)."""
    now = now or utcnow()
    integration.sync_interval_minutes = interval_minutes
    integration.next_sync_at = first_due(now, interval_minutes) if interval_minutes else None
    if integration.next_reconcile_at is None:
        integration.next_reconcile_at = first_due(now, policy().reconcile_interval_minutes)


def resume_after_connection_test(integration: SiteIntegration) -> None:
    """A passing connection test lifts a pause: the schedule is due at once (the caller commits)."""
    if integration.paused_reason is None:
        return
    logger.info("integration %s: schedule resumed after a passing connection test", integration.id)
    integration.paused_reason = None
    integration.sync_failure_count = 0
    if integration.sync_interval_minutes:
        integration.next_sync_at = utcnow()


def schedule_status(integration: SiteIntegration, now: datetime | None = None) -> dict[str, Any]:
    """The schedule as debug_status shows it."""
    now = now or utcnow()
    failures = integration.sync_failure_count or 0
    interval = integration.sync_interval_minutes
    enabled = bool(integration.is_active and integration.sync_enabled and interval)
    return {
        "enabled": enabled,
        "interval_minutes": interval,
        "next_sync_at": integration.next_sync_at,
        "overdue_seconds": _seconds_between(integration.next_sync_at, now) if enabled else None,
        "last_scheduled_sync_at": integration.last_scheduled_sync_at,
        "next_reconcile_at": integration.next_reconcile_at,
        "consecutive_failures": failures,
        "backoff": failures > 0 and integration.paused_reason is None,
        "paused_reason": integration.paused_reason,
    }


def _seconds_between(earlier: datetime | None, later: datetime) -> float | None:
    if earlier is None:
        return None
    return max(0.0, round((later - earlier).total_seconds(), 1))


# ------------------------------------------------------------------------- job completion

CARRIED_KEYS = ("trigger", "due_at", "sweep")


def carried_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """What the runner keeps of the queued job's details in the final ones (who started it)."""
    return {key: value for key, value in (details or {}).items() if key in CARRIED_KEYS}


def after_sync_job(event_id: int, status: str, failed_stage: str | None = None) -> None:
    """Once a sync job (manual or scheduled) has its final state: moves the schedule on (or backs
    off / pauses it), commits, then records the job metrics. The sync runner calls it with the
    job's final state written but not committed, so both commit together (a job ends in one
    transaction, not two); recovery calls it after committing its own. A schedule that cannot be
    computed is logged and the final state commits without it; a failing commit raises (the
    final state it carries was not written either)."""
    observed: tuple[str, float, float | None] | None = None
    try:
        observed = _stage_schedule(event_id, status, failed_stage)
    except Exception:
        logger.exception("sync event %s: could not update the schedule", event_id)
    db.session.commit()
    if observed is not None:
        # After the commit: Redis round trips never hold the job's transaction open.
        trigger, duration, lag = observed
        metrics.observe_job(trigger, status, duration)
        if lag is not None:
            metrics.observe_scheduler_lag(lag)


_SCHEDULE_COLUMNS = (
    SiteIntegration.sync_failure_count,
    SiteIntegration.sync_interval_minutes,
    SiteIntegration.paused_reason,
)


def _stage_schedule(event_id: int, status: str, failed_stage: str | None) -> tuple[str, float, float | None] | None:
    """Stage the schedule's next state in the current transaction (nothing is written until every
    value is computed); returns the metrics to record (trigger, duration, scheduler lag)."""
    event = db.session.get(SyncEvent, event_id)
    if event is None:
        return None
    now = utcnow()
    details = event.details or {}
    trigger = details.get("trigger", TRIGGER_MANUAL)
    observed: tuple[str, float, float | None] | None = None
    if event.started_at is not None:
        lag = None
        if details.get("due_at"):
            lag = (event.started_at - datetime.fromisoformat(details["due_at"])).total_seconds()
        observed = (trigger, (now - event.started_at).total_seconds(), lag)
    # Read now, not from the row the job loaded when it started: the interval may have changed
    # since, and the failure count is the schedule's own.
    row = db.session.execute(
        db.select(*_SCHEDULE_COLUMNS).where(SiteIntegration.id == event.integration_id)
    ).one_or_none()
    if row is None:
        return observed
    failures, interval, current_pause = row
    outcome = outcome_after_job(status, failed_stage, failures or 0, interval, now, policy(), current_pause)
    values: dict[str, Any] = {
        "sync_failure_count": outcome.failure_count,
        "next_sync_at": outcome.next_sync_at,
        "paused_reason": outcome.paused_reason,
    }
    if outcome.paused_reason != current_pause:
        logger.warning("integration %s: schedule paused (%s)", event.integration_id, outcome.paused_reason)
    if details.get("sweep") == KIND_RECONCILE and status != JobStatus.failed:
        values["next_reconcile_at"] = now + timedelta(minutes=policy().reconcile_interval_minutes)
    db.session.execute(
        update(SiteIntegration)
        .where(SiteIntegration.id == event.integration_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return observed


# ------------------------------------------------------------------------------ dispatcher


def due_conditions(now: datetime) -> tuple[Any, ...]:
    """Due and schedulable: the same condition as the partial index ix_site_integrations_due,
    so the planner uses it (a range scan over due rows only)."""
    return (
        SiteIntegration.is_active.is_(True),
        SiteIntegration.sync_enabled.is_(True),
        SiteIntegration.paused_reason.is_(None),
        SiteIntegration.sync_interval_minutes.is_not(None),
        SiteIntegration.next_sync_at <= now,
    )


def _due_query(now: datetime, limit: int, dialect: str):
    query = (
        db.select(
            SiteIntegration.id,
            SiteIntegration.site_id,
            SiteIntegration.sync_interval_minutes,
            SiteIntegration.next_sync_at,
            SiteIntegration.next_reconcile_at,
        )
        .where(*due_conditions(now))
        .order_by(SiteIntegration.next_sync_at)
        .limit(limit)
    )
    if dialect == "postgresql":
        # Rows claimed by a concurrent dispatcher are skipped, not waited for (and not taken twice).
        query = query.with_for_update(skip_locked=True, of=SiteIntegration)
    return query


def _insert_locked(rows: list[dict[str, Any]], dialect: str) -> dict[int, int]:
    """Insert the queued jobs in one statement; a row whose integration already holds the sync
    lock (a manual sync queued or running) is not inserted. Returns {integration id: event id}
    of the jobs inserted."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(SyncEvent)
        .on_conflict_do_nothing(index_elements=["sync_lock"])
        .returning(SyncEvent.integration_id, SyncEvent.id)
    )
    # The rows as parameters, not .values(rows): the statement's compiled form is then cached
    # (a multi-VALUES statement was compiled anew every tick, 14 ms of a 25-row tick); SQLAlchemy
    # still sends them as one INSERT (insertmanyvalues).
    result = db.session.execute(statement, rows)
    return {integration_id: event_id for integration_id, event_id in result}


def dispatch_due(now: datetime | None = None, limit: int | None = None) -> dict[str, int]:
    """One tick: claim the due integrations, record and enqueue their jobs. Returns counts."""
    now = now or utcnow()
    limit = limit or int(current_app.config["SCHEDULER_BATCH_SIZE"])
    pol = policy()
    dialect = db.session.get_bind().dialect.name
    due = db.session.execute(_due_query(now, limit, dialect)).all()
    if not due:
        db.session.rollback()
        return {"due": 0, "dispatched": 0, "skipped_locked": 0}

    rows: dict[int, dict[str, Any]] = {}  # the SyncEvent rows to insert, by integration
    kinds: dict[int, str] = {}
    intervals: dict[int, int] = {}
    for integration_id, site_id, interval, due_at, next_reconcile_at in due:
        kind = run_kind(next_reconcile_at, now)
        direction, full = job_options(kind, pol)
        details: dict[str, Any] = {
            "direction": direction,
            "full": full,
            "trigger": TRIGGER_SCHEDULED,
            "due_at": due_at.isoformat(),
        }
        if kind == KIND_RECONCILE:
            details["sweep"] = KIND_RECONCILE
        kinds[integration_id], intervals[integration_id] = kind, interval
        rows[integration_id] = {
            "integration_id": integration_id,
            "site_id": site_id,
            "event_type": jobs.SYNC.event_type,
            "action": jobs.SYNC.action,
            "direction": direction,
            "status": JobStatus.queued,
            "details": details,
            "task_id": jobs.new_task_id(),
            "sync_lock": integration_id,
            "progress_done": 0,
            "created_at": now,
        }
    locked = _insert_locked(list(rows.values()), dialect)

    # Every claimed row moves on: a dispatched one to its next run (the job's completion re-times
    # it from its end), a skipped one (a manual sync holds the lock) by one interval as well.
    updates = []
    for integration_id, interval in intervals.items():
        values: dict[str, Any] = {"id": integration_id, "next_sync_at": next_due(now, interval, pol)}
        if integration_id in locked:
            values["sync_status"] = SyncStatus.pending
            values["last_scheduled_sync_at"] = now
        updates.append(values)
    db.session.execute(update(SiteIntegration), updates)
    db.session.commit()  # releases the row locks; the jobs are visible before their tasks arrive

    dispatched: Counter[str] = Counter()  # by kind: one metrics write per kind, not per job
    refs = [_EventRef(event_id, rows[integration_id]["task_id"]) for integration_id, event_id in locked.items()]
    try:
        jobs.enqueue_all(refs, jobs.SYNC.task)
    except QueueUnavailable:
        # enqueue_all removed the queued rows (releasing the locks): due again on the next tick.
        logger.warning("dispatcher: could not enqueue %d scheduled syncs", len(locked))
        db.session.execute(update(SiteIntegration).where(SiteIntegration.id.in_(list(locked))).values(next_sync_at=now))
        db.session.commit()
    else:
        dispatched.update(kinds[integration_id] for integration_id in locked)
    for kind, count in dispatched.items():
        metrics.record_dispatched(kind, count)
    skipped = len(rows) - len(locked)
    if skipped:
        metrics.record_dispatch_skipped(skipped)
    total = sum(dispatched.values())
    logger.info("dispatcher: %d due, %d dispatched, %d skipped (sync already running)", len(due), total, skipped)
    return {"due": len(due), "dispatched": total, "skipped_locked": skipped}


def batch_was_full(outcome: dict[str, int], limit: int) -> bool:
    """Whether more integrations may be due after a tick: it claimed a full batch and moved every
    one on. A tick where an enqueue failed (broker down: those rows were made due again) is not
    followed up at once, or a dead broker would be retried in a tight loop."""
    moved_on = outcome["dispatched"] + outcome["skipped_locked"] == outcome["due"]
    return outcome["due"] >= limit and moved_on


@dataclass(frozen=True)
class _EventRef:
    """What ``jobs.enqueue`` reads of a SyncEvent, without loading the ORM object."""

    id: int
    task_id: str
