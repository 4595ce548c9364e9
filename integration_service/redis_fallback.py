"""When Redis is away: one process's view of whether a Redis-backed component may use Redis.

The components that keep shared state in Redis on a request path (the rate limiter, the
politeness gate) must not fail while Redis is unreachable: they fall back to their in-process
twin. ``RedisFallback`` is the switch between the two, one per component and process:

* ``use_redis()`` says whether to try Redis now: always while it answers; after a failure only
  once every ``retry_seconds`` (one caller probes, the others stay on the fallback), so an outage
  costs each request nothing but a flag check, and Redis is used again within ``retry_seconds``
  of its return;
* ``failed(exc)`` switches to the fallback (one WARNING per outage, not one per request);
* ``recovered()`` switches back (one INFO);
* ``count_fallback()`` counts one operation served by the fallback in
  ``integration_redis_fallback_total{component}`` (summed in the process and sent when Redis
  answers again, see ``metrics``).
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger(__name__)

DEFAULT_RETRY_SECONDS = 5.0


class RedisFallback:
    def __init__(self, component: str, retry_seconds: float = DEFAULT_RETRY_SECONDS) -> None:
        self.component = component
        self.retry_seconds = retry_seconds
        self._down = False
        self._next_probe = 0.0
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self._down

    def use_redis(self) -> bool:
        if not self._down:
            return True
        now = time.monotonic()
        with self._lock:
            if now < self._next_probe:
                return False
            self._next_probe = now + self.retry_seconds  # this caller probes; the others wait
            return True

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            was_down, self._down = self._down, True
            self._next_probe = time.monotonic() + self.retry_seconds
        if not was_down:
            logger.warning(
                "%s: Redis is unreachable (%s); using in-process state until it answers (checked every %.0f s)",
                self.component,
                type(exc).__name__,
                self.retry_seconds,
            )

    def recovered(self) -> None:
        if not self._down:
            return
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            logger.info("%s: Redis answers again; shared state in Redis resumed", self.component)

    def count_fallback(self) -> None:
        from . import metrics

        metrics.record_redis_fallback(self.component)
