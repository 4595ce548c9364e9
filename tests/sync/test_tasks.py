"""The Celery tasks (run eagerly): names, queues, retries on transient errors only, time limits."""

from __future__ import annotations

import pytest

from integration_service.extensions import db
from integration_service.models import Content, SyncEvent
from tests.factories import Factory


@pytest.fixture
def no_client_retries(app, monkeypatch):
    # Only the task-level retries are under test: the HTTP client's own retries are switched off.
    monkeypatch.setitem(app.config, "WP_MAX_RETRIES", 0)
    monkeypatch.setitem(app.config, "SYNC_MAX_RETRIES", 2)


def enqueue_sync(app, integration, direction: str = "from_external") -> SyncEvent:
    event = Factory(app).queued_sync(integration, direction)
    app.extensions["celery"].tasks["integration.sync"].apply_async(args=[event.id], task_id=event.task_id)
    db.session.expire_all()
    return db.session.get(SyncEvent, event.id)


def test_task_names_queues_and_options(app):
    celery = app.extensions["celery"]
    for name in ("integration.sync", "integration.sync_wordpress_content", "integration.update_site_structure"):
        task = celery.tasks[name]
        assert task.acks_late is True and task.reject_on_worker_lost is True
    router = celery.amqp.router
    assert router.route({}, "integration.sync")["queue"].name == "sync"
    assert router.route({}, "integration.update_site_structure")["queue"].name == "short"
    assert router.route({}, "integration.sync_wordpress_content")["queue"].name == "short"
    assert celery.tasks["integration.update_site_structure"].time_limit == 120
    assert celery.conf.task_time_limit and celery.conf.task_soft_time_limit < celery.conf.task_time_limit


def test_transient_503_is_retried_then_fails(app, fake_wp, wp_integration, no_client_retries):
    fake_wp.add_posts(2)
    fake_wp.list_status = 503

    event = enqueue_sync(app, wp_integration)

    assert len(fake_wp.list_requests("posts")) == 3  # the first try and two retries
    assert event.status == "failed" and event.sync_lock is None
    assert "503" in event.error_message
    assert event.details["attempts"] == 3


def test_transient_error_then_success(app, fake_wp, wp_integration, no_client_retries, monkeypatch):
    fake_wp.add_posts(2)
    fake_wp.list_status = 503
    original = fake_wp._list
    calls = {"n": 0}

    def flaky(post_type, query):
        calls["n"] += 1
        if calls["n"] == 2:
            fake_wp.list_status = None
        return original(post_type, query)

    monkeypatch.setattr(fake_wp, "_list", flaky)

    event = enqueue_sync(app, wp_integration)

    assert event.status == "success", event.error_message
    assert event.details["attempts"] == 2 and event.details["created"] == 2  # failed once, then succeeded
    assert db.session.scalar(db.select(db.func.count(Content.id))) == 2


def test_auth_errors_are_not_retried(app, fake_wp, wp_integration, no_client_retries):
    fake_wp.add_posts(2)
    fake_wp.auth_status = 401

    event = enqueue_sync(app, wp_integration)

    types_requests = [r for r in fake_wp.requests if r["route"] == "wp/v2/types"]
    assert len(types_requests) == 1
    assert event.status == "failed" and event.details["attempts"] == 1
    assert "401" in event.error_message


def test_a_finished_job_delivered_again_is_skipped(app, fake_wp, wp_integration):
    fake_wp.add_posts(1)
    event = enqueue_sync(app, wp_integration)
    assert event.status == "success"
    fake_wp.requests.clear()

    result = app.extensions["celery"].tasks["integration.sync"].apply(args=[event.id], task_id=event.task_id)

    assert result.get() == {"status": "skipped"}
    assert fake_wp.requests == []


def test_recover_stuck_jobs_task_runs(app):
    assert app.extensions["celery"].tasks["integration.recover_stuck_jobs"].apply().get() == []
