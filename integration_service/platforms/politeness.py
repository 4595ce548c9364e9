"""Politeness to each customer site, shared by every worker on every machine.

Every request the HTTP layer sends to a site passes through a ``SiteGate`` (``gate.slot(url)``):

1. **Shared back-off.** A 429/503 with ``Retry-After`` is recorded under the site's key with that
   duration; every worker waits it out before its next request to the site.
2. **Concurrency**: at most ``WP_CONCURRENCY`` requests in flight to one site.
3. **Request budget** (optional, ``WP_REQUEST_BUDGET_PER_MINUTE``): the ``limits`` package's moving
   window (the one Flask-Limiter uses), on the same storage; taken once the slot is held.

Sites are keyed by ``host:port`` (the HTTP layer sees URLs, not integrations; two integrations
of one site share its limits, which is what the site cares about).

The concurrency limit is a counting semaphore, which neither redis-py (its ``Lock`` is a mutex)
nor ``limits`` (it counts requests per window and has no release) provides.  So it is a small
Lua semaphore over a sorted set of leases (``politeness_redis``), which also holds the site's
back-off: one script call checks the back-off and takes a slot, one pipelined round trip gives
it back, the fewest Redis commands a request can cost (a scheduled sync that finds nothing new
is one request).  A worker killed mid-request never releases, and its slot frees itself when
the lease expires (``WP_SLOT_LEASE_SECONDS``, 15 s by default); a live process renews, from one
daemon thread, the leases it has held for a third of that, so a long request keeps its slot
however slow the site is.  A waiter registers in the set and ``BLPOP``s a short wake-up list
(bounded by the earliest lease expiry and the caller's deadline), which a release pushes to
only while someone waits: waiting never polls, and not waiting costs no list command.

Without ``REDIS_URL`` (the embedded default) the same interface is served in-process
(a ``threading.Condition`` per site, ``limits``' memory storage); with it, the in-process twin
also serves while Redis is unreachable (``SiteGate``).  Every wait is bounded by
``WP_SLOT_WAIT_SECONDS``; past it the request fails as a transient ``PlatformError`` that names
the wait, so the job retries later instead of blocking a worker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import redis
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from .. import metrics
from ..redis_fallback import RedisFallback
from .base import PlatformError
from .politeness_redis import BACKOFF_WAIT, KEY_PREFIX, SLOT_WAIT, RedisSlots, WaitTimeout

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolitenessSettings:
    concurrency: int = 4
    budget_per_minute: int = 0  # 0: no budget
    wait_seconds: float = 30.0  # the longest any request waits for its turn
    lease_seconds: float = 15.0  # renewed while held: how long a killed holder's slot stays taken
    redis_url: str | None = None  # None: in-process

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PolitenessSettings:
        return cls(
            concurrency=max(1, int(config["WP_CONCURRENCY"])),
            budget_per_minute=max(0, int(config["WP_REQUEST_BUDGET_PER_MINUTE"])),
            wait_seconds=float(config["WP_SLOT_WAIT_SECONDS"]),
            lease_seconds=float(config["WP_SLOT_LEASE_SECONDS"]),
            redis_url=config.get("REDIS_URL") or None,
        )


def site_key(url: str) -> str:
    """``host:port`` of a URL, the unit every limit applies to."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"


def report_rate_limited(site_id: int | None) -> None:
    """Metrics hook, called by the HTTP layer once per rate-limiting answer (every 429, and a 503
    with Retry-After). Labelled by the site's id (``HttpSettings.site_id``, set by ``client_for``),
    not by its ``host:port`` key: a customer's host names the tenant, an id does not."""
    metrics.record_rate_limited(site_id)


