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
    start_worker(SYNC_SLICE_PAGES="1")  # every page a slice: the job re-enqueues itself through Redis
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
    # Sliced (posts page 1 | page 2 | pages): each page was listed once, by one job.
    assert [int(r["query"]["page"]) for r in served_wp.list_requests("posts")] == [1, 2]
    assert stored.checkpoint["types_done"] == ["post", "page"]

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


def test_killed_worker_is_resumed_from_its_checkpoint(live_app, start_worker, factory, site, editor, served_wp):
    """SIGKILL mid-pull: the next worker's sweep sees the missed heartbeats, re-enqueues the job
    and it goes on from the last committed page (issue 12 item 3, issue 11 item 2)."""
    served_wp.add_posts(1000)
    served_wp.list_delay = 0.4  # ten slow pages: time to kill the worker in the middle
    # The killed worker's request slot (politeness.py) frees itself after its lease, so the
    # resumed run does not wait long for it (it heartbeats while it waits).
    env = {
        "SYNC_STUCK_AFTER_SECONDS": "3",
        "SYNC_HEARTBEAT_SECONDS": "0.5",
        "SYNC_RECOVERY_INTERVAL_SECONDS": "1",
        "WP_CONCURRENCY": "1",
        "WP_SLOT_LEASE_SECONDS": "1",
        "SYNC_SLICE_PAGES": "0",
    }
    first = start_worker(**env)
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
    killed_at = time.monotonic()
    db.session.expire_all()
    committed = db.session.get(SyncEvent, event_id).checkpoint["page"]
    assert committed >= 2
    requests_before = len(served_wp.requests)

    start_worker(**env)
    status = poll_until_done(client, headers, integration.id, timeout=85)
    recovered_after = time.monotonic() - killed_at

    db.session.expire_all()
    event = db.session.get(SyncEvent, event_id)
    assert event.status == "success", (event.status, event.error_message)
    assert event.sync_lock is None and status["current_job"] is None
    assert event.checkpoint["resumes"] == 1 and event.details["resumed"] is True
    assert event.details["created"] == 1000 and (event.progress_done, event.progress_total) == (1000, 1000)
    # The committed pages were not downloaded again after the resume.
    resumed_pages = [
        int(request["query"]["page"])
        for request in served_wp.requests[requests_before:]
        if request["route"] == "wp/v2/posts" and request["method"] == "GET"
    ]
    assert resumed_pages and min(resumed_pages) == committed + 1, (committed, resumed_pages)
    assert recovered_after < 90
    print(f"killed at page {committed}; resumed and finished {recovered_after:.1f} s after SIGKILL")

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


def test_a_push_redelivered_after_the_worker_died_creates_one_post(
    live_app, start_worker, factory, site, editor, served_wp
):
    """SIGKILL between WordPress creating the post and the service storing its id: the redelivered
    job (same task id, taken over) finds the post by its _igny8_content_id and creates no other."""
    served_wp.plugin = True
    served_wp.create_delay = 60  # WordPress has stored the post, the worker waits for the answer
    # A short visibility timeout so the broker hands the unacknowledged task to the next worker.
    env = {"CELERY_VISIBILITY_TIMEOUT": "2"}
    first = start_worker(**env)
    integration = make_integration(factory, site, served_wp.url)
    content = factory.content(site, title="Press release", status="published", content_type="post")
    headers = {"Authorization": f"Bearer {factory.token(editor)}"}
    client = live_app.test_client()

    job = client.post(f"{BASE}/{integration.id}/sync/", json={"direction": "to_external"}, headers=headers)
    assert job.status_code == 202, job.get_json()
    if not served_wp.created.wait(30):
        raise AssertionError(f"the push never reached WordPress:\n{first.log()[-3000:]}")
    first.kill()
    assert len(served_wp.posts) == 1
    served_wp.create_delay = 0

    second = start_worker(**env)
    status = poll_until_done(client, headers, integration.id, timeout=60)

    db.session.expire_all()
    event = db.session.get(SyncEvent, job.get_json()["sync_event_id"])
    assert event.status == "success", f"{event.status} {event.error_message}\n{second.log()[-3000:]}"
    assert status["current_job"] is None and event.details["pushed"] == 1
    assert len(served_wp.posts) == 1, served_wp.posts
    stored = db.session.get(Content, content.id)
    (post_id,) = served_wp.posts
    assert stored.external_id == str(post_id) and stored.push_intent is None
    assert served_wp.posts[post_id]["meta"]["_igny8_content_id"] == content.id
    lookups = [r for r in served_wp.requests if r["route"] == "igny8/v1/posts"]
    assert [r["query"]["content_id"] for r in lookups] == [str(content.id)]
    writes = [r["route"] for r in served_wp.requests if r["method"] == "POST"]
    assert writes == ["wp/v2/posts", f"wp/v2/posts/{post_id}"]  # one create, then the adopted post updated
