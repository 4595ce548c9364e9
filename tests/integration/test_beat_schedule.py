"""Schedules end to end: a real ``celery beat`` and a real worker on Redis and PostgreSQL sync a
due integration with no API call, and the worker's metrics reach /metrics through Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from integration_service.extensions import db
from integration_service.models import Content, SiteIntegration, SyncEvent, utcnow
from tests.support.live_worker import Worker, spawn_celery
from tests.workers.fakewp import make_integration

pytestmark = pytest.mark.integration

TICK_SECONDS = "1"


@pytest.fixture
def start_beat(app, database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Any]:
    """``celery -A celery_app beat`` exactly as the production recipe runs it."""
    processes: list[Worker] = []

    def start() -> Worker:
        schedule_file = str(tmp_path / "celerybeat-schedule")  # beat's own state (last run times)
        args = ["beat", "-s", schedule_file, "--loglevel=INFO"]
        beat = spawn_celery(
            app, database_url, redis_url, tmp_path, "beat.log", args, SCHEDULER_TICK_SECONDS=TICK_SECONDS
        )
        processes.append(beat)
        return beat

    yield start
    for beat in processes:
        beat.stop()


def wait_for(condition, timeout: float, what: str, log: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        value = condition()
        if value:
            return value
        db.session.rollback()
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout} s" + (f":\n{log()[-3000:]}" if log else ""))


def test_beat_and_a_worker_sync_a_due_integration_without_any_api_call(
    live_app, start_worker, start_beat, factory, served_wp, redis_url
):
    served_wp.add_posts(5)
    site = factory.site(url=served_wp.url)
    integration = make_integration(
        factory, site, served_wp.url, sync_interval_minutes=1, next_sync_at=utcnow() - timedelta(seconds=1)
    )
    manual_only = make_integration(factory, factory.site(url=served_wp.url), served_wp.url)  # no interval
    worker = start_worker()
    beat = start_beat()

    def finished() -> SyncEvent | None:
        return db.session.scalar(
            db.select(SyncEvent).where(
                SyncEvent.integration_id == integration.id, SyncEvent.status.in_(("success", "failed"))
            )
        )

    event = wait_for(finished, 60, "no scheduled sync finished", lambda: beat.log() + worker.log())
    assert event.status == "success", event.error_message
    assert event.details["trigger"] == "scheduled" and event.details["created"] == 5
    assert db.session.scalar(db.select(db.func.count(Content.id))) == 5
    stored = db.session.get(SiteIntegration, integration.id)
    assert stored.last_scheduled_sync_at is not None and stored.sync_failure_count == 0
    # Next run about one minute after this one (± 10 % jitter): not dispatched again meanwhile.
    assert timedelta(seconds=40) < stored.next_sync_at - event.finished_at < timedelta(seconds=70)
    assert "integration.dispatch_due_syncs" in beat.log()  # beat sends the dispatcher by name
    time.sleep(3)  # a few more ticks
    db.session.expire_all()

    def count(integration_id: int) -> int:
        query = db.select(db.func.count(SyncEvent.id)).where(SyncEvent.integration_id == integration_id)
        return db.session.scalar(query)

    assert count(integration.id) == 1 and count(manual_only.id) == 0

    # The worker recorded its metrics in Redis; the web side's /metrics reads them from there.
    live_app.config["METRICS_REDIS_URL"] = redis_url
    text = live_app.test_client().get("/metrics").get_data(as_text=True)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    finished_key = (("status", "success"), ("trigger", "scheduled"))
    assert samples[("integration_sync_jobs_finished_total", finished_key)] == 1
    assert samples[("integration_scheduler_lag_seconds_count", ())] == 1
    assert samples[("integration_scheduler_dispatched_total", (("kind", "incremental"),))] == 1
