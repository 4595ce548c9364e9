"""What a scheduled incremental sync that finds nothing new costs PostgreSQL (issue 22, item 4):
at most 3 transactions in the worker (it was 8 here, 9.2–9.6 in bench/fleet_real.py with the
dispatcher's share). The job starts in one (claim, rows, ``syncing``) and ends in one (final
state, a pull's last page and position, the schedule); a pull that found nothing commits
nothing of its own. No transaction is open while WordPress is asked, and a job that lost its
claim writes nothing, its last page included."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import update

from integration_service.extensions import db
from integration_service.models import Content, SiteIntegration, SyncEvent, utcnow
from integration_service.sync import jobs
from integration_service.timeutil import iso
from tests.workers.fakewp import BASE_TIME, make_integration

MAX_TRANSACTIONS = 3


class Transactions:
    """Transactions begun on the service's engine (every pooled connection, the heartbeat's
    too), and the WordPress requests made while one of its connections was checked out."""

    def __init__(self) -> None:
        self.begun = 0
        self.committed = 0
        self.by_the_sync = 0  # begun while the sync ran (``run_counted``)
        self.requests_holding_a_connection: list[str] = []

    def on_begin(self, conn: Any) -> None:
        self.begun += 1

    def on_commit(self, conn: Any) -> None:
        self.committed += 1


@pytest.fixture
def transactions(app, fake_wp) -> Iterator[Transactions]:
    seen = Transactions()
    engine = db.engine
    original = fake_wp.handle

    def handle(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if engine.pool.checkedout():  # type: ignore[attr-defined]
            seen.requests_holding_a_connection.append(path)
        return original(method, path, *args, **kwargs)

    fake_wp.handle = handle
    sa_event.listen(engine, "begin", seen.on_begin)
    sa_event.listen(engine, "commit", seen.on_commit)
    yield seen
    sa_event.remove(engine, "begin", seen.on_begin)
    sa_event.remove(engine, "commit", seen.on_commit)


def scheduled_integration(factory, site, fake_wp, **config: Any) -> SiteIntegration:
    integration = make_integration(factory, site, fake_wp.url)
    integration.config_json = {**integration.config_json, **config}
    integration.sync_interval_minutes = 15
    integration.next_sync_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    return integration


def queue_scheduled_sync(integration: SiteIntegration) -> tuple[int, str]:
    """A queued sync as the dispatcher records it (trigger, due time, the sync lock)."""
    event = SyncEvent(
        integration_id=integration.id,
        site_id=integration.site_id,
        event_type=jobs.SYNC.event_type,
        action=jobs.SYNC.action,
        direction="from_external",
        status="queued",
        details={"direction": "from_external", "full": False, "trigger": "scheduled", "due_at": iso(utcnow())},
        task_id=jobs.new_task_id(),
        sync_lock=integration.id,
        progress_done=0,
    )
    db.session.add(event)
    db.session.commit()
    return event.id, str(event.task_id)


def run_sync(app, event_id: int, task_id: str) -> None:
    """The worker's task, run eagerly, starting from a session that holds nothing."""
    db.session.remove()
    app.extensions["celery"].tasks[jobs.TASK_SYNC].apply_async(args=[event_id], task_id=task_id)
    db.session.remove()


def run_counted(app, transactions: Transactions, integration: SiteIntegration) -> SyncEvent:
    event_id, task_id = queue_scheduled_sync(integration)
    transactions.begun = transactions.committed = 0
    run_sync(app, event_id, task_id)
    counted = transactions.by_the_sync = transactions.begun
    event = db.session.get(SyncEvent, event_id)
    assert event is not None and event.status == "success", event and event.error_message
    assert counted <= MAX_TRANSACTIONS, f"{counted} transactions for a sync that found nothing"
    assert transactions.requests_holding_a_connection == []
    return event


def assert_finished_and_rescheduled(event: SyncEvent, integration_id: int) -> SiteIntegration:
    integration = db.session.get(SiteIntegration, integration_id)
    assert integration is not None
    assert event.sync_lock is None and event.finished_at is not None
    assert integration.sync_status == "success" and integration.last_sync_at is not None
    assert integration.sync_failure_count == 0
    assert integration.next_sync_at is not None and integration.next_sync_at > utcnow() + timedelta(minutes=10)
    return integration


