"""The default worker layout: ``celery -A celery_app worker`` with no -Q and no pool option
consumes every queue on the threads pool, and runs many syncs of different sites at once in one
process, a hung site holding only its own thread, every running job heartbeating.

WordPress is ``bench.fleet_wp``'s emulator in a thread of this process (one port per site, a
latency per request, and a site that never answers)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bench.fleet_wp import FleetEmulator
from integration_service.extensions import db
from integration_service.models import FINAL_JOB_STATUSES, SyncEvent, utcnow
from tests.support.live_worker import Worker, spawn_celery
from tests.workers.fakewp import make_integration

pytestmark = pytest.mark.integration

BASE = "/api/v1/integration/integrations"


@pytest.fixture
def default_worker(app, database_url, redis_url, tmp_path) -> Iterator[Any]:
    """``default_worker(**env)``: a worker started as ops would, without -Q and without a pool
    option (only a node name and no mingle/gossip, to start fast)."""
    workers: list[Worker] = []

    def start(**extra_env: str) -> Worker:
        args = ["worker", "--loglevel=INFO", "-n", f"threads-{uuid.uuid4().hex[:8]}@%h", "--without-mingle",
                "--without-gossip"]  # fmt: skip
        worker = spawn_celery(app, database_url, redis_url, tmp_path, f"worker-{len(workers)}.log", args, **extra_env)
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()


def _emulator(count: int, latency: float, faults: dict[int, str] | None = None) -> FleetEmulator:
    return FleetEmulator([5] * count, latency=latency, faults=faults).start_in_thread()


def _start_syncs(live_app: Any, factory: Any, account: Any, editor: Any, urls: list[str]) -> list[tuple[int, int]]:
    """One integration per URL (each its own site), a pull requested for each: (integration, event)."""
    headers = {"Authorization": f"Bearer {factory.token(editor)}"}
    client = live_app.test_client()
    started = []
    for url in urls:
        integration = make_integration(factory, factory.site(account, url=url), url)
        response = client.post(f"{BASE}/{integration.id}/sync/", json={"direction": "from_external"}, headers=headers)
        assert response.status_code == 202, response.get_json()
        started.append((integration.id, response.get_json()["sync_event_id"]))
    return started


def _events(ids: list[int]) -> dict[int, SyncEvent]:
    db.session.expire_all()
    rows = db.session.scalars(db.select(SyncEvent).where(SyncEvent.id.in_(ids))).all()
    db.session.commit()
    return {row.id: row for row in rows}


def _wait(ids: list[int], done: Any, timeout: float, worker: Worker) -> dict[int, SyncEvent]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = _events(ids)
        if done(events):
            return events
        time.sleep(0.2)
    raise AssertionError(f"not reached in {timeout} s: {[(e.id, e.status) for e in _events(ids).values()]}\n"
                         f"{worker.log()[-3000:]}")  # fmt: skip


def _final(events: dict[int, SyncEvent]) -> bool:
    return all(event.status in FINAL_JOB_STATUSES for event in events.values())


def test_a_default_worker_consumes_the_sync_queue_and_runs_syncs_of_different_sites_at_once(
    live_app, default_worker, factory, account, editor
):
    worker = default_worker()
    assert "(thread)" in worker.log()  # the threads pool, from config
    assert ".> sync" in worker.log() and ".> short" in worker.log()
    wp = _emulator(2, latency=1.5)  # each request 1.5 s: a sync takes ~3-5 s
    try:
        started = _start_syncs(live_app, factory, account, editor, [site.url for site in wp.sites])
        events = _wait([e for _, e in started], _final, 60, worker)
    finally:
        wp.stop()
    assert {event.status for event in events.values()} == {"success"}, worker.log()[-3000:]
    first, second = events.values()
    # Both ran in the one process at the same time: their runs overlap.
    assert first.started_at < second.finished_at and second.started_at < first.finished_at
    assert max(site.max_in_flight for site in wp.sites) >= 1


def test_a_hung_site_holds_only_its_own_job(live_app, default_worker, factory, account, editor):
    # The hung site never answers; its request ends at the read timeout (then retries, later).
    worker = default_worker(WP_READ_TIMEOUT="20", WP_MAX_RETRIES="0", SYNC_MAX_RETRIES="0")
    wp = _emulator(4, latency=0.2, faults={0: "hang"})
    try:
        started = _start_syncs(live_app, factory, account, editor, [site.url for site in wp.sites])
        hung, others = started[0][1], [event for _, event in started[1:]]
        events = _wait(others, _final, 30, worker)
        assert {event.status for event in events.values()} == {"success"}
        assert _events([hung])[hung].status == "running"  # still waiting on its site
        events = _wait([hung], _final, 40, worker)
    finally:
        wp.stop()
    assert events[hung].status == "failed" and "did not answer in time" in (events[hung].error_message or "")


def test_every_running_job_heartbeats_under_load(live_app, default_worker, factory, account, editor):
    # 30 jobs wait on hung sites at once; the sweep fails a job whose heartbeat is 6 s old.
    worker = default_worker(
        SYNC_HEARTBEAT_SECONDS="1",
        SYNC_STUCK_AFTER_SECONDS="6",
        SYNC_RECOVERY_INTERVAL_SECONDS="1",
        WP_READ_TIMEOUT="25",
        WP_MAX_RETRIES="0",
        WORKER_CONCURRENCY="40",
    )
    count = 30
    wp = _emulator(count + 3, latency=0.1, faults={i: "hang" for i in range(count)})
    try:
        started = _start_syncs(live_app, factory, account, editor, [site.url for site in wp.sites])
        hung = [event for _, event in started[:count]]
        fast = [event for _, event in started[count:]]
        _wait(hung, lambda events: all(e.status == "running" for e in events.values()), 30, worker)
        # The fast sites' syncs go through while 30 threads wait.
        assert {e.status for e in _wait(fast, _final, 30, worker).values()} == {"success"}
        ages = []
        for _ in range(8):  # 8 s: past the 6 s stuck window, every beat must have landed
            time.sleep(1)
            now = utcnow()
            events = _events(hung)
            assert {event.status for event in events.values()} == {"running"}, worker.log()[-3000:]
            ages.append(max((now - event.heartbeat_at).total_seconds() for event in events.values()))
    finally:
        wp.stop()
    assert max(ages) < 4, ages
