"""A fixed-window rate limiter that answers the ``X-RateLimit-*`` headers from the hit itself.

Flask-Limiter's fixed window costs three Redis round trips per request when headers are on: the
hit (``INCRBY`` + ``EXPIRE``), then ``GET`` and ``TTL`` to write ``X-RateLimit-Remaining`` and
``-Reset`` after the view. The counter and its expiry are known at the hit, so this strategy
gets both in one Lua call and keeps them for the rest of the request; the limits, the keys and
the counting are the library's own (``FixedWindowRateLimiter``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import g, has_request_context
from limits import RateLimitItem
from limits.storage import RedisStorage
from limits.strategies import STRATEGIES, FixedWindowRateLimiter
from limits.util import WindowStats

STRATEGY_NAME = "fixed-window-one-trip"

# INCRBY, set the expiry on the window's first hit, and return the count with the time left.
_INCR_EXPIRE_TTL = """
local current = redis.call("incrby", KEYS[1], tonumber(ARGV[2]))
if tonumber(current) == tonumber(ARGV[2]) then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""


class OneTripFixedWindowRateLimiter(FixedWindowRateLimiter):
    """``FixedWindowRateLimiter`` whose ``get_window_stats`` after a ``hit`` in the same request
    costs no storage call (one Redis round trip per limit and request instead of three)."""

    def __init__(self, storage: Any) -> None:
        super().__init__(storage)
        self._script: Any = None
        self._prefixed_key: Callable[[str], str] | None = None
        if isinstance(storage, RedisStorage):
            self._script = storage.get_connection().register_script(_INCR_EXPIRE_TTL.encode())
            self._prefixed_key = storage.prefixed_key

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        key = item.key_for(*identifiers)
        if self._script is None or self._prefixed_key is None:
            count = self.storage.incr(key, item.get_expiry(), amount=cost)
            reset = None
        else:
            count, ttl = self._script([self._prefixed_key(key)], [item.get_expiry(), cost])
            count = int(count)
            reset = time.time() + max(int(ttl), 0)
        if has_request_context():
            g.setdefault("_ratelimit_windows", {})[key] = (count, reset)
        return count <= item.amount

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        key = item.key_for(*identifiers)
        known = g.get("_ratelimit_windows", {}).get(key) if has_request_context() else None
        if known is None:
            return super().get_window_stats(item, *identifiers)
        count, reset = known
        if reset is None:  # not Redis (memory:// in tests): the expiry is one cheap local call
            reset = self.storage.get_expiry(key)
        return WindowStats(reset, max(0, item.amount - count))


# Flask-Limiter looks strategies up by name in this registry (RATELIMIT_STRATEGY).
STRATEGIES.setdefault(STRATEGY_NAME, OneTripFixedWindowRateLimiter)  # type: ignore[arg-type]
