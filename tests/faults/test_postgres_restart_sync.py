"""A sync in a real worker while PostgreSQL restarts (issue 12 section 6): no job is left stuck
holding the lock; the sync completes or fails visibly, and a new sync can start afterwards. The
restart is of a throwaway cluster (tests/faults/test_postgres_restart.py), never the shared one.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from config import TestingConfig, celery_settings
from integration_service import create_app
from integration_service.extensions import db
from integration_service.models import Content, SyncEvent
from tests.factories import Factory
from tests.faults import test_postgres_restart
from tests.integration import conftest as integration_fixtures
from tests.integration.test_worker_sync import BASE, start_pull_and_wait
from tests.support.secrets import assert_no_secret_in_redis
from tests.workers.fakewp import make_integration

pytestmark = [test_postgres_restart.pytestmark, pytest.mark.integration]
# The fixtures this module shares with the integration and restart tests.
cluster = test_postgres_restart.cluster
start_worker = integration_fixtures.start_worker
_require_services = integration_fixtures._require_services
served_wp = integration_fixtures.served_wp


def _read(what: Any) -> Any:
    """Read through the restart: a dropped connection is retried on a fresh one."""
    for _ in range(50):
        try:
            value = what()
            db.session.commit()
            return value
        except OperationalError:
            db.session.rollback()
            db.session.remove()
            time.sleep(0.2)
    raise AssertionError("PostgreSQL did not come back")


def _poll(client: Any, headers: dict[str, str], integration_id: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        response = client.get(f"{BASE}/{integration_id}/sync_status/", headers=headers)
        if response.status_code == 200:
            body = response.get_json()
            if body["current_job"] is None:
                return body
        time.sleep(0.3)
    raise AssertionError(f"the sync did not end in {timeout} s: {body}")


def test_sync_across_a_postgres_restart_ends_visibly(cluster, app, start_worker, served_wp, redis_url, tmp_path):
    live = create_app(
        TestingConfig,
        overrides={
            "SQLALCHEMY_DATABASE_URI": cluster.url,
            "CELERY": {**celery_settings(redis_url, tmp_path), "task_always_eager": False},
        },
    )
    app.extensions["celery"].set_default()
    with live.app_context():
        db.create_all()
        factory = Factory(live)
        account = factory.account()
        site = factory.site(account)
        editor = factory.user(account, role="editor")
        integration = make_integration(factory, site, served_wp.url)
        integration_id = integration.id  # the session is dropped with the restart
        headers = {"Authorization": f"Bearer {factory.token(editor)}"}
        client = live.test_client()
        worker = start_worker(
            DATABASE_URL=cluster.url,
            SYNC_HEARTBEAT_SECONDS="1",
            SYNC_STUCK_AFTER_SECONDS="6",
            SYNC_RECOVERY_INTERVAL_SECONDS="2",
            SYNC_SLICE_PAGES="2",
        )
        served_wp.add_posts(800)
        served_wp.list_delay = 0.5
        event_id = start_pull_and_wait(client, headers, integration_id, worker, done=100)

        db.session.remove()
        cluster.pg_ctl("stop", "-m", "fast")  # every connection dropped mid-pull
        time.sleep(2)
        cluster.pg_ctl("start")
        restarted_at = time.monotonic()
        served_wp.list_delay = 0

        status = _poll(client, headers, integration_id, timeout=60)
        ended_after = time.monotonic() - restarted_at
        event = _read(lambda: db.session.get(SyncEvent, event_id))
        db.session.refresh(event)
        print(
            f"\nPostgreSQL restarted mid-pull: job {event.status} {ended_after:.1f} s later "
            f"({event.error_message}; resumes {(event.checkpoint or {}).get('resumes')}, "
            f"attempts {event.details.get('attempts')})"
        )
        assert event.status in ("success", "partial", "failed"), event.status
        assert event.sync_lock is None and status["current_job"] is None
        if event.status == "failed":
            assert event.error_message and status["sync_status"] == "failed"

        again = client.post(f"{BASE}/{integration_id}/sync/", json={"direction": "from_external"}, headers=headers)
        assert again.status_code == 202, again.get_json()
        final = _poll(client, headers, integration_id, timeout=60)
        assert final["recent_events"][0]["status"] == "success", (final, worker.log()[-3000:])
        rows = _read(lambda: db.session.scalar(db.select(db.func.count(Content.id))))
        assert (
            rows == _read(lambda: db.session.scalar(db.select(db.func.count(db.distinct(Content.external_id))))) == 800
        )
        assert_no_secret_in_redis(redis_url, live, site)
        worker.stop()
        db.session.remove()
        db.engine.dispose()