class _LocalSlots:
    """The in-process twin: a counter per site under one condition (no leases: a dead process
    takes its slots with it) and the back-offs this process recorded."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._held: dict[str, int] = {}
        self._cond = threading.Condition()
        self._until: dict[str, float] = {}  # site key -> end of its back-off (monotonic)

    def acquire(self, key: str, deadline: float, sleep: Callable[[float], None]) -> str:
        self.wait_backoff(key, deadline, sleep)
        with self._cond:
            while self._held.get(key, 0) >= self._limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(SLOT_WAIT, None)
                self._cond.wait(remaining)
            self._held[key] = self._held.get(key, 0) + 1
        return key

    def release(self, key: str, token: str) -> None:
        with self._cond:
            self._held[key] -= 1
            if not self._held[key]:
                del self._held[key]
            self._cond.notify()

    def in_flight(self, key: str) -> int:
        with self._cond:
            return self._held.get(key, 0)

    def back_off(self, key: str, seconds: float) -> None:
        with self._cond:
            self._until[key] = max(self._until.get(key, 0.0), time.monotonic() + seconds)

    def backoff_remaining(self, key: str) -> float:
        with self._cond:
            return max(0.0, self._until.get(key, 0.0) - time.monotonic())

    def wait_backoff(self, key: str, deadline: float, sleep: Callable[[float], None]) -> None:
        wait = self.backoff_remaining(key)
        if wait <= 0:
            return
        if time.monotonic() + wait > deadline:
            raise WaitTimeout(BACKOFF_WAIT, wait)
        sleep(wait)


@dataclass
class _State:
    """One place the limits live: Redis (shared by every process) or this process."""

    slots: RedisSlots | _LocalSlots
    limiter: MovingWindowRateLimiter | None


class SiteGate:
    """Back-off, budget and concurrency for every site, on Redis or in-process.

    On Redis, a request that finds Redis unreachable takes its turn from this process's own
    state instead (``redis_fallback``: one WARNING per outage, counted in
    ``integration_redis_fallback_total{component="politeness"}``, Redis tried again every few
    seconds): each process then keeps its own ``WP_CONCURRENCY`` per site, laxer by the number of
    processes, and only for the outage, rather than failing every request to every site."""

    def __init__(self, settings: PolitenessSettings) -> None:
        self.settings = settings
        self._budget = (
            RateLimitItemPerMinute(settings.budget_per_minute, namespace=f"{KEY_PREFIX}:budget")
            if settings.budget_per_minute
            else None
        )
        self._local_slots = _LocalSlots(settings.concurrency)
        self._local = _State(
            self._local_slots, MovingWindowRateLimiter(storage_from_string("memory://")) if self._budget else None
        )
        self._shared: _State | None = None
        self.fallback = RedisFallback("politeness")
        if settings.redis_url:
            # Short timeouts: a hung Redis must not hold a request longer than an unreachable one.
            client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=1)
            self._shared = _State(
                RedisSlots(client, settings.concurrency, settings.lease_seconds),
                MovingWindowRateLimiter(storage_from_string(settings.redis_url)) if self._budget else None,
            )

    def _state(self) -> _State:
        if self._shared is not None and self.fallback.use_redis():
            return self._shared
        return self._local

    @contextmanager
    def slot(
        self, url: str, sleep: Callable[[float], None] = time.sleep, wait_seconds: float | None = None
    ) -> Iterator[None]:
        """Hold one of the site's request slots for the duration of the block, waiting at most
        ``wait_seconds`` (default: the settings') for it."""
        key = site_key(url)
        wait_seconds = self.settings.wait_seconds if wait_seconds is None else wait_seconds
        deadline = time.monotonic() + wait_seconds
        state = self._state()
        try:
            try:
                token = self._take_turn(state, key, deadline, wait_seconds, sleep)
            except redis.RedisError as exc:
                self.fallback.failed(exc)
                state = self._local
                token = self._take_turn(state, key, deadline, wait_seconds, sleep)
        except WaitTimeout as exc:
            raise PlatformError(
                f"{key} is busy: gave up after waiting {wait_seconds:.0f} s for {exc.what}.",
                stage="timeout",
                transient=True,
                retry_after=exc.retry_after,
            ) from None
        if state is self._local and self._shared is not None:
            self.fallback.count_fallback()
        elif state is self._shared:
            self.fallback.recovered()
        try:
            yield
        finally:
            try:
                state.slots.release(key, token)
            except redis.RedisError:  # the lease expires on its own
                logger.warning("could not release the request slot for %s", key, exc_info=True)

    def _take_turn(
        self, state: _State, key: str, deadline: float, wait_seconds: float, sleep: Callable[[float], None]
    ) -> str:
        if isinstance(state.slots, RedisSlots):
            # This process's own record counts too (a back-off recorded while Redis was away).
            local_backoff = self._local_slots.backoff_remaining(key)
            token = state.slots.acquire(key, deadline, sleep, local_backoff)
        else:
            token = state.slots.acquire(key, deadline, sleep)
        if state.limiter is not None:
            # After the slot, so a back-off is not spent against the budget; the slot is given
            # back if the budget makes the request give up.
            try:
                self._take_budget(state.limiter, key, deadline, wait_seconds, sleep)
            except BaseException:
                state.slots.release(key, token)
                raise
        return token

    def back_off(self, url: str, seconds: float, status: int) -> None:
        """Make every worker wait ``seconds`` before its next request to the site of ``url``."""
        key = site_key(url)
        self._local_slots.back_off(key, seconds)  # this process honours it even if Redis is away
        if self._shared is not None:
            try:
                self._shared.slots.back_off(key, seconds)
            except redis.RedisError as exc:
                self.fallback.failed(exc)
        logger.info("backing off %s for %.1f s after HTTP %d", key, seconds, status)

    def backoff_remaining(self, url: str) -> float:
        return self._state().slots.backoff_remaining(site_key(url))

    def in_flight(self, url: str) -> int:
        return self._state().slots.in_flight(site_key(url))

    def _take_budget(
        self,
        limiter: MovingWindowRateLimiter,
        key: str,
        deadline: float,
        wait_seconds: float,
        sleep: Callable[[float], None],
    ) -> None:
        assert self._budget is not None
        waited = 0.0  # counted too, so an injected sleep that does not pass time still ends
        while not limiter.hit(self._budget, key):
            stats = limiter.get_window_stats(self._budget, key)
            wait = max(0.01, stats.reset_time - time.time())
            if time.monotonic() + wait > deadline or waited + wait > wait_seconds:
                raise WaitTimeout("the site's request budget", wait)
            sleep(wait)
            waited += wait


_gates: dict[tuple[PolitenessSettings, int], SiteGate] = {}
_gates_lock = threading.Lock()


def gate_for(settings: PolitenessSettings) -> SiteGate:
    """The process's gate for these settings: every client in the process shares it (and, on
    Redis, every process)."""
    # Keyed by process too: a gate (its connections, its renewal thread) never crosses a fork.
    # Not by the wait: a connection test (short wait) shares the slots of the syncs in its process.
    key = (replace(settings, wait_seconds=0.0), os.getpid())
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = SiteGate(settings)
        return gate


def reset_local_state() -> None:
    """Forget the process's gates (tests: in-process back-offs must not leak between tests)."""
    with _gates_lock:
        _gates.clear()
