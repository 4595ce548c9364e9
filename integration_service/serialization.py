"""JSON for every response: dates as ISO 8601 in UTC.

Schemas dump their DateTime fields as ISO 8601 already; this provider covers any datetime that
reaches ``jsonify`` another way (a plain dict, a ``fields.Dict``), which Flask's default provider
would write as an RFC 1123 HTTP date (``Wed, 02 Dec 2026 13:53:39 GMT``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from flask.json.provider import DefaultJSONProvider


def iso_utc(value: datetime) -> str:
    """``2026-12-02T13:53:39.123456+00:00``, the form marshmallow's DateTime field dumps."""
    if value.tzinfo is None:  # the models store UTC; a naive value is UTC too
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


class IsoJSONProvider(DefaultJSONProvider):
    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return iso_utc(o)
        if isinstance(o, date):
            return o.isoformat()
        return DefaultJSONProvider.default(o)
