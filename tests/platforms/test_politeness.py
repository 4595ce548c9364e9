"""Per-site politeness: the Redis gate (shared by processes) and its in-process twin."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from typing import Any

import pytest
import redis
import responses

from integration_service.platforms import http, politeness
from integration_service.platforms.base import PlatformError
from integration_service.platforms.http import HttpTransport
from integration_service.platforms.http_types import HttpSettings
from integration_service.platforms.politeness import PolitenessSettings, SiteGate, site_key
from tests.platforms.fakes import Sleeps

URL = "https://site.example.test/wp-json/wp/v2/posts"
OTHER = "https://other.example.test/wp-json/"


@pytest.fixture(params=["redis", "local"])
def backend(request: pytest.FixtureRequest, redis_url: str | None) -> str | None:
    """The Redis URL for the shared gate, or None for the in-process one."""
    if request.param == "local":
        return None
    if not redis_url:
        pytest.skip("TEST_REDIS_URL is not set")
    return redis_url


def _settings(redis_url: str | None, **values: Any) -> PolitenessSettings:
    return PolitenessSettings(redis_url=redis_url, **values)


def _hammer(gate: SiteGate, counter: Any, threads: int, rounds: int, hold: float) -> int:
    """Threads taking the site's slot; returns the most holders seen at once (``counter`` is a
    function that adds to a shared count and returns the new value)."""
    peak = 0
    lock = threading.Lock()

    def run() -> None:
        nonlocal peak
        for _ in range(rounds):
            with gate.slot(URL):
                now = counter(1)
                with lock:
                    peak = max(peak, now)
                time.sleep(hold)
                counter(-1)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return peak


def _process_hammer(redis_url: str, limit: int) -> None:
    client = redis.Redis.from_url(redis_url)
    gate = SiteGate(_settings(redis_url, concurrency=limit, wait_seconds=30))
    peak = _hammer(gate, lambda delta: client.incrby("test:in_flight", delta), threads=6, rounds=8, hold=0.01)
    client.rpush("test:peaks", peak)


def test_concurrency_never_exceeds_the_limit_across_processes(redis_url: str | None) -> None:
    if not redis_url:
        pytest.skip("TEST_REDIS_URL is not set")
    client = redis.Redis.from_url(redis_url)
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_process_hammer, args=(redis_url, 3)) for _ in range(2)]
    for process in processes:
        process.start()
    _process_hammer(redis_url, 3)  # and this process too: 18 threads in 3 processes
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    peaks = [int(value) for value in client.lrange("test:peaks", 0, -1)]
    assert len(peaks) == 3
    assert max(peaks) == 3  # reached, never passed
    assert int(client.get("test:in_flight")) == 0
    assert SiteGate(_settings(redis_url, concurrency=3)).in_flight(URL) == 0


def test_in_process_concurrency_never_exceeds_the_limit() -> None:
    gate = SiteGate(_settings(None, concurrency=2))
    count = [0]
    lock = threading.Lock()

    def counter(delta: int) -> int:
        with lock:
            count[0] += delta
            return count[0]

    assert _hammer(gate, counter, threads=8, rounds=5, hold=0.005) == 2
    assert gate.in_flight(URL) == 0


def test_limits_are_per_site(backend: str | None) -> None:
    gate = SiteGate(_settings(backend, concurrency=1, wait_seconds=0.2))
    with gate.slot(URL):
        with gate.slot(OTHER):  # another site: its own slot
            assert gate.in_flight(URL) == 1 and gate.in_flight(OTHER) == 1
        with pytest.raises(PlatformError) as raised, gate.slot(URL.replace("/posts", "/pages")):  # same site
            pass
    assert raised.value.transient and raised.value.stage == "timeout"
    assert "site.example.test:443 is busy" in raised.value.message
    assert gate.in_flight(URL) == 0


def test_a_waiter_gets_the_slot_when_it_is_released(backend: str | None) -> None:
    gate = SiteGate(_settings(backend, concurrency=1, wait_seconds=5))
    released_at: list[float] = []

    def holder() -> None:
        with gate.slot(URL):
            time.sleep(0.3)
            released_at.append(time.monotonic())

    thread = threading.Thread(target=holder)
    thread.start()
    time.sleep(0.05)
    with gate.slot(URL):
        acquired_at = time.monotonic()
    thread.join()
    # Woken by the release (Redis: BLPOP on the wake-up list), not by a poll interval.
    assert 0 <= acquired_at - released_at[0] < 0.2


def _hold_and_hang(redis_url: str, ready: Any) -> None:
    gate = SiteGate(_settings(redis_url, concurrency=1, lease_seconds=1.5))
    with gate.slot(URL):
        ready.set()
        time.sleep(60)


def test_a_killed_holders_slot_frees_itself_when_its_lease_expires(redis_url: str | None) -> None:
    if not redis_url:
        pytest.skip("TEST_REDIS_URL is not set")
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    process = context.Process(target=_hold_and_hang, args=(redis_url, ready))
    process.start()
    assert ready.wait(30)
    os.kill(process.pid, signal.SIGKILL)  # no release ever runs
    process.join(10)
    killed_at = time.monotonic()
    gate = SiteGate(_settings(redis_url, concurrency=1, lease_seconds=1.5, wait_seconds=0.3))
    assert gate.in_flight(URL) == 1
    with pytest.raises(PlatformError) as raised, gate.slot(URL):
        pass
    assert raised.value.transient and 0 < raised.value.retry_after <= 1.5
    patient = SiteGate(_settings(redis_url, concurrency=1, lease_seconds=1.5, wait_seconds=5))
    with patient.slot(URL):
        waited = time.monotonic() - killed_at
    assert waited < 2.0  # the lease (1.5 s from acquisition), not the 5 s deadline


def test_a_live_holder_keeps_its_slot_past_the_lease(redis_url: str | None) -> None:
    if not redis_url:
        pytest.skip("TEST_REDIS_URL is not set")
    holder = SiteGate(_settings(redis_url, concurrency=1, lease_seconds=0.6))
    other = SiteGate(_settings(redis_url, concurrency=1, lease_seconds=0.6, wait_seconds=0.1))
    with holder.slot(URL):
        time.sleep(1.5)  # a slow request: the lease is renewed from the holder's thread
        with pytest.raises(PlatformError), other.slot(URL):
            pass
    with other.slot(URL):
        pass


def test_retry_after_is_shared_by_every_client(backend: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    rate_limited: list[int | None] = []
    monkeypatch.setattr(http, "report_rate_limited", rate_limited.append)
    settings = HttpSettings(max_retries=0, allow_private=True, politeness=_settings(backend), site_id=42)
    first = HttpTransport(settings)
    with responses.RequestsMock() as mocked:
        mocked.get(URL, status=429, headers={"Retry-After": "1"})
        assert first.request("GET", URL).status_code == 429
    assert rate_limited == [42]  # the site's id labels the metric, never its host
    # Another client (on Redis: another gate, as in another worker process) waits too.
    other_gate = SiteGate(settings.politeness) if backend else first._gate
    assert 0.5 < other_gate.backoff_remaining(URL) <= 1.0
    assert other_gate.backoff_remaining(OTHER) == 0
    started = time.monotonic()
    with other_gate.slot(URL):
        pass
    assert 0.5 < time.monotonic() - started < 1.5


def test_a_retry_after_beyond_the_wait_limit_fails_fast(backend: str | None) -> None:
    gate = SiteGate(_settings(backend, wait_seconds=5))
    gate.back_off(URL, 120, 503)
    gate.back_off(URL, 2, 503)  # a shorter one does not cut the longer back-off
    sleeps = Sleeps()
    started = time.monotonic()
    with pytest.raises(PlatformError) as raised, gate.slot(URL, sleeps):
        pass
    assert time.monotonic() - started < 0.5 and sleeps == []
    assert raised.value.transient and raised.value.retry_after > 100
    assert "Retry-After" in raised.value.message


def test_the_transport_waits_out_a_shared_back_off_before_retrying(backend: str | None) -> None:
    sleeps = Sleeps()
    transport = HttpTransport(
        HttpSettings(max_retries=1, allow_private=True, politeness=_settings(backend)), sleep=sleeps
    )
    with responses.RequestsMock() as mocked:
        mocked.get(URL, status=503, headers={"Retry-After": "4"})
        mocked.get(URL, json=[])
        assert transport.request("GET", URL).status_code == 200
    assert sleeps == pytest.approx([4.0], abs=0.5)


def test_the_request_budget_is_enforced_for_every_client(backend: str | None) -> None:
    settings = _settings(backend, budget_per_minute=3, wait_seconds=1)
    first = SiteGate(settings)
    second = SiteGate(settings) if backend else first  # in-process: one process, one budget
    for gate in (first, second, first):
        with gate.slot(URL):
            pass
    with first.slot(OTHER):  # budgets are per site
        pass
    with pytest.raises(PlatformError) as raised, second.slot(URL):
        pass
    assert raised.value.transient and 50 < raised.value.retry_after <= 60
    with pytest.raises(PlatformError), first.slot(URL):
        pass
    assert "request budget" in raised.value.message


def test_settings_come_from_the_app_config(app) -> None:
    config = {**app.config, "WP_CONCURRENCY": 2, "WP_REQUEST_BUDGET_PER_MINUTE": 120, "REDIS_URL": "redis://r:6379/3"}
    settings = HttpSettings.from_config(config)
    assert settings.pool_size == 2
    assert settings.politeness == PolitenessSettings(
        concurrency=2, budget_per_minute=120, wait_seconds=30.0, lease_seconds=15.0, redis_url="redis://r:6379/3"
    )
    assert HttpSettings.from_config({**app.config, "REDIS_URL": None}).politeness.redis_url is None


def test_site_key_is_host_and_port() -> None:
    assert site_key("https://Blog.Example.com/wp-json/") == "blog.example.com:443"
    assert site_key("http://127.0.0.1:8123/x?y=1") == "127.0.0.1:8123"
    assert site_key("http://example.com") == "example.com:80"


def test_an_unreachable_redis_is_a_transient_error() -> None:
    gate = SiteGate(_settings("redis://127.0.0.1:1/0"))
    gate.back_off(URL, 5, 429)  # logged, not raised: the answer still reaches the caller
    with pytest.raises(PlatformError) as raised, gate.slot(URL):
        pass
    assert raised.value.transient and "Redis is unreachable" in raised.value.message


def test_a_connection_test_waits_less_but_shares_the_slots(app) -> None:
    from integration_service.services.connection import diagnostic_settings

    settings = diagnostic_settings()
    assert settings.politeness.wait_seconds == 5
    sync_gate = politeness.gate_for(HttpSettings.from_config(app.config).politeness)
    assert politeness.gate_for(settings.politeness) is sync_gate
