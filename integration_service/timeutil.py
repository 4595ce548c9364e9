"""ISO 8601 / UTC parsing and formatting, in one place. Every datetime the service keeps is
timezone-aware UTC; input may end in ``Z``, ``+00:00``, another offset, or nothing (UTC assumed,
as in WordPress's ``*_gmt`` fields)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload


@overload
def as_utc(value: datetime) -> datetime: ...


@overload
def as_utc(value: None) -> None: ...


def as_utc(value: datetime | None) -> datetime | None:
    """``value`` as aware UTC (a naive value is taken to be UTC already)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_iso(value: Any) -> datetime | None:
    """An ISO 8601 string as aware UTC; None for anything else (empty, not text, not a date)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with ``+00:00`` (what the stored watermarks and conflict records use)."""
    return None if value is None else as_utc(value).isoformat()


@overload
def iso_z(value: datetime, timespec: str = "auto") -> str: ...


@overload
def iso_z(value: None, timespec: str = "auto") -> None: ...


def iso_z(value: datetime | None, timespec: str = "auto") -> str | None:
    """ISO 8601 in UTC with ``Z`` (what WordPress and the webhook payloads use)."""
    return None if value is None else as_utc(value).isoformat(timespec=timespec).replace("+00:00", "Z")
