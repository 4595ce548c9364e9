"""A transient error's retry that the broker cannot take (issue 12 section 6): the task retries
in its own process instead of leaving the job queued, holding the integration's lock."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from celery.exceptions import Reject, Retry

from integration_service.sync import runner, tasks


class FakeTask:
    def __init__(self, broker_up: bool) -> None:
        self.request = SimpleNamespace(retries=0, id="task-1", is_eager=False)
        self.broker_up = broker_up
        self.retried: list[float] = []

    def retry(self, countdown: float, max_retries: None) -> Retry:
        self.retried.append(countdown)
        if not self.broker_up:
            raise Reject(ConnectionError("broker down"), requeue=False)
        raise Retry()


@pytest.fixture
def runs(app, monkeypatch):
    calls: list[int] = []
    sleeps: list[float] = []

    def run(job_class, event_id, task_id, retries, max_retries):
        calls.append(retries)
        if len(calls) < 3:
            raise runner.RetryLater(0.25, "HTTP 503")
        return {"status": "success"}

    monkeypatch.setattr(runner, "run", run)
    monkeypatch.setattr(tasks.time, "sleep", sleeps.append)
    return calls, sleeps


def test_retry_runs_in_process_when_the_broker_refuses_it(app, runs):
    calls, sleeps = runs
    task = FakeTask(broker_up=False)
    with app.app_context():
        assert tasks._with_retries(task, runner.SyncJob, 7) == {"status": "success"}
    assert calls == [0, 1, 2]  # each attempt counted, so SYNC_MAX_RETRIES still bounds them
    assert sleeps == [0.25, 0.25] and task.retried == [0.25, 0.25]


def test_retry_goes_through_the_broker_when_it_is_up(app, runs):
    calls, sleeps = runs
    task = FakeTask(broker_up=True)
    with app.app_context(), pytest.raises(Retry):
        tasks._with_retries(task, runner.SyncJob, 7)
    assert calls == [0] and sleeps == []


def _lost_connection() -> Exception:
    from sqlalchemy.exc import OperationalError

    return OperationalError("UPDATE sync_events ...", {}, Exception("terminating connection"))


def test_a_claim_rides_out_a_database_restart(app, monkeypatch):
    """A PostgreSQL restart while a slice or a resumed job claims itself: the claim is retried in
    the task (a task failing there would be acked and lost, its job left queued holding the lock)."""
    from integration_service.sync import jobs

    attempts: list[int] = []
    sleeps: list[float] = []

    def claim(event_id, task_id, commit=True):
        attempts.append(event_id)
        if len(attempts) < 3:
            raise _lost_connection()
        return None  # claimable no more: the run skips

    monkeypatch.setattr(jobs, "claim", claim)
    monkeypatch.setattr(runner.time, "sleep", sleeps.append)
    with app.app_context():
        assert runner.run(runner.SyncJob, 7, "task-1") == {"status": "skipped"}
    assert len(attempts) == 3 and sleeps == [1, 2]


def test_a_claim_that_keeps_failing_is_retried_through_the_task(app, monkeypatch):
    from integration_service.sync import jobs

    def claim(event_id, task_id, commit=True):
        raise _lost_connection()

    monkeypatch.setattr(jobs, "claim", claim)
    monkeypatch.setattr(runner.time, "sleep", lambda seconds: None)
    with app.app_context(), pytest.raises(runner.RetryLater):
        runner.run(runner.SyncJob, 7, "task-1")
