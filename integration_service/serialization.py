"""JSON for every response: dates as ISO 8601 in UTC.

Schemas dump their DateTime fields as ISO 8601 already; this provider covers any datetime that
reaches ``jsonify`` another way (a plain dict, a ``fields.Dict``), which Flask's default provider
would write as an RFC 1123 HTTP date (``Wed, 02 Dec 2026 13:53:39 GMT``). The format is
``timeutil.iso`` (``+00:00``), the one marshmallow's DateTime field dumps for aware values.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask.json.provider import DefaultJSONProvider

from .timeutil import iso


class IsoJSONProvider(DefaultJSONProvider):
    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return iso(o)
        if isinstance(o, date):
            return o.isoformat()
        return DefaultJSONProvider.default(o)
