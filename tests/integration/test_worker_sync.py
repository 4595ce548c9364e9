"""Syncs through a real Celery worker process on Redis and PostgreSQL (no eager mode).

WordPress is a small WordPress-like HTTP server in a thread of this process (the worker is
another process, so ``responses`` mocks would not reach it)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from config import TestingConfig, celery_settings
from integration_service import create_app
from integration_service.extensions import db
from integration_service.models import Content, SyncEvent
from tests.workers.fakewp import make_integration

pytestmark = pytest.mark.integration

BASE = "/api/v1/integration/integrations"


def poll_until_done(client: Any, headers: dict[str, str], integration_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"{BASE}/{integration_id}/sync_status/", headers=headers).get_json()
        if body["current_job"] is None:
            return body
        time.sleep(0.2)
    raise AssertionError(f"the sync did not finish in {timeout} s: {body}")


def test_sync_over_http_runs_in_a_real_worker(live_app, start_worker, factory, site, editor, served_wp):
    start_worker()
    served_wp.add_posts(150)
    served_wp.add_post(post_type="page", title="About")
    integration = make_integration(factory, site, served_wp.url)
    headers = {"Authorization": f"Bearer {factory.token(editor)}"}
    client = live_app.test_client()

    response = client.post(f"{BASE}/{integration.id}/sync/", json={"direction": "both"}, headers=headers)
    assert response.status_code == 202, response.get_json()
    job = response.get_json()

    status = poll_until_done(client, headers, integration.id)

    assert status["sync_status"] == "success", status
    event = status["recent_events"][0]
    assert event["id"] == job["sync_event_id"] and event["status"] == "success"
    assert event["details"]["created"] == 151
    assert db.session.scalar(db.select(db.func.count(Content.id))) == 151
    stored = db.session.get(SyncEvent, job["sync_event_id"])
    assert stored.task_id == job["job_id"] and stored.sync_lock is None
    # both = 151 posts pulled, then the same 151 checked for a push (unchanged: nothing sent).
    assert (stored.progress_done, stored.progress_total) == (302, 302)
    assert event["details"]["pushed"] == 0

    # The short queue serves the structure update.
    structure = {"post_types": {"post": {"label": "Posts"}}, "taxonomies": {}}
    response = client.post(f"{BASE}/{integration.id}/update_site_structure/", json=structure, headers=headers)
    assert response.status_code == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        types = client.get(f"{BASE}/{integration.id}/content_types/", headers=headers).get_json()
        if types:
            break
        time.sleep(0.2)
    assert types["post_types"] == {"post": {"label": "Posts"}}


def test_killed_worker_leaves_no_running_job_and_no_duplicates(
    live_app, start_worker, factory, site, editor, served_wp
):
    served_wp.add_posts(1000)
    served_wp.list_delay = 0.4  # ten slow pages: time to kill the worker in the middle
    stuck_env = {"SYNC_STUCK_AFTER_SECONDS": "3", "SYNC_RECOVERY_INTERVAL_SECONDS": "1", "WP_CONCURRENCY": "1"}
    first = start_worker(**stuck_env)
    integration = make_integration(factory, site, served_wp.url)
    headers = {"Authorization": f"Bearer {factory.token(editor)}"}
    client = live_app.test_client()

    job = client.post(f"{BASE}/{integration.id}/sync/", json={"direction": "from_external"}, headers=headers)
    assert job.status_code == 202
    event_id = job.get_json()["sync_event_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        current = client.get(f"{BASE}/{integration.id}/sync_status/", headers=headers).get_json()["current_job"]
        if current and current["state"] == "running" and current["progress"]["done"] >= 200:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the sync never got going:\n{first.log()[-3000:]}")
    first.kill()

    start_worker(**stuck_env)
    status = poll_until_done(client, headers, integration.id, timeout=45)

    db.session.expire_all()
    event = db.session.get(SyncEvent, event_id)
    assert event.status in ("failed", "success"), event.status
    assert event.sync_lock is None
    if event.status == "failed":
        assert "heartbeat" in event.error_message
    assert status["current_job"] is None

    # No job blocks the next sync, and the rows are never duplicated.
    served_wp.list_delay = 0
    again = client.post(f"{BASE}/{integration.id}/sync/", json={"direction": "from_external"}, headers=headers)
    assert again.status_code == 202, again.get_json()
    final = poll_until_done(client, headers, integration.id)
    assert final["recent_events"][0]["status"] == "success"
    rows = db.session.scalar(db.select(db.func.count(Content.id)))
    distinct = db.session.scalar(db.select(db.func.count(db.distinct(Content.external_id))))
    assert rows == distinct == 1000


def test_broker_down_answers_503(app, database_url, tmp_path, factory, site, editor):
    integration = make_integration(factory, site, "http://127.0.0.1:9")
    config = {**celery_settings("redis://127.0.0.1:1/0", tmp_path), "task_always_eager": False}
    down = create_app(TestingConfig, overrides={"SQLALCHEMY_DATABASE_URI": database_url, "CELERY": config})
    app.extensions["celery"].set_default()
    headers = {"Authorization": f"Bearer {factory.token(editor)}"}
    try:
        started = time.monotonic()
        response = down.test_client().post(f"{BASE}/{integration.id}/sync/", json={}, headers=headers)
        elapsed = time.monotonic() - started
    finally:
        with down.app_context():
            db.session.remove()
            db.engine.dispose()

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "queue_unavailable"
    assert elapsed < 10
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(SyncEvent.id))) == 0
