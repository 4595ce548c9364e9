"""The read behind ``sync_status``: the current job and the latest events in one statement.

Part of the request side (``requests.SyncService.sync_status``).

A dashboard polls this every few seconds per integration, so it is one round trip, read as
plain rows (no ORM identity map or attribute instrumentation: nothing here is modified).
Both branches use an index: the unique ``sync_lock`` and ``(integration_id, id)``.

The statement is a Core statement on the table's columns, built once per ``limit`` and reused
with the integration id as a bound parameter: building it per poll (and computing its cache
key, which SQLAlchemy memoizes on the statement object) was most of the poll's Python time.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import BindParameter, Row, bindparam, false, literal_column, true, union_all
from sqlalchemy.sql import Executable

from ..extensions import db, execute_core
from ..models import SyncEvent

_UNREAD = frozenset({"checkpoint", "claim_token"})


@cache
def _statement(limit: int) -> Executable:
    table = SyncEvent.__table__
    # A poll reads up to 11 events: not their checkpoints (a pull's position, watermarks and
    # counts) nor claim tokens, which no response carries.
    columns = [column for column in table.c if column.name not in _UNREAD]
    integration_id: BindParameter[int] = bindparam("integration_id")
    current = db.select(*columns, true().label("is_current")).where(table.c.sync_lock == integration_id)
    latest = (
        db.select(*columns, false().label("is_current"))
        .where(table.c.integration_id == integration_id)
        .order_by(table.c.id.desc())
        .limit(limit)
        .subquery()
    )
    return union_all(current, db.select(latest)).order_by(
        literal_column("is_current").desc(), literal_column("id").desc()
    )


def current_and_recent(integration_id: int, limit: int) -> tuple[Row[Any] | None, list[Row[Any]]]:
    """(the event holding the integration's sync lock, or None; its ``limit`` latest events,
    newest first). Rows have the SyncEvent column names as attributes."""
    rows = execute_core(_statement(limit), {"integration_id": integration_id}).all()
    found = next((row for row in rows if row.is_current), None)
    return found, [row for row in rows if not row.is_current]