def test_an_incremental_sync_that_lists_nothing_costs_at_most_three_transactions(
    app, factory, site, fake_wp, transactions
):
    fake_wp.add_posts(3)
    integration = scheduled_integration(factory, site, fake_wp, sync_post_types=["post"])
    watermark = iso(BASE_TIME + timedelta(days=1))  # past every post, beyond the overlap
    integration.pull_watermarks = {"post": watermark}
    db.session.commit()
    integration_id = integration.id

    event = run_counted(app, transactions, integration)

    assert transactions.by_the_sync == 2  # the start and the end
    assert [r["query"].get("modified_after") for r in fake_wp.list_requests("posts")] != [None]
    assert event.details["trigger"] == "scheduled" and event.details["incremental"] == {"post": True}
    assert event.details["created"] == 0 and event.details["unchanged"] == 0
    assert event.checkpoint["types_done"] == ["post"]  # the last position, written with the finish
    stored = assert_finished_and_rescheduled(event, integration_id)
    assert stored.pull_watermarks == {"post": watermark}


def test_a_next_sync_that_lists_its_newest_posts_again_costs_at_most_three_transactions(
    app, factory, site, fake_wp, transactions
):
    """The realistic case: the watermark is the newest post's time and the overlap lists the
    last posts again, unchanged (their rows are stamped as seen), with the default two types."""
    fake_wp.add_posts(3)
    fake_wp.add_posts(2, post_type="page")
    integration = scheduled_integration(factory, site, fake_wp)
    integration_id = integration.id
    first_id, first_task = queue_scheduled_sync(integration)
    run_sync(app, first_id, first_task)
    first = db.session.get(SyncEvent, first_id)
    assert first is not None and first.status == "success" and first.details["created"] == 5
    stamped_before = max(row.last_synced_at for row in db.session.scalars(db.select(Content)))
    watermarks = db.session.get(SiteIntegration, integration_id).pull_watermarks
    db.session.remove()
    fake_wp.requests.clear()

    event = run_counted(app, transactions, db.session.get(SiteIntegration, integration_id))

    # The start, the posts' page (read and stamped before the pages are asked for), the end
    # with the pages' page: 3. With one post type (the bench's case) it is 2.
    assert transactions.by_the_sync == 3
    assert event.details["created"] == 0 and event.details["updated"] == 0
    assert event.details["unchanged"] >= 1  # listed again by the overlap
    assert event.checkpoint["types_done"] == ["post", "page"]
    assert (event.progress_done, event.progress_total) == (event.details["unchanged"],) * 2
    stored = assert_finished_and_rescheduled(event, integration_id)
    assert stored.pull_watermarks == watermarks
    # The posts listed again were stamped as seen, in the finish's transaction.
    assert max(row.last_synced_at for row in db.session.scalars(db.select(Content))) > stamped_before


def test_a_failed_sync_records_its_failure_and_the_schedule_in_the_same_transactions(
    app, factory, site, fake_wp, transactions
):
    fake_wp.add_posts(1)
    fake_wp.auth_status = 401  # not retried: the job fails and the schedule pauses
    integration = scheduled_integration(factory, site, fake_wp, sync_post_types=["post"])
    integration_id = integration.id
    event_id, task_id = queue_scheduled_sync(integration)
    transactions.begun = 0

    run_sync(app, event_id, task_id)

    assert transactions.begun <= MAX_TRANSACTIONS
    event = db.session.get(SyncEvent, event_id)
    stored = db.session.get(SiteIntegration, integration_id)
    assert (event.status, event.sync_lock) == ("failed", None) and "auth" in event.error_message
    assert stored.sync_status == "failed" and stored.sync_error == event.error_message
    assert (stored.sync_failure_count, stored.paused_reason, stored.next_sync_at) == (1, "auth_failed", None)


def test_a_run_that_lost_its_claim_writes_nothing_of_its_last_page(app, factory, site, fake_wp, monkeypatch):
    """The last page's rows wait for the finish: a run taken over meanwhile (the job redelivered
    or resumed elsewhere) rolls them back with its finish, and the job stays the new owner's."""
    fake_wp.add_posts(2)
    integration = scheduled_integration(factory, site, fake_wp, sync_post_types=["post"])
    integration_id = integration.id
    event_id, task_id = queue_scheduled_sync(integration)
    original = fake_wp._list

    def taken_over_while_listing(post_type: str, query: dict[str, str]) -> Any:
        with db.engine.begin() as connection:  # another worker's claim
            connection.execute(update(SyncEvent).where(SyncEvent.id == event_id).values(claim_token="another-run"))
        return original(post_type, query)

    monkeypatch.setattr(fake_wp, "_list", taken_over_while_listing)

    run_sync(app, event_id, task_id)

    event = db.session.get(SyncEvent, event_id)
    assert (event.status, event.claim_token, event.sync_lock) == ("running", "another-run", integration_id)
    assert db.session.scalar(db.select(db.func.count(Content.id))) == 0
    stored = db.session.get(SiteIntegration, integration_id)
    assert not stored.pull_watermarks and stored.sync_failure_count == 0
