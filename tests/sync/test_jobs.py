"""Job bookkeeping: claims and fencing by claim token, stuck-job recovery, retry backoff."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from integration_service.extensions import db
from integration_service.models import SiteIntegration, SyncEvent, utcnow
from integration_service.sync import jobs, recovery


def _event(integration: SiteIntegration, **fields) -> SyncEvent:
    values = {
        "integration_id": integration.id,
        "site_id": integration.site_id,
        "event_type": "sync",
        "direction": "both",
        "status": "queued",
        "task_id": str(uuid.uuid4()),
        "sync_lock": integration.id,
    }
    values.update(fields)
    event = SyncEvent(**values)
    db.session.add(event)
    db.session.commit()
    return event


def test_a_redelivered_task_takes_over_and_fences_off_the_old_run(factory, site):
    integration = factory.integration(site)
    event = _event(integration)
    first = jobs.claim(event.id, event.task_id)
    assert first is not None
    assert jobs.claim(event.id, "another-task") is None  # a different task never steals it

    second = jobs.claim(event.id, event.task_id)  # same message redelivered after a worker died
    assert second is not None and second.token != first.token

    with pytest.raises(jobs.LostOwnership):
        jobs.heartbeat(first, 1, 2)
    assert jobs.finish(first, "success", {}) is False
    assert jobs.finish(second, "success", {"created": 1}) is True
    db.session.expire_all()
    assert db.session.get(SyncEvent, event.id).status == "success"
    assert jobs.claim(event.id, event.task_id) is None  # finished jobs are never re-run


def test_stuck_jobs_are_failed_and_release_the_lock(app, factory, site, monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_MAX_RESUMES", 0)  # resuming is tested below
    integration = factory.integration(site)
    other = factory.integration(factory.site(site.account))
    old = utcnow() - timedelta(seconds=app.config["SYNC_STUCK_AFTER_SECONDS"] + 5)
    dead = _event(integration, status="running", heartbeat_at=old, started_at=old)
    alive = _event(other, status="running", heartbeat_at=utcnow(), started_at=old)

    assert recovery.recover_stuck_jobs() == [dead.id]

    db.session.expire_all()
    dead = db.session.get(SyncEvent, dead.id)
    assert (dead.status, dead.sync_lock) == ("failed", None)
    assert "heartbeat" in dead.error_message
    assert db.session.get(SyncEvent, alive.id).status == "running"
    assert db.session.get(SiteIntegration, integration.id).sync_status == "failed"


def test_a_dead_sync_is_resumed_from_its_checkpoint_then_failed(app, factory, site, monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_MAX_RESUMES", 1)
    published: list[tuple[int, str | None, str]] = []
    monkeypatch.setattr(jobs, "publish", lambda *args: published.append(args))
    integration = factory.integration(site)
    old = utcnow() - timedelta(seconds=app.config["SYNC_STUCK_AFTER_SECONDS"] + 5)
    checkpoint = {"phase": "pull", "post_type": "post", "page": 3}
    dead = _event(integration, status="running", heartbeat_at=old, started_at=old, checkpoint=checkpoint)

    assert recovery.recover_stuck_jobs() == [dead.id]

    db.session.expire_all()
    event = db.session.get(SyncEvent, dead.id)
    assert (event.status, event.claim_token, event.sync_lock) == ("queued", None, integration.id)
    assert event.checkpoint == {**checkpoint, "resumes": 1}  # the position is kept
    assert event.details["waiting_for"] == "resume"
    assert published == [(dead.id, dead.task_id, jobs.TASK_SYNC)]  # same task id: a takeover
    assert jobs.claim(dead.id, dead.task_id) is not None

    # Dead again: resumed SYNC_MAX_RESUMES times already, so it is failed.
    db.session.execute(db.update(SyncEvent).where(SyncEvent.id == dead.id).values(heartbeat_at=old))
    db.session.commit()
    assert recovery.recover_stuck_jobs() == [dead.id]
    db.session.expire_all()
    event = db.session.get(SyncEvent, dead.id)
    assert (event.status, event.sync_lock) == ("failed", None) and "2 time(s)" in event.error_message


def test_jobs_queued_too_long_are_failed(app, factory, site, monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_QUEUED_STUCK_AFTER_SECONDS", 60)
    integration = factory.integration(site)
    waiting = _event(integration, created_at=utcnow() - timedelta(seconds=120))

    assert recovery.recover_stuck_jobs(integration.id) == [waiting.id]
    db.session.expire_all()
    assert db.session.get(SyncEvent, waiting.id).error_message.startswith("The job was never picked up")


def test_backoff_grows_exponentially_with_jitter(app):
    first = [jobs.backoff_seconds(0) for _ in range(50)]
    third = [jobs.backoff_seconds(2) for _ in range(50)]
    base = app.config["SYNC_RETRY_BACKOFF_SECONDS"]
    assert all(base * 0.5 <= value <= base * 1.5 for value in first)
    assert all(base * 2 <= value <= base * 6 for value in third)
    assert len(set(first)) > 1  # jittered
    assert jobs.backoff_seconds(0, retry_after=base * 3) >= base * 3
