"""Prometheus metrics for ``GET /metrics`` (text format, rendered by ``prometheus_client``).

Where the values live, so that every web and worker process on every machine is counted:

- **In the database, read at scrape time** by a custom collector: jobs by state (queued and
  running SyncEvents, a partial index keeps it cheap) and the scheduler's due backlog. The sync
  package owns those queries (``sync.gauges``) and registers them here
  (``register_scrape_families``, called by ``create_app``).
- **In Redis** (METRICS_REDIS_URL, default REDIS_URL): counters and histogram buckets that
  workers and web processes increment (HINCRBYFLOAT). What is counted per job or per request
  (job durations, scheduler lag, dispatches, webhook deliveries) is summed in the process and
  sent in one pipeline at most every METRICS_FLUSH_SECONDS (``RedisStore.increment_soon``): a
  scheduled sync that finds nothing new costs a few Redis commands in all, and its metrics
  would otherwise be a third of them. A histogram stores its buckets and sum only (its count is
  its +Inf bucket), and jobs finished are the job-duration histogram's count. The scrape
  reads them back, so one scrape of any web process sees the whole fleet; there is no per-process
  state to merge and nothing to clean when a process dies (prometheus_client's multiprocess mode
  would need a shared directory per machine and a scrape of every machine). Without Redis (the
  embedded development default) the values are kept in the process that records them.

Labels carry ids and fixed vocabularies only (site ids, job states, outcomes), never names.
A failure to record a metric is logged and never breaks the request or job that records it.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from flask import Flask, current_app, has_app_context
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

logger = logging.getLogger(__name__)

KEY_PREFIX = "integration-service:metrics:"
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900)


@dataclass(frozen=True)
class Definition:
    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None  # set for histograms


JOBS_FINISHED = Definition(
    "integration_sync_jobs_finished", "Sync jobs finished, by trigger and final status.", ("trigger", "status")
)
JOB_DURATION = Definition(
    "integration_sync_job_duration_seconds",
    "Duration of sync jobs from start to final state.",
    ("trigger", "status"),
    DURATION_BUCKETS,
)
SCHEDULER_LAG = Definition(
    "integration_scheduler_lag_seconds", "Scheduled syncs: from due (next_sync_at) to started.", (), LAG_BUCKETS
)
DISPATCHED = Definition(
    "integration_scheduler_dispatched", "Scheduled syncs enqueued by the dispatcher, by kind.", ("kind",)
)
DISPATCH_SKIPPED = Definition(
    "integration_scheduler_skipped_locked", "Due integrations skipped because a sync already held the lock."
)
RATE_LIMITED = Definition(
    "integration_site_rate_limited", "429 and 503 answers received from a customer site, by site id.", ("site_id",)
)
WEBHOOK_DELIVERIES = Definition(
    "integration_webhook_deliveries", "WordPress webhook deliveries received, by kind and outcome.", ("kind", "outcome")
)
REDIS_FALLBACK = Definition(
    "integration_redis_fallback",
    "Operations served by in-process state because Redis was unreachable, by component.",
    ("component",),
)
RECORDED = (
    JOBS_FINISHED,  # not stored: the count of JOB_DURATION (``_finished_from_durations``)
    JOB_DURATION,
    SCHEDULER_LAG,
    DISPATCHED,
    DISPATCH_SKIPPED,
    RATE_LIMITED,
    WEBHOOK_DELIVERIES,
    REDIS_FALLBACK,
)
STORED = tuple(definition for definition in RECORDED if definition is not JOBS_FINISHED)


# ------------------------------------------------------------------------------ storage


class MemoryStore:
    """One process's values (development without Redis, and the unit tests)."""

    def __init__(self) -> None:
        self._values: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._lock = threading.Lock()

    def increment(self, increments: list[tuple[str, str, float]]) -> None:
        with self._lock:
            for key, field, amount in increments:
                self._values[key][field] += amount

    def read(self, keys: list[str]) -> list[dict[str, float]]:
        with self._lock:
            return [dict(self._values.get(key, {})) for key in keys]

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


