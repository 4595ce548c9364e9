"""Which queues the workers consume, and whether jobs wait on one that nobody reads.

A worker started with ``-Q short`` (or an old deployment's layout) leaves the ``sync`` queue
unread: scheduled syncs then wait there forever while the dispatcher skips their integrations
("sync already running"). Asking the workers (``celery inspect active_queues``) is a broadcast
that waits for every worker's answer; instead each worker writes the queues it consumes into
Redis every REGISTER_SECONDS (one sorted set per queue: member = node name, score = when the entry
lapses), and a reader counts the live entries and the waiting messages in one pipeline, cached
for CACHE_SECONDS per process, so ``/readyz`` and ``debug_status`` stay cheap to poll.

Only the Redis broker is watched; the embedded SQLite broker (development) reports nothing.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

logger = logging.getLogger(__name__)

KEY_PREFIX = "integration:queue-consumers:"
REGISTER_SECONDS = 15.0
# Four missed registrations: a worker that stopped is forgotten within a minute.
ENTRY_TTL_SECONDS = 60.0
CACHE_SECONDS = 10.0
# kombu's Redis transport keeps messages with a priority in sibling lists "<queue>\x06\x16<n>".
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


@dataclass(frozen=True)
class QueueState:
    waiting: int
    consumers: int

    @property
    def unconsumed(self) -> bool:
        return self.waiting > 0 and self.consumers == 0


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def redis_broker_url(celery_app: Any) -> str | None:
    url = str(celery_app.conf.broker_url or "")
    return url if url.startswith(("redis://", "rediss://", "unix://")) else None


# ------------------------------------------------------------------------- worker side


class Registration:
    """A worker's entry in the consumer sets of the queues it reads (see the module docstring)."""

    def __init__(self, url: str, node: str, queues: list[str]) -> None:
        self.node = node
        self.queues = sorted(queues)
        self._redis = _client(url)

    def refresh(self) -> None:
        lapses = time.time() + ENTRY_TTL_SECONDS
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    pipe.zadd(KEY_PREFIX + queue, {self.node: lapses})
                    pipe.expire(KEY_PREFIX + queue, int(ENTRY_TTL_SECONDS * 2))
                pipe.execute()
        except redis.RedisError:
            logger.warning("could not register this worker's queues %s", self.queues, exc_info=True)

    def withdraw(self) -> None:
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    pipe.zrem(KEY_PREFIX + queue, self.node)
                pipe.execute()
        except redis.RedisError:
            logger.warning("could not withdraw this worker's queue registration", exc_info=True)


# ------------------------------------------------------------------------- reader side

_cache: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, QueueState] | None]] = {}
_cache_lock = threading.Lock()


def read_states(url: str, queues: tuple[str, ...], now: float | None = None) -> dict[str, QueueState]:
    """Messages waiting and live consumers of each queue (one Redis pipeline, no cache)."""
    now = time.time() if now is None else now
    with _client(url).pipeline(transaction=False) as pipe:
        for queue in queues:
            for suffix in PRIORITY_SUFFIXES:
                pipe.llen(queue + suffix)
            pipe.zcount(KEY_PREFIX + queue, now, "+inf")
        answers = pipe.execute()
    per_queue = len(PRIORITY_SUFFIXES) + 1
    states = {}
    for index, queue in enumerate(queues):
        chunk = answers[index * per_queue : (index + 1) * per_queue]
        states[queue] = QueueState(waiting=int(sum(chunk[:-1])), consumers=int(chunk[-1]))
    return states


def cached_states(url: str, queues: tuple[str, ...]) -> dict[str, QueueState] | None:
    """``read_states`` at most once per CACHE_SECONDS per process; None when Redis does not answer."""
    key = (url, queues)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
    states: dict[str, QueueState] | None
    try:
        states = read_states(url, queues)
    except redis.RedisError as exc:
        # Redis away is an outage /readyz reports already (broker: false): one line, no
        # traceback, and the failure is remembered like an answer so each probe does not wait on
        # another connection attempt.
        logger.warning("could not read the queues' state: %s", exc.__class__.__name__)
        states = None
    with _cache_lock:
        _cache[key] = (now, states)
    return states


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def service_queues(celery_app: Any) -> tuple[str, ...]:
    return tuple(sorted(queue.name for queue in celery_app.conf.task_queues or ()))


def queue_of(celery_app: Any, task_name: str) -> str:
    """The queue a task is routed to (task_routes patterns, else the default queue)."""
    routes = celery_app.conf.task_routes or {}
    for pattern, route in routes.items():
        if fnmatch.fnmatchcase(task_name, pattern):
            return str(route.get("queue") or celery_app.conf.task_default_queue)
    return str(celery_app.conf.task_default_queue)


def warning(queue: str, state: QueueState) -> str:
    return (
        f"{state.waiting} job(s) wait on queue '{queue}', which no worker consumes: start a worker "
        "without -Q (it consumes every queue) or add the queue to its -Q list"
    )


def report(celery_app: Any) -> dict[str, Any] | None:
    """``{"queues": {name: {"waiting", "consumers"}}, "warnings": [...]}`` for the service's
    queues, cached; None when the broker is not Redis (or does not answer)."""
    url = redis_broker_url(celery_app)
    if url is None or celery_app.conf.task_always_eager:
        return None
    states = cached_states(url, service_queues(celery_app))
    if states is None:
        return None
    return {
        "queues": {name: {"waiting": s.waiting, "consumers": s.consumers} for name, s in states.items()},
        "warnings": [warning(name, s) for name, s in states.items() if s.unconsumed],
    }
