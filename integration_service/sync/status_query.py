"""The read behind ``sync_status``: the current job and the latest events in one statement.

Part of the request side (``requests.SyncService.sync_status``).

A dashboard polls this every few seconds per integration, so it is one round trip, read as
plain rows (no ORM identity map or attribute instrumentation: nothing here is modified).
Both branches use an index: the unique ``sync_lock`` and ``(integration_id, id)``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, false, literal_column, true, union_all

from ..extensions import db
from ..models import SyncEvent


def current_and_recent(integration_id: int, limit: int) -> tuple[Row[Any] | None, list[Row[Any]]]:
    """(the event holding the integration's sync lock, or None; its ``limit`` latest events,
    newest first). Rows have the SyncEvent column names as attributes."""
    columns = list(SyncEvent.__table__.c)
    current = db.select(*columns, true().label("is_current")).where(SyncEvent.sync_lock == integration_id)
    latest = (
        db.select(*columns, false().label("is_current"))
        .where(SyncEvent.integration_id == integration_id)
        .order_by(SyncEvent.id.desc())
        .limit(limit)
        .subquery()
    )
    statement = union_all(current, db.select(latest)).order_by(
        literal_column("is_current").desc(), literal_column("id").desc()
    )
    rows = db.session.execute(statement).all()
    found = next((row for row in rows if row.is_current), None)
    return found, [row for row in rows if not row.is_current]
