"""The app's one JSON provider (``app.json``): ISO 8601 UTC dates out, a depth bound in.

* Writing: schemas dump their DateTime fields as ISO 8601 already; ``default`` covers any
  datetime that reaches ``jsonify`` another way (a plain dict, a ``fields.Dict``), which Flask's
  default provider would write as an RFC 1123 HTTP date (``Wed, 02 Dec 2026 13:53:39 GMT``). The
  format is ``timeutil.iso`` (``+00:00``), the one marshmallow's DateTime field dumps for aware
  values.
* Reading: JSON bodies nested deeper than ``JSON_MAX_DEPTH`` are refused when they are parsed
  (``request.get_json``, the schemas' parser in ``api/base.py`` and the webhooks all parse
  through ``app.json``), instead of overflowing the interpreter's recursion limit. A JSON error
  is a ValueError, which ``request.get_json`` turns into a 400.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from flask.json.provider import DefaultJSONProvider

from .timeutil import iso


class JSONTooDeep(ValueError):
    """A JSON document nested deeper than the configured limit."""


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class ServiceJSONProvider(DefaultJSONProvider):
    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return iso(o)
        if isinstance(o, date):
            return o.isoformat()
        return DefaultJSONProvider.default(o)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        limit = int(self._app.config["JSON_MAX_DEPTH"])
        too_deep = JSONTooDeep(f"The JSON document is nested too deeply ({limit} levels at most).")
        try:
            value = json.loads(s, **kwargs)
        except RecursionError as exc:
            raise too_deep from exc
        if not isinstance(value, (dict, list)):
            return value
        # Fewer brackets than the limit cannot nest deeper than it: skip the walk (the usual case).
        opening = ("[", "{") if isinstance(s, str) else (b"[", b"{")
        if s.count(opening[0]) + s.count(opening[1]) > limit and _deeper_than(value, limit):  # type: ignore[arg-type]
            raise too_deep
        return value