class RedisStore:
    def __init__(self, url: str, flush_seconds: float = 1.0) -> None:
        import redis

        # Short timeouts: a slow Redis must not stall a job for its metrics.
        self.client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.flush_seconds = flush_seconds
        self._pending: dict[tuple[str, str], float] = {}
        self._pending_lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._failing = False  # one warning per outage, not one per flush

    def increment_soon(self, increments: list[tuple[str, str, float]]) -> None:
        """Add to this process's pending sums, sent in one pipeline within ``flush_seconds``
        (by a timer thread; a scrape served by this process, and its exit, flush first).

        For counters on the request path: one webhook delivery recorded its outcome with a Redis
        round trip of its own, a twentieth of its CPU. What a process killed with SIGKILL had
        not sent yet (at most ``flush_seconds`` of counts) is lost, as in-process counters are.
        """
        with self._pending_lock:
            for key, field, amount in increments:
                self._pending[(key, field)] = self._pending.get((key, field), 0.0) + amount
            if self._timer is None:
                self._timer = threading.Timer(self.flush_seconds, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, {}
            timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        if not pending:
            return
        try:
            self.increment([(key, field, amount) for (key, field), amount in pending.items()])
        except Exception as exc:  # noqa: BLE001 - kept for the next flush, never raised to the caller
            self.send_failed(exc)
            self.increment_soon([(key, field, amount) for (key, field), amount in pending.items()])
        else:
            self.send_succeeded()

    def send_failed(self, exc: BaseException) -> None:
        # While Redis is away the sums stay in the process (bounded: one per label set) and are
        # sent once it answers; saying so every second would flood the log.
        if not self._failing:
            self._failing = True
            logger.warning(
                "could not send metrics to Redis (%s); kept in the process until it answers", type(exc).__name__
            )

    def send_succeeded(self) -> None:
        if self._failing:
            self._failing = False
            logger.info("metrics: Redis answers again; the counts kept meanwhile were sent")

    def forget_pending(self) -> None:
        """In a forked child: the parent's sums are the parent's to send (and its timer thread
        does not exist here)."""
        self._pending = {}
        self._pending_lock = threading.Lock()
        self._timer = None

    def increment(self, increments: list[tuple[str, str, float]]) -> None:
        if len(increments) == 1:  # a counter (every webhook delivery): one command, no pipeline object
            self.client.hincrbyfloat(*increments[0])
            return
        pipeline = self.client.pipeline(transaction=False)
        for key, field, amount in increments:
            pipeline.hincrbyfloat(key, field, amount)
        pipeline.execute()

    def read(self, keys: list[str]) -> list[dict[str, float]]:
        self.flush()  # this process's own pending counts are in what it serves
        pipeline = self.client.pipeline(transaction=False)
        for key in keys:
            pipeline.hgetall(key)
        return [{field.decode(): float(value) for field, value in raw.items()} for raw in pipeline.execute()]

    def clear(self) -> None:
        with self._pending_lock:
            self._pending = {}
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        # JOBS_FINISHED too: processes of an earlier version stored it.
        self.client.delete(*[KEY_PREFIX + definition.name for definition in RECORDED])


_memory_store = MemoryStore()
_redis_stores: dict[str, RedisStore] = {}
_stores_lock = threading.Lock()


def store(app: Flask | None = None) -> MemoryStore | RedisStore:
    config = (app or current_app).config
    url = config.get("METRICS_REDIS_URL")
    if not url:
        return _memory_store
    with _stores_lock:
        if url not in _redis_stores:
            _redis_stores[url] = RedisStore(url, float(config.get("METRICS_FLUSH_SECONDS", 1.0)))
        return _redis_stores[url]


def flush_pending() -> None:
    for redis_store in list(_redis_stores.values()):
        redis_store.flush()


def _forget_pending_after_fork() -> None:
    for redis_store in _redis_stores.values():
        redis_store.forget_pending()


atexit.register(flush_pending)  # a worker's graceful exit sends what it summed
os.register_at_fork(after_in_child=_forget_pending_after_fork)


# ------------------------------------------------------------------------------ recording


def _field(labels: tuple[str, ...]) -> str:
    return json.dumps(list(labels))


def _record(increments: list[tuple[str, str, float]]) -> None:
    if not has_app_context():
        return
    target = store()
    try:
        target.increment(increments)
    except Exception as exc:  # noqa: BLE001 - metrics must never break the caller
        if isinstance(target, RedisStore):  # Redis is away: keep the counts, sent when it is back
            target.send_failed(exc)
            target.increment_soon(increments)
        else:
            logger.warning("could not record metrics (%s)", type(exc).__name__)


def _inc(definition: Definition, *labels: str, amount: float = 1) -> None:
    _record([(KEY_PREFIX + definition.name, _field(labels), amount)])


def _record_soon(increments: list[tuple[str, str, float]]) -> None:
    """``_record`` without a round trip now (``RedisStore.increment_soon``)."""
    if not has_app_context():
        return
    target = store()
    if isinstance(target, RedisStore):
        target.increment_soon(increments)
    else:
        target.increment(increments)


def _inc_soon(definition: Definition, *labels: str, amount: float = 1) -> None:
    _record_soon([(KEY_PREFIX + definition.name, _field(labels), amount)])


def _observe_soon(definition: Definition, value: float, *labels: str) -> None:
    """One observation of a histogram: its bucket and its sum (the count is the +Inf bucket,
    which prometheus_client derives from the buckets)."""
    assert definition.buckets is not None
    bucket = next((index for index, bound in enumerate(definition.buckets) if value <= bound), len(definition.buckets))
    key, field = KEY_PREFIX + definition.name, _field(labels)
    _record_soon([(key, f"{field}|b{bucket}", 1), (key, f"{field}|sum", value)])


def record_rate_limited(site_id: int | None) -> None:
    """A customer site answered 429 (or 503 with Retry-After): the HTTP layer calls this
    (``platforms.politeness.report_rate_limited``). A client built without ``client_for`` (a
    bench, a test) has no site id: counted under ``unknown``."""
    _inc(RATE_LIMITED, "unknown" if site_id is None else str(int(site_id)))


def record_webhook_delivery(kind: str, outcome: str) -> None:
    _inc_soon(WEBHOOK_DELIVERIES, kind, outcome)


def record_redis_fallback(component: str) -> None:
    """One operation (a rate-limit check, a politeness slot) served in-process while Redis was
    unreachable (``redis_fallback``); summed in the process and sent once Redis answers."""
    _inc_soon(REDIS_FALLBACK, component)


def observe_job(trigger: str, status: str, duration_seconds: float) -> None:
    """A job finished (counted in ``integration_sync_jobs_finished`` too: see ``RECORDED``)."""
    _observe_soon(JOB_DURATION, max(0.0, duration_seconds), trigger, status)


def observe_scheduler_lag(seconds: float) -> None:
    _observe_soon(SCHEDULER_LAG, max(0.0, seconds))


def record_dispatched(kind: str, count: int = 1) -> None:
    _inc_soon(DISPATCHED, kind, amount=count)


def record_dispatch_skipped(count: int) -> None:
    _inc_soon(DISPATCH_SKIPPED, amount=count)


# ------------------------------------------------------------------------------ exposition


def _recorded_families(values: dict[str, float], definition: Definition) -> Metric:
    if definition.buckets is None:
        counter = CounterMetricFamily(definition.name, definition.documentation, labels=definition.labels)
        for field, value in sorted(values.items()):
            counter.add_metric(json.loads(field), value)
        return counter
    family = HistogramMetricFamily(definition.name, definition.documentation, labels=definition.labels)
    series = sorted({field.rsplit("|", 1)[0] for field in values})
    bounds = [*(str(float(bound)) for bound in definition.buckets), "+Inf"]
    for labels in series:
        cumulative, buckets = 0.0, list[tuple[str, float]]()
        for index, bound in enumerate(bounds):
            cumulative += values.get(f"{labels}|b{index}", 0.0)
            buckets.append((bound, cumulative))
        family.add_metric(json.loads(labels), buckets, values.get(f"{labels}|sum", 0.0))
    return family


# Families read at scrape time by the packages that own the data (the sync package registers
# the jobs-by-state and due-backlog gauges, ``sync.gauges``): this module reads no table itself,
# so it stays below the code that records into it.
ScrapeFamilies = Callable[[], Iterable[Metric]]
_scrape_families: list[ScrapeFamilies] = []


def register_scrape_families(families: ScrapeFamilies) -> None:
    """Add a source of families read at every scrape (once per function; ``create_app`` may run
    many times in one process)."""
    if families not in _scrape_families:
        _scrape_families.append(families)


def _store_up(up: bool) -> Metric:
    return GaugeMetricFamily(
        "integration_metrics_store_up",
        "1 when the recorded counters could be read from their store (Redis), 0 while it is unreachable.",
        value=1 if up else 0,
    )


class ServiceCollector:
    """Reads everything at scrape time (inside the request's app context)."""

    def collect(self) -> Iterator[Metric]:
        for families in list(_scrape_families):
            yield from families()
        keys = [KEY_PREFIX + definition.name for definition in STORED]
        try:
            snapshots = dict(zip(STORED, store().read(keys), strict=True))
        except Exception as exc:  # noqa: BLE001 - the database metrics are still worth serving
            logger.warning("could not read the recorded metrics (%s)", type(exc).__name__)
            yield _store_up(False)
            return
        yield _store_up(True)
        snapshots[JOBS_FINISHED] = _finished_from_durations(snapshots[JOB_DURATION])
        for definition in RECORDED:
            yield _recorded_families(snapshots[definition], definition)


def _finished_from_durations(durations: dict[str, float]) -> dict[str, float]:
    """Jobs finished by labels: every finished job is one observation of its duration, in one
    bucket (so the same figure whichever version of the service recorded it)."""
    finished: dict[str, float] = defaultdict(float)
    for field, value in durations.items():
        labels, _, part = field.rpartition("|")
        if part.startswith("b"):
            finished[labels] += value
    return dict(finished)


def render(accept: str | None) -> tuple[bytes, str]:
    """The exposition and its content type, negotiated on the scraper's Accept header
    (Prometheus text format, or OpenMetrics when asked for)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector())
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
