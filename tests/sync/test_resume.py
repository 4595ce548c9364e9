"""Resumable jobs (issue 11 items 2-3) and failing fast (issue 10 item 3), run eagerly: the pull
commits its checkpoint with each page; a retry, a takeover or the next slice goes on from it."""

from __future__ import annotations

import pytest

from integration_service.extensions import db
from integration_service.models import Content, SyncEvent
from integration_service.sync import jobs, runner
from tests.sync.test_tasks import enqueue_sync, no_client_retries  # noqa: F401  (fixture)
from tests.workers.fakewp import make_integration

BASE = "/api/v1/integration/integrations"


def list_pages(fake_wp) -> list[int]:
    return [int(request["query"].get("page", 1)) for request in fake_wp.list_requests("posts")]


def fail_page_once(fake_wp, monkeypatch, number: int) -> None:
    original = fake_wp._list
    failed = {"done": False}

    def flaky(post_type, query):
        if post_type == "post" and int(query.get("page", 1)) == number and not failed["done"]:
            failed["done"] = True
            return 503, {}, {"code": "unavailable", "message": "Try later.", "data": {}}
        return original(post_type, query)

    monkeypatch.setattr(fake_wp, "_list", flaky)


def test_a_retry_resumes_from_the_checkpoint(app, fake_wp, wp_integration, no_client_retries, monkeypatch):  # noqa: F811
    monkeypatch.setitem(app.config, "WP_CONCURRENCY", 1)
    fake_wp.add_posts(250)  # three pages of 100
    fail_page_once(fake_wp, monkeypatch, 3)

    event = enqueue_sync(app, wp_integration)

    assert event.status == "success", event.error_message
    # Pages 1 and 2 were stored before the 503: the retry starts at page 3.
    assert list_pages(fake_wp) == [1, 2, 3, 3]
    assert event.details["attempts"] == 2 and event.details["created"] == 250
    assert (event.progress_done, event.progress_total) == (250, 250)  # continuous across attempts
    assert event.checkpoint["types_done"] == ["post", "page"]
    assert db.session.scalar(db.select(db.func.count(Content.id))) == 250

    # A fresh job starts clean, from page 1.
    fake_wp.requests.clear()
    again = enqueue_sync(app, wp_integration)
    assert again.status == "success" and list_pages(fake_wp)[0] == 1


def test_a_long_pull_runs_in_slices_of_one_job(app, fake_wp, wp_integration, monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_SLICE_PAGES", 1)
    monkeypatch.setitem(app.config, "WP_CONCURRENCY", 1)
    fake_wp.add_posts(250)
    hand_offs: list[int] = []
    original = jobs.hand_off

    def counting(claim, task_name, details):
        # Between slices the job keeps its sync lock.
        assert db.session.get(SyncEvent, claim.event_id).sync_lock == wp_integration.id
        hand_offs.append(claim.event_id)
        return original(claim, task_name, details)

    monkeypatch.setattr(jobs, "hand_off", counting)

    event = enqueue_sync(app, wp_integration)

    assert event.status == "success", event.error_message
    assert len(hand_offs) == 3  # after pages 1 and 2 of posts, then before the pages type
    assert list_pages(fake_wp) == [1, 2, 3]  # every page requested once
    assert event.details["created"] == 250
    assert (event.progress_done, event.progress_total) == (250, 250)
    assert db.session.scalar(db.select(db.func.count(SyncEvent.id))) == 1  # one job, one SyncEvent


def test_a_stale_run_cannot_write_a_page_or_its_checkpoint(app, factory, site):
    integration = factory.integration(site)
    event = factory.queued_sync(integration, "from_external")
    stale = jobs.claim(event.id, event.task_id)
    current = jobs.claim(event.id, event.task_id)  # the next slice / a redelivery takes it over
    assert stale is not None and current is not None

    db.session.add(Content(site_id=site.id, content_type="post", title="t", external_id="1"))
    with pytest.raises(jobs.LostOwnership):
        jobs.save_checkpoint(stale, {"phase": "pull", "page": 9}, 900, 1000)
    db.session.commit()
    assert db.session.scalar(db.select(db.func.count(Content.id))) == 0  # the page was rolled back
    jobs.save_checkpoint(current, {"phase": "pull", "page": 1}, 100, 1000)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(SyncEvent, event.id).checkpoint["page"] == 1


def test_connection_refused_fails_at_once(app, factory, site, monkeypatch):
    monkeypatch.setitem(app.config, "WP_MAX_RETRIES", 0)
    integration = make_integration(factory, site, "http://127.0.0.1:9")  # nothing listens on discard

    event = enqueue_sync(app, integration)

    assert event.status == "failed"
    assert event.details["attempts"] == 1  # no job retries: they could not help
    assert "refused" in event.error_message and "check the site URL" in event.error_message


def test_refused_after_progress_is_retried(app, fake_wp, wp_integration, no_client_retries, monkeypatch):  # noqa: F811
    import requests

    monkeypatch.setitem(app.config, "WP_CONCURRENCY", 1)
    fake_wp.add_posts(150)
    original = fake_wp._list
    refused = {"done": False}

    def restarting(post_type, query):
        if int(query.get("page", 1)) == 2 and not refused["done"]:
            refused["done"] = True  # the site restarts in the middle of the pull
            try:
                raise ConnectionRefusedError(111, "Connection refused")
            except ConnectionRefusedError as exc:
                raise requests.exceptions.ConnectionError(exc) from exc
        return original(post_type, query)

    monkeypatch.setattr(fake_wp, "_list", restarting)

    event = enqueue_sync(app, wp_integration)

    assert event.status == "success", event.error_message
    assert event.details["attempts"] == 2 and list_pages(fake_wp) == [1, 2, 2]


def test_retries_stop_at_the_total_retry_time(app, fake_wp, wp_integration, no_client_retries, monkeypatch):  # noqa: F811
    monkeypatch.setitem(app.config, "SYNC_RETRY_MAX_TOTAL_SECONDS", 1)
    fake_wp.add_posts(2)
    fake_wp.list_status = 503

    event = enqueue_sync(app, wp_integration)

    assert event.status == "failed" and event.details["attempts"] == 1
    assert "capped at 1 s" in event.error_message


def test_current_job_shows_the_waiting_retry(app, fake_wp, wp_integration, editor_client, no_client_retries):  # noqa: F811
    from tests.factories import Factory

    fake_wp.add_posts(2)
    fake_wp.list_status = 503
    event = Factory(app).queued_sync(wp_integration, "from_external")

    with pytest.raises(runner.RetryLater):
        runner.run(runner.SyncJob, event.id, event.task_id, retries=0, max_retries=2)

    job = editor_client.get(f"{BASE}/{wp_integration.id}/sync_status/").get_json()["current_job"]
    assert job["state"] == "queued" and job["waiting_for"] == "retry"
    assert (job["attempt"], job["max_attempts"]) == (2, 3)
    assert job["next_retry_at"] is not None
