"""Worker process hooks: a periodic stuck-job sweep in every worker, and fork safety for the
database connection pool."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import bootsteps, current_app
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

from integration_service.sync import queues

logger = logging.getLogger(__name__)

SWEEP_TASK = "integration.recover_stuck_jobs"
PRUNE_TASK = "integration.prune_webhook_deliveries"


@event.listens_for(Engine, "connect")
def _remember_pid(dbapi_connection: Any, connection_record: Any) -> None:
    connection_record.info["pid"] = os.getpid()


@event.listens_for(Engine, "checkout")
def _refuse_foreign_connection(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    # Prefork children inherit the parent's pooled connections; using one from two processes
    # corrupts it. Drop it and let the pool connect anew (SQLAlchemy's documented recipe).
    pid = os.getpid()
    if connection_record.info.get("pid") != pid:
        connection_record.dbapi_connection = connection_proxy.dbapi_connection = None
        raise exc.DisconnectionError(f"connection of pid {connection_record.info.get('pid')} checked out in pid {pid}")


class StuckJobSweep(bootsteps.StartStopStep):
    """Every SYNC_RECOVERY_INTERVAL_SECONDS the worker enqueues ``integration.recover_stuck_jobs``
    on the short queue (one run at start too), so a job whose worker died is failed even when no
    new sync is requested; every WEBHOOK_PRUNE_INTERVAL_SECONDS it enqueues
    ``integration.prune_webhook_deliveries``. The main process only publishes; a pool process
    does the database work."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.trefs: list[Any] = []
        config = worker.app.flask_app.config
        self.schedule = {
            SWEEP_TASK: float(config["SYNC_RECOVERY_INTERVAL_SECONDS"]),
            PRUNE_TASK: float(config["WEBHOOK_PRUNE_INTERVAL_SECONDS"]),
        }

    def start(self, worker: Any) -> None:
        for task_name, interval in self.schedule.items():
            if interval <= 0 or task_name not in worker.app.tasks:
                continue  # switched off (e.g. celery beat schedules the task instead)
            self._enqueue(worker, task_name, interval)
            self.trefs.append(
                worker.timer.call_repeatedly(interval, self._enqueue, (worker, task_name, interval), priority=10)
            )

    def stop(self, worker: Any) -> None:
        for tref in self.trefs:
            tref.cancel()
        self.trefs = []

    def _enqueue(self, worker: Any, task_name: str, interval: float) -> None:
        try:
            # Expires with the next run: a backlog of sweeps is pointless.
            worker.app.tasks[task_name].apply_async(queue="short", expires=max(interval, 1.0))
        except Exception:
            logger.warning("could not enqueue %s", task_name, exc_info=True)


class QueueRegistration(bootsteps.StartStopStep):
    """Writes the queues this worker consumes into Redis every ``queues.REGISTER_SECONDS`` (and
    withdraws them at shutdown), so ``/readyz`` and ``debug_status`` can say when jobs wait on a
    queue no worker reads, without a broadcast (``integration_service.sync.queues``)."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None
        self.registration: queues.Registration | None = None

    def start(self, worker: Any) -> None:
        url = queues.redis_broker_url(worker.app)
        if url is None:
            return
        consumed = list(worker.app.amqp.queues.consume_from)
        self.registration = queues.Registration(url, worker.hostname, consumed)
        logger.info("worker %s consumes the queues %s", worker.hostname, ", ".join(sorted(consumed)))
        self.registration.refresh()
        self.tref = worker.timer.call_repeatedly(queues.REGISTER_SECONDS, self.registration.refresh, priority=10)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        if self.registration is not None:
            self.registration.withdraw()
            self.registration = None


def register(celery_app: Any) -> None:
    """Add the sweep and the queue registration to a Celery app's worker (idempotent)."""
    steps = celery_app.steps["worker"]
    for step in (StuckJobSweep, QueueRegistration):
        if step not in steps:
            steps.add(step)


register(current_app)
