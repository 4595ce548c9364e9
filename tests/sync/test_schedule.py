"""Schedules: the decision layer (due time, jitter, backoff, pause), the dispatcher (one claim per
due integration, the sync lock shared with manual syncs, two dispatchers at once on PostgreSQL)
and what a finished job or a connection test does to the schedule."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import timedelta

import pytest

from integration_service.extensions import db
from integration_service.models import SiteIntegration, SyncEvent, utcnow
from integration_service.services.connection import ConnectionTestService
from integration_service.sync import jobs, recovery, schedule
from integration_service.sync.engine import ContentSyncService
from integration_service.sync.schedule import Policy
from tests.platforms.fakes import (
    APP_PASSWORD,
    SITE,
    USERNAME,
    add_wordpress,
    fake_dns_fixture,  # noqa: F401 - fixture
    mocked_fixture,  # noqa: F401 - fixture
)
from tests.support.dead_broker import dead_broker_app
from tests.workers.fakewp import make_integration

NO_JITTER = Policy(jitter_ratio=0.0)
NOW = utcnow().replace(microsecond=0)


# ---------------------------------------------------------------------------- decisions


def test_first_runs_of_a_thousand_integrations_created_together_spread_over_the_interval():
    rng = random.Random(11)
    firsts = [schedule.first_due(NOW, 15, rng) for _ in range(1000)]
    assert all(NOW <= due <= NOW + timedelta(minutes=15) for due in firsts)
    per_second = Counter(int((due - NOW).total_seconds()) for due in firsts)
    # 1,000 runs over 900 seconds: no second gets more than a handful, most seconds get one.
    assert max(per_second.values()) <= 6
    assert len(per_second) > 500
    # Each third of the interval gets about a third of them.
    thirds = Counter(int((due - NOW).total_seconds() // 300) for due in firsts)
    assert all(280 <= thirds[index] <= 390 for index in range(3)), thirds


def test_next_run_is_one_interval_later_give_or_take_the_jitter():
    rng = random.Random(3)
    pol = Policy(jitter_ratio=0.1)
    offsets = [(schedule.next_due(NOW, 15, pol, rng) - NOW).total_seconds() for _ in range(500)]
    assert all(13.5 * 60 <= offset <= 16.5 * 60 for offset in offsets)
    assert max(offsets) - min(offsets) > 120  # they do drift apart
    assert schedule.next_due(NOW, 15, NO_JITTER) == NOW + timedelta(minutes=15)


def test_backoff_doubles_per_consecutive_failure_and_is_capped_at_six_hours():
    delays = [schedule.backoff_delay_seconds(n, 15, NO_JITTER) / 60 for n in range(1, 8)]
    assert delays == [30, 60, 120, 240, 360, 360, 360]
    # An absurd failure count does not overflow.
    assert schedule.backoff_delay_seconds(10_000, 15, NO_JITTER) == 6 * 3600
    jittered = schedule.backoff_delay_seconds(2, 15, Policy(jitter_ratio=0.1), random.Random(1))
    assert 54 * 60 <= jittered <= 66 * 60


def test_outcomes_success_resets_failure_backs_off_auth_pauses():
    success = schedule.outcome_after_job("success", None, 4, 15, NOW, NO_JITTER)
    assert success == schedule.Outcome(0, NOW + timedelta(minutes=15), None)
    partial = schedule.outcome_after_job("partial", None, 2, 15, NOW, NO_JITTER)
    assert partial.failure_count == 0  # the site answered: only some posts failed

    failed = schedule.outcome_after_job("failed", "http", 0, 15, NOW, NO_JITTER)
    assert failed == schedule.Outcome(1, NOW + timedelta(minutes=30), None)
    third = schedule.outcome_after_job("failed", "timeout", 2, 15, NOW, NO_JITTER)
    assert third.next_sync_at == NOW + timedelta(minutes=120)

    auth = schedule.outcome_after_job("failed", "auth", 0, 15, NOW, NO_JITTER)
    assert auth == schedule.Outcome(1, None, "auth_failed")

    manual_only = schedule.outcome_after_job("success", None, 0, None, NOW, NO_JITTER)
    assert manual_only.next_sync_at is None


def test_reconcile_sweep_is_due_on_its_own_interval():
    assert schedule.run_kind(None, NOW) == "incremental"
    assert schedule.run_kind(NOW + timedelta(hours=3), NOW) == "incremental"
    assert schedule.run_kind(NOW - timedelta(seconds=1), NOW) == "reconcile"
    assert schedule.job_options("incremental", NO_JITTER) == ("from_external", False)
    direction, full = schedule.job_options("reconcile", NO_JITTER)
    if schedule.RECONCILE_AVAILABLE:
        assert (direction, full) == ("reconcile", False)
    else:  # until the reconcile engine exists: a full pull
        assert (direction, full) == ("from_external", True)


# ------------------------------------------------------------------------------ dispatcher


def due_integration(factory, url: str = "https://blog.example.com", **fields):
    fields.setdefault("next_sync_at", utcnow() - timedelta(seconds=5))
    fields.setdefault("sync_interval_minutes", 15)
    site = factory.site(url=url)
    return make_integration(factory, site, url, **fields)


def sync_events(integration_id: int) -> list[SyncEvent]:
    return list(
        db.session.scalars(
            db.select(SyncEvent).where(SyncEvent.integration_id == integration_id).order_by(SyncEvent.id)
        )
    )


def test_dispatcher_syncs_a_due_integration_and_moves_its_schedule_on(factory, fake_wp):
    fake_wp.add_posts(3)
    due = due_integration(factory, fake_wp.url)
    due_at = due.next_sync_at
    later = due_integration(factory, next_sync_at=utcnow() + timedelta(minutes=5))
    paused = due_integration(factory, paused_reason="auth_failed")
    disabled = due_integration(factory, sync_enabled=False)
    inactive = due_integration(factory, is_active=False)
    manual_only = due_integration(factory, sync_interval_minutes=None)

    result = schedule.dispatch_due()  # eager Celery: the job runs inside the call

    assert result == {"due": 1, "dispatched": 1, "skipped_locked": 0}
    [event] = sync_events(due.id)
    assert event.status == "success", event.error_message
    assert event.details["trigger"] == "scheduled" and event.details["created"] == 3
    assert event.direction == "from_external" and event.sync_lock is None
    assert event.details["due_at"] == due_at.isoformat()
    db.session.expire_all()
    integration = db.session.get(SiteIntegration, due.id)
    assert integration.sync_status == "success" and integration.sync_failure_count == 0
    assert integration.last_scheduled_sync_at is not None
    assert timedelta(minutes=13) < integration.next_sync_at - utcnow() <= timedelta(minutes=16.5)
    for other in (later, paused, disabled, inactive, manual_only):
        assert sync_events(other.id) == []

    assert schedule.dispatch_due() == {"due": 0, "dispatched": 0, "skipped_locked": 0}


def test_a_sliced_scheduled_sync_keeps_its_trigger_and_reaches_the_schedule_once(app, factory, fake_wp, monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_SLICE_PAGES", 1)
    monkeypatch.setitem(app.config, "WP_CONCURRENCY", 1)
    fake_wp.add_posts(250)  # three pages: the job re-enqueues itself between them
    hand_offs: list[str | None] = []
    original_hand_off = jobs.hand_off

    def counting(claim, task_name, details):
        hand_offs.append(details.get("trigger"))
        return original_hand_off(claim, task_name, details)

    monkeypatch.setattr(jobs, "hand_off", counting)
    hooked: list[tuple] = []
    original_hook = schedule.after_sync_job
    monkeypatch.setattr(schedule, "after_sync_job", lambda *args: (hooked.append(args), original_hook(*args)))
    due = due_integration(factory, fake_wp.url)

    schedule.dispatch_due()

    [event] = sync_events(due.id)
    assert event.status == "success", event.error_message
    assert len(hand_offs) >= 2 and set(hand_offs) == {"scheduled"}  # every slice knows who started it
    assert event.details["trigger"] == "scheduled" and event.details["created"] == 250
    assert hooked == [(event.id, "success", None)]  # once, at the end; never between slices


def test_a_due_integration_whose_manual_sync_holds_the_lock_is_skipped_and_rescheduled(factory, monkeypatch):
    integration = due_integration(factory)
    manual = factory.queued_sync(integration, "both")
    sent: list[int] = []
    monkeypatch.setattr(jobs, "publish", lambda event_id, task_id, task: sent.append(event_id))

    result = schedule.dispatch_due()

    assert result == {"due": 1, "dispatched": 0, "skipped_locked": 1}
    assert [event.id for event in sync_events(integration.id)] == [manual.id]
    assert sent == []
    db.session.expire_all()
    assert db.session.get(SiteIntegration, integration.id).next_sync_at > utcnow() + timedelta(minutes=13)


def test_a_manual_sync_is_refused_while_a_scheduled_one_holds_the_lock(factory, api_client_for, editor, monkeypatch):
    integration = due_integration(factory)
    integration.site.account_id = editor.account_id
    db.session.commit()
    monkeypatch.setattr(jobs, "publish", lambda event_id, task_id, task: None)  # stays queued
    assert schedule.dispatch_due()["dispatched"] == 1
    [scheduled] = sync_events(integration.id)

    response = api_client_for(editor).post(f"/api/v1/integration/integrations/{integration.id}/sync/", json={})

    assert response.status_code == 409
    assert response.get_json()["error"]["details"]["sync_event_id"] == scheduled.id


def test_manual_syncs_say_so_and_retime_the_schedule(factory, fake_wp, api_client_for, editor):
    fake_wp.add_posts(1)
    integration = due_integration(factory, fake_wp.url)
    integration.site.account_id = editor.account_id
    db.session.commit()

    response = api_client_for(editor).post(
        f"/api/v1/integration/integrations/{integration.id}/sync/", json={"direction": "from_external"}
    )

    assert response.status_code == 202
    [event] = sync_events(integration.id)
    assert event.details["trigger"] == "manual" and event.status == "success"
    db.session.expire_all()
    # The manual sync just ran: the next scheduled one is an interval away, not due now.
    assert db.session.get(SiteIntegration, integration.id).next_sync_at > utcnow() + timedelta(minutes=13)


def test_failures_back_off_exponentially(app, factory, fake_wp, monkeypatch):
    monkeypatch.setitem(app.config, "WP_MAX_RETRIES", 0)
    monkeypatch.setitem(app.config, "SYNC_MAX_RETRIES", 0)
    monkeypatch.setitem(app.config, "SCHEDULE_JITTER_RATIO", 0.0)
    fake_wp.list_status = 500
    integration = due_integration(factory, fake_wp.url)

    for failures, minutes in ((1, 30), (2, 60), (3, 120)):
        schedule.dispatch_due()
        db.session.expire_all()
        stored = db.session.get(SiteIntegration, integration.id)
        assert stored.sync_failure_count == failures
        assert stored.sync_status == "failed" and stored.paused_reason is None
        delay = stored.next_sync_at - utcnow()
        assert timedelta(minutes=minutes - 1) < delay <= timedelta(minutes=minutes)
        stored.next_sync_at = utcnow() - timedelta(seconds=1)  # as if the wait were over
        db.session.commit()

    fake_wp.list_status = None
    schedule.dispatch_due()
    db.session.expire_all()
    assert db.session.get(SiteIntegration, integration.id).sync_failure_count == 0


def test_an_auth_failure_pauses_the_schedule(app, factory, fake_wp, monkeypatch):
    monkeypatch.setitem(app.config, "WP_MAX_RETRIES", 0)
    fake_wp.auth_status = 401
    integration = due_integration(factory, fake_wp.url)

    schedule.dispatch_due()

    [event] = sync_events(integration.id)
    assert event.status == "failed" and "401" in event.error_message
    db.session.expire_all()
    stored = db.session.get(SiteIntegration, integration.id)
    assert stored.paused_reason == "auth_failed" and stored.next_sync_at is None
    # Even when forced due, a paused schedule dispatches nothing: no stream of failing jobs.
    stored.next_sync_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert schedule.dispatch_due()["due"] == 0
    assert len(sync_events(integration.id)) == 1


@pytest.mark.usefixtures("fake_dns")
def test_a_passing_connection_test_resumes_a_paused_schedule_and_a_failing_one_does_not(mocked, factory, site):
    site.url = SITE
    db.session.commit()
    credentials = {"api_key": site.plain_api_key, "username": USERNAME, "app_password": "wrong password"}
    integration = factory.integration(
        site,
        config_json={"site_url": SITE},
        credentials_json=credentials,
        sync_interval_minutes=15,
        paused_reason="auth_failed",
        sync_failure_count=1,
    )
    add_wordpress(mocked, api_key=site.plain_api_key)

    assert not ConnectionTestService().run(integration).success
    db.session.refresh(integration)
    assert integration.paused_reason == "auth_failed"

    integration.credentials_json = {**credentials, "app_password": APP_PASSWORD}
    db.session.commit()
    assert ConnectionTestService().run(integration).success
    db.session.refresh(integration)
    assert integration.paused_reason is None and integration.sync_failure_count == 0
    assert integration.next_sync_at <= utcnow()  # due at once


def test_the_reconcile_sweep_is_dispatched_when_due_and_retimed_after(app, factory, fake_wp):
    fake_wp.add_posts(2)
    integration = due_integration(factory, fake_wp.url, next_reconcile_at=utcnow() - timedelta(minutes=1))

    schedule.dispatch_due()

    [event] = sync_events(integration.id)
    assert event.details["sweep"] == "reconcile" and event.status == "success"
    assert event.direction == schedule.RECONCILE_DIRECTION
    assert event.details["full"] is schedule.RECONCILE_FULL
    db.session.expire_all()
    stored = db.session.get(SiteIntegration, integration.id)
    assert stored.next_reconcile_at > utcnow() + timedelta(hours=23)


def test_dispatch_statements_per_tick_do_not_grow_with_the_batch(app, factory, monkeypatch):
    from sqlalchemy import event as sa_event

    monkeypatch.setattr(jobs, "publish", lambda event_id, task_id, task: None)
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    def tick() -> int:
        statements.clear()
        sa_event.listen(db.engine, "before_cursor_execute", count)
        try:
            schedule.dispatch_due()
        finally:
            sa_event.remove(db.engine, "before_cursor_execute", count)
        return len(statements)

    for _ in range(2):
        due_integration(factory)
    small = tick()
    for _ in range(12):
        due_integration(factory)
    large = tick()
    assert small == large <= 3, statements  # select the due rows, insert the jobs, update the schedules


def test_two_dispatchers_at_once_never_dispatch_an_integration_twice(app, factory, monkeypatch, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("FOR UPDATE SKIP LOCKED needs PostgreSQL (TEST_DATABASE_URL)")
    ids = {due_integration(factory).id for _ in range(40)}
    db.session.remove()
    sent: list[int] = []
    lock = threading.Lock()
    original_insert = schedule._insert_locked

    def slow_insert(rows, dialect):
        inserted = original_insert(rows, dialect)
        barrier_after_claim.wait(timeout=10)  # both hold their claimed rows at the same moment
        return inserted

    def record(event_id, task_id, task):
        with lock:
            sent.append(event_id)

    monkeypatch.setattr(schedule, "_insert_locked", slow_insert)
    monkeypatch.setattr(jobs, "publish", record)
    barrier_before = threading.Barrier(2)
    barrier_after_claim = threading.Barrier(2)
    results: list[dict] = []
    errors: list[BaseException] = []

    def dispatcher() -> None:
        try:
            with app.app_context():
                barrier_before.wait(timeout=10)
                results.append(schedule.dispatch_due(limit=25))
                db.session.remove()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors, errors
    # Both claimed rows while the other held its own (SKIP LOCKED): together all 40, none twice.
    dispatched = [result["dispatched"] for result in results]
    assert sum(dispatched) == 40 and min(dispatched) > 0 and max(dispatched) <= 25, results
    events = db.session.scalars(db.select(SyncEvent)).all()
    assert len(events) == 40 and {event.integration_id for event in events} == ids
    assert sorted(sent) == sorted(event.id for event in events)


def test_an_unexpected_error_mapped_by_the_runner_backs_off_the_schedule(app, factory, fake_wp, monkeypatch):
    monkeypatch.setitem(app.config, "SCHEDULE_JITTER_RATIO", 0.0)

    def broken_pull(self, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(ContentSyncService, "pull", broken_pull)
    integration = due_integration(factory, fake_wp.url)

    schedule.dispatch_due()

    [event] = sync_events(integration.id)
    assert event.status == "failed" and event.error_message.startswith("Internal error (RuntimeError)")
    assert event.details["trigger"] == "scheduled"  # carried through the failure details
    db.session.expire_all()
    stored = db.session.get(SiteIntegration, integration.id)
    assert stored.sync_failure_count == 1
    assert timedelta(minutes=29) < stored.next_sync_at - utcnow() <= timedelta(minutes=30)


def test_stuck_recovery_backs_off_the_schedule_only_when_it_fails_the_job(app, factory, monkeypatch):
    monkeypatch.setitem(app.config, "SCHEDULE_JITTER_RATIO", 0.0)
    monkeypatch.setitem(app.config, "SYNC_MAX_RESUMES", 1)
    published: list[tuple] = []
    monkeypatch.setattr(jobs, "publish", lambda *args: published.append(args))
    hooked: list[tuple] = []
    original_hook = schedule.after_sync_job
    monkeypatch.setattr(schedule, "after_sync_job", lambda *args: (hooked.append(args), original_hook(*args)))
    due_at = utcnow() + timedelta(minutes=5)
    integration = due_integration(factory, next_sync_at=due_at, sync_failure_count=1)
    old = utcnow() - timedelta(seconds=app.config["SYNC_STUCK_AFTER_SECONDS"] + 5)
    dead = SyncEvent(
        integration_id=integration.id,
        site_id=integration.site_id,
        event_type=jobs.SYNC.event_type,
        direction="from_external",
        status="running",
        details={"trigger": "scheduled"},
        checkpoint={"phase": "pull", "post_type": "post", "page": 2},
        task_id=jobs.new_task_id(),
        sync_lock=integration.id,
        started_at=old,
        heartbeat_at=old,
    )
    db.session.add(dead)
    db.session.commit()

    # First death: resumed (re-queued from its checkpoint). The job has not ended: no hook, the
    # schedule is untouched, and the resumed run still says who started it.
    assert recovery.recover_stuck_jobs() == [dead.id]
    db.session.expire_all()
    event = db.session.get(SyncEvent, dead.id)
    assert event.status == "queued" and len(published) == 1 and hooked == []
    assert event.details["trigger"] == "scheduled" and event.details["waiting_for"] == "resume"
    stored = db.session.get(SiteIntegration, integration.id)
    assert stored.sync_failure_count == 1 and abs((stored.next_sync_at - due_at).total_seconds()) < 1

    # Dead again, past SYNC_MAX_RESUMES: failed, and the schedule backs off exactly once.
    db.session.execute(db.update(SyncEvent).where(SyncEvent.id == dead.id).values(status="running", heartbeat_at=old))
    db.session.commit()
    assert recovery.recover_stuck_jobs() == [dead.id]
    assert hooked == [(dead.id, "failed")]
    db.session.expire_all()
    stored = db.session.get(SiteIntegration, integration.id)
    assert stored.sync_failure_count == 2 and stored.paused_reason is None
    # Second consecutive failure: 15 min x 2^2, instead of the 5 minutes it was due in.
    assert timedelta(minutes=59) < stored.next_sync_at - utcnow() <= timedelta(minutes=60)
    assert recovery.recover_stuck_jobs() == [] and len(hooked) == 1  # a failed job is never hooked again


def test_a_tick_publishes_its_whole_batch_with_one_producer(app, factory, monkeypatch):
    task = app.extensions["celery"].tasks[jobs.TASK_SYNC]
    producers: list[object] = []
    monkeypatch.setattr(task, "apply_async", lambda *args, **kwargs: producers.append(kwargs.get("producer")))
    for _ in range(3):
        due_integration(factory)

    assert schedule.dispatch_due()["dispatched"] == 3
    assert len(producers) == 3 and producers[0] is not None
    assert all(p is producers[0] for p in producers)  # acquired once for the tick, not once per task

    producers.clear()
    jobs.publish(1, "outside-a-tick", jobs.TASK_SYNC)
    assert producers == [None]  # elsewhere: the pool's producer per publish, as before


def _counting_ticks(monkeypatch) -> list[dict[str, int]]:
    ticks: list[dict[str, int]] = []
    original = schedule.dispatch_due

    def counting(*args, **kwargs):
        outcome = original(*args, **kwargs)
        ticks.append(outcome)
        return outcome

    monkeypatch.setattr(schedule, "dispatch_due", counting)
    return ticks


def test_a_full_batch_enqueues_the_next_tick_until_the_backlog_is_drained_once(app, factory, monkeypatch):
    from integration_service.sync.tasks import dispatch_due_syncs

    monkeypatch.setitem(app.config, "SCHEDULER_BATCH_SIZE", 3)
    sent: list[int] = []
    monkeypatch.setattr(jobs, "publish", lambda event_id, task_id, task: sent.append(event_id))
    ids = {due_integration(factory).id for _ in range(7)}
    ticks = _counting_ticks(monkeypatch)

    app.extensions["celery"].tasks[dispatch_due_syncs.name].delay()  # eager: follow-ups run inside it

    assert [tick["dispatched"] for tick in ticks] == [3, 3, 1]  # the short third batch ends the chain
    events = db.session.scalars(db.select(SyncEvent)).all()
    assert {event.integration_id for event in events} == ids and len(events) == 7
    assert sorted(sent) == sorted(event.id for event in events)  # each published once


def test_a_batch_that_is_not_full_is_not_followed_up(app, factory, monkeypatch):
    from integration_service.sync.tasks import dispatch_due_syncs

    monkeypatch.setitem(app.config, "SCHEDULER_BATCH_SIZE", 3)
    monkeypatch.setattr(jobs, "publish", lambda event_id, task_id, task: None)
    for _ in range(2):
        due_integration(factory)
    ticks = _counting_ticks(monkeypatch)

    app.extensions["celery"].tasks[dispatch_due_syncs.name].delay()
    assert [tick["dispatched"] for tick in ticks] == [2]

    ticks.clear()
    for _ in range(3):
        due_integration(factory)
    app.extensions["celery"].tasks[dispatch_due_syncs.name].delay()
    assert [tick["due"] for tick in ticks] == [3, 0]  # exactly full: one look more, which finds none


def test_a_tick_whose_broker_is_down_leaves_no_queued_job_and_does_not_follow_up(
    app, factory, database_url, monkeypatch
):
    ids = [due_integration(factory).id for _ in range(2)]
    db.session.remove()
    ticks = _counting_ticks(monkeypatch)

    with dead_broker_app(app, database_url, SCHEDULER_BATCH_SIZE=2) as broken, broken.app_context():
        task = broken.extensions["celery"].tasks["integration.dispatch_due_syncs"]
        task.run()  # the task's body, in this process, against the dead broker
        db.session.remove()

    # One tick: both claimed, neither sent; no queued row (no lock) left; both due again for the
    # next beat tick, not retried in a loop against the dead broker.
    assert ticks == [{"due": 2, "dispatched": 0, "skipped_locked": 0}]
    assert db.session.scalar(db.select(db.func.count(SyncEvent.id))) == 0
    due_again = db.select(db.func.count(SiteIntegration.id)).where(
        SiteIntegration.id.in_(ids), SiteIntegration.next_sync_at <= utcnow()
    )
    assert db.session.scalar(due_again) == 2


def test_a_tick_counts_its_dispatches_in_one_metrics_write_per_kind(app, factory, monkeypatch):
    from integration_service import metrics

    monkeypatch.setattr(jobs, "publish", lambda event_id, task_id, task: None)
    recorded: list[tuple] = []
    monkeypatch.setattr(metrics, "record_dispatched", lambda *args: recorded.append(args))
    for _ in range(4):
        due_integration(factory)

    assert schedule.dispatch_due()["dispatched"] == 4
    assert recorded == [("incremental", 4)]
