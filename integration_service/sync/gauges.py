"""The sync package's gauges for ``GET /metrics``, read from the database at scrape time: jobs
queued or running by event type and state, and the scheduler's due backlog.

They live here, beside the job rows and the schedule they count, and are registered into the
metrics module (``metrics.register_scrape_families``, by ``create_app``), so ``metrics`` never
imports the sync package that records into it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func

from ..extensions import db
from ..models import ACTIVE_JOB_STATUSES, SiteIntegration, SyncEvent, utcnow
from . import jobs
from .schedule import due_conditions


def database_families() -> Iterator[Metric]:
    jobs_by_state = GaugeMetricFamily(
        "integration_jobs", "Jobs queued or running now, by event type and state.", labels=("event_type", "state")
    )
    counts = {(jobs.EVENT_SYNC, state): 0 for state in ACTIVE_JOB_STATUSES}
    rows = db.session.execute(
        db.select(SyncEvent.event_type, SyncEvent.status, func.count(SyncEvent.id))
        .where(SyncEvent.status.in_(ACTIVE_JOB_STATUSES))
        .group_by(SyncEvent.event_type, SyncEvent.status)
    ).all()
    counts.update({(event_type, state): count for event_type, state, count in rows})
    for (event_type, state), count in sorted(counts.items()):
        jobs_by_state.add_metric([event_type, state], count)
    yield jobs_by_state

    due = db.session.scalar(db.select(func.count(SiteIntegration.id)).where(*due_conditions(utcnow())))
    yield GaugeMetricFamily(
        "integration_scheduler_due", "Scheduled integrations whose next run is due now (not yet dispatched).", value=due
    )
    db.session.rollback()  # a scrape holds no transaction open
