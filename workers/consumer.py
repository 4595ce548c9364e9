"""The worker's broker consumer: Celery's, reconnecting every few seconds after a broker outage.

Celery's consumer retries a lost broker connection with kombu's fixed back-off (2 s, 4 s, ...
up to 30 s between attempts), so a worker could notice a returned Redis 30 s late, and, with
``broker_connection_max_retries`` at its default of 100, it gave up after about 45 minutes.
This consumer caps the interval at ``BROKER_RECONNECT_INTERVAL_MAX`` (default 2 s; an attempt
is one refused TCP connection) and config.py sets the retries to unlimited, so a worker rides out
any outage and takes jobs again within seconds of the broker's return. Configured as
``worker_consumer`` (config.celery_settings).

A second fault it covers: when Redis is killed while a job runs, the job's late ack is left for
the event loop, which runs it while it closes for the reconnection; kombu's Redis channel, its
connection already gone, raises ``AttributeError`` (``'NoneType' object has no attribute
'hostname'`` in ``_connparams``) where a connection error was expected. That escaped Celery's
"Couldn't ack" handling, left the loop half-closed, and the worker never consumed again (alive,
idle, every new job stayed queued). Counting it among the connection errors makes that ack a
logged failure (the message is restored by the broker or, with Redis emptied, gone with it; the
job itself had finished) and the reconnection goes on. The same ``AttributeError`` comes out of
closing the broken connection (kombu restores the unacked messages on close), where Celery only
ignores connection errors: it ended the consumer ("Unrecoverable error"). That close is guarded
too.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

logger = logging.getLogger(__name__)


def reconnect_interval_max() -> float:
    return float(os.environ.get("BROKER_RECONNECT_INTERVAL_MAX", "2"))


class Consumer(CeleryConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read by the task strategy (acks and rejects) and the consumer's restart loop.
        errors: tuple[type[BaseException], ...] = getattr(self, "connection_errors", ())
        self.connection_errors = (*errors, AttributeError)

    def ensure_connected(self, conn: Any) -> Any:
        # Celery's own method calls conn.ensure_connection(errback, max_retries, callback=...);
        # the interval arguments it leaves to kombu's defaults are given here.
        interval = reconnect_interval_max()
        conn.ensure_connection = functools.partial(
            conn.ensure_connection, interval_start=min(1.0, interval), interval_step=1.0, interval_max=interval
        )
        return super().ensure_connected(conn)

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection = self.connection
        if connection is not None:
            close = connection.close

            def guarded_close() -> None:
                try:
                    close()
                except AttributeError as error:  # kombu's Redis channel, its connection gone
                    logger.warning("could not close the lost broker connection cleanly (%r); reconnecting", error)

            connection.close = guarded_close
        super().on_connection_error_after_connected(exc)
