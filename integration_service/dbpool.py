"""Dead pooled database connections are replaced before use, without a round trip.

After PostgreSQL restarts (or a proxy drops idle connections) every connection idle in a pool is
dead, and the first statement on each one fails. ``pool_pre_ping`` would catch that at the cost
of a ``SELECT 1`` round trip on every checkout (every request, every job step). A connection idle
in the pool has nothing to read: every answer was read to its end before it was checked in. A
server that closed it has left an end-of-file (and usually a FATAL ``terminating connection``
message) on its socket, so the socket polls readable. One non-blocking ``poll()`` of the socket
at checkout (a system call, about a microsecond; ``bench/pool_checkout.py``) finds such a
connection, and SQLAlchemy's documented checkout recipe (raise ``DisconnectionError``) replaces
it with a fresh one before the request uses it.

What this cannot see: a connection whose peer vanished without closing (a partitioned network,
no FIN). That request fails like any lost connection, as a retryable 503 (errors.py); ``pool_recycle``
bounds how old a pooled connection gets. Drivers without a socket (SQLite) are not checked.
"""

from __future__ import annotations

import logging
import select
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

_READABLE = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP


def connection_is_dead(dbapi_connection: Any) -> bool:
    """True when an idle DB-API connection (psycopg) was closed by its server or is broken."""
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:
        return False  # no socket (sqlite3)
    if getattr(dbapi_connection, "closed", False) or getattr(dbapi_connection, "broken", False):
        return True
    try:
        fd = fileno()
    except Exception:  # noqa: BLE001 - psycopg raises once the connection is closed
        return True
    poller = select.poll()
    poller.register(fd, _READABLE)
    return bool(poller.poll(0))


def _check_on_checkout(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    if connection_is_dead(dbapi_connection):
        logger.info("a pooled database connection was closed by the server; replacing it before use")
        raise exc.DisconnectionError("the pooled connection was closed by the server")


def install(engine: Engine) -> None:
    """Check every connection ``engine`` hands out (idempotent)."""
    if not event.contains(engine.pool, "checkout", _check_on_checkout):
        event.listen(engine.pool, "checkout", _check_on_checkout)
