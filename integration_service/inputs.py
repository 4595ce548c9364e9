"""Guards against input the database or the parser cannot take, each applied in one place:

* ``DB_ID_MAX`` and ``id_in_range``: every id column is a 32-bit ``INTEGER``; a larger value
  cannot name a row, and sent to PostgreSQL it is an error, not "no row";
* ``IdConverter`` (the ``<id:...>`` URL converter): a path id is canonical, ASCII digits
  without leading zeros, within range; anything else (``01``, ``+1``, ``١``, an out-of-range
  number) does not match the route, so it is a 404 like any id that does not exist;
* ``reject_encoded_ids``: a path id sent percent-encoded (``%31``, ``%2F1``) is a 404 too;
* ``unstorable_text``: NUL and lone surrogates, which PostgreSQL text and UTF-8 cannot hold
  (the schemas refuse them, see ``schemas.common.InputSchema``).

The marshmallow field types built on these are in ``schemas/common.py``; the JSON depth bound
is in ``serialization.py`` (the app's one JSON provider).
"""

from __future__ import annotations

import re
from typing import Any

from flask import abort, request
from werkzeug.routing import IntegerConverter

# The range of PostgreSQL's INTEGER, the type of every id column (models.py).
DB_INT_MAX = 2**31 - 1
DB_ID_MAX = DB_INT_MAX

_SURROGATE = re.compile("[\ud800-\udfff]")


def id_in_range(value: int) -> bool:
    return 1 <= value <= DB_ID_MAX


class IdConverter(IntegerConverter):
    """``<id:name>``: a positive integer that fits the id columns, written canonically; anything
    else is a 404."""

    # werkzeug's default is ``\d+``: leading zeros, and any Unicode digit (int() reads them).
    regex = r"[1-9][0-9]{0,9}"

    def __init__(self, map: Any) -> None:
        super().__init__(map, min=1, max=DB_ID_MAX)


def reject_encoded_ids() -> None:
    """``before_request``: a route with an id answers 404 when its path was sent with
    percent-encoded characters. The converter sees the decoded path (``%31`` is ``1`` there),
    so this looks at the request line as sent (``RAW_URI``: gunicorn, werkzeug)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw or "%" not in raw.split("?", 1)[0]:
        return
    rule = request.url_rule
    converters = getattr(rule, "_converters", None) or {}
    if any(isinstance(converter, IdConverter) for converter in converters.values()):
        abort(404)


def id_converter_schema(converter: IdConverter) -> dict[str, Any]:
    """The OpenAPI schema of an ``<id:...>`` path parameter."""
    return {"type": "integer", "minimum": 1, "maximum": DB_ID_MAX}


def unstorable_text(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can."""
    if "\x00" in value:
        return "NUL characters are not allowed."
    if not value.isascii() and _SURROGATE.search(value):
        return "Lone UTF-16 surrogates are not allowed (send valid Unicode)."
    return None


def find_unstorable_text(value: Any) -> str | None:
    """The first reason a string in ``value`` (keys included, at any depth) cannot be stored."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = unstorable_text(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return None
