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
