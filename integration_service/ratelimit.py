"""A fixed-window rate limiter that answers the ``X-RateLimit-*`` headers from the hit itself.

Flask-Limiter's fixed window costs three Redis round trips per request when headers are on: the
hit (``INCRBY`` + ``EXPIRE``), then ``GET`` and ``TTL`` to write ``X-RateLimit-Remaining`` and
``-Reset`` after the view. The counter and its expiry are known at the hit, so this strategy
gets both in one Lua call and keeps them for the rest of the request; the limits, the keys and
the counting are the library's own (``FixedWindowRateLimiter``).

While Redis is unreachable the limits are counted in this process's memory instead
(``redis_fallback.RedisFallback``: one WARNING, ``integration_redis_fallback_total
{component="ratelimit"}``, Redis tried again every ``RATELIMIT_STORAGE_RETRY_SECONDS``), so a
Redis outage never turns a request into a 500; each process then allows the full limit on its
own, which is laxer by the number of processes and only for the outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask, g, has_request_context
from limits import RateLimitItem
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import STRATEGIES, FixedWindowRateLimiter
from limits.util import WindowStats

from .redis_fallback import DEFAULT_RETRY_SECONDS, RedisFallback

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
        self._memory: MemoryStorage | None = None
        self.fallback = RedisFallback("ratelimit", DEFAULT_RETRY_SECONDS)
        if isinstance(storage, RedisStorage):
            self._script = storage.get_connection().register_script(_INCR_EXPIRE_TTL.encode())
            self._prefixed_key = storage.prefixed_key
            self._memory = MemoryStorage()

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        key = item.key_for(*identifiers)
        reset: float | None = None
        if self._script is None or self._prefixed_key is None or self._memory is None:
            count = self.storage.incr(key, item.get_expiry(), amount=cost)
        elif self._use_redis():
            try:
                count, ttl = self._script([self._prefixed_key(key)], [item.get_expiry(), cost])
            except (redis.RedisError, OSError) as exc:
                self.fallback.failed(exc)
                count, reset = self._memory_hit(key, item, cost)
            else:
                self.fallback.recovered()
                count = int(count)
                reset = time.time() + max(int(ttl), 0)
        else:
            count, reset = self._memory_hit(key, item, cost)
        if has_request_context():
            g.setdefault("_ratelimit_windows", {})[key] = (count, reset)
        return count <= item.amount

    def _use_redis(self) -> bool:
        return self.fallback.use_redis()

    def _memory_hit(self, key: str, item: RateLimitItem, cost: int) -> tuple[int, float]:
        assert self._memory is not None
        self.fallback.count_fallback()
        count = self._memory.incr(key, item.get_expiry(), amount=cost)
        return count, self._memory.get_expiry(key)

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        key = item.key_for(*identifiers)
        known = g.get("_ratelimit_windows", {}).get(key) if has_request_context() else None
        if known is None:
            return super().get_window_stats(item, *identifiers)
        count, reset = known
        if reset is None:  # not Redis (memory:// in tests): the expiry is one cheap local call
            reset = self.storage.get_expiry(key)
        return WindowStats(reset, max(0, item.amount - count))


def configure_fallback(strategy: Any, app: Flask) -> None:
    """Apply the app's RATELIMIT_STORAGE_RETRY_SECONDS to the limiter's strategy (``limiter.limiter``
    after ``init_app``)."""
    if isinstance(strategy, OneTripFixedWindowRateLimiter):
        strategy.fallback.retry_seconds = float(app.config["RATELIMIT_STORAGE_RETRY_SECONDS"])


# Flask-Limiter looks strategies up by name in this registry (RATELIMIT_STRATEGY).
STRATEGIES.setdefault(STRATEGY_NAME, OneTripFixedWindowRateLimiter)  # type: ignore[arg-type]
