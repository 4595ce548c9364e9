"""What a scheduled sync that finds nothing new costs in Redis (issue 22, item 2): the commands
the service itself sends (politeness, structure cache, metrics), counted by a Redis of the
test's own (``INFO stats`` ``total_commands_processed``, which counts the commands a script
runs too, as the fleet bench does) and by the client (round trips). Celery's own commands
(receive, ack, events) are not here: tasks run eagerly in the tests.

Measured the same way on the code before (5100cc1): 20 commands in 7 round trips when the
structure was remembered in the same process (a back-off PTTL, a 6-command acquire script and
a 5-command release script with its wake-up push for the one request, then 8 metrics
increments in 4 round trips), and 56 commands in 16 round trips in a process that had not seen
the site (3 more requests for its structure); the first sync of a site, 60. Now: 13 in 4 in
any process, the first sync 43."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from integration_service import metrics
from integration_service.extensions import db
from integration_service.models import SiteIntegration, SyncEvent, utcnow
from integration_service.platforms.wordpress import site_cache
from integration_service.sync import schedule
from tests.support.redis_server import REDIS_SERVER, RedisServer
from tests.workers.fakewp import make_integration

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server for a Redis of the test's own")

# Per no-change sync, metrics flushed once for it alone (a busy worker sums many syncs per flush).
MAX_COMMANDS = 13  # HMGET 1, acquire script 5, release 2, metrics 5 (2 histograms x 2, dispatches 1)
MAX_ROUND_TRIPS = 4  # HMGET, EVALSHA, release pipeline, metrics pipeline


class Counted:
    """Every command and round trip the service's Redis clients send, by command name."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.trips: list[list[str]] = []  # the commands of each round trip
        self.round_trips = 0
        self.on = False

    def clear(self) -> None:
        self.commands.clear()
        self.trips.clear()
        self.round_trips = 0
        self.on = True

    def stop(self) -> None:
        self.on = False


@pytest.fixture
def own_redis(app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RedisServer, Counted]]:
    server = RedisServer(tmp_path / "redis").start()
    counted = Counted()
    plain, pipelined = redis.Redis.execute_command, redis.client.Pipeline.execute

    def execute_command(self: redis.Redis, *args: Any, **options: Any) -> Any:
        if counted.on:
            counted.commands.append(str(args[0]).upper())
            counted.trips.append([str(args[0]).upper()])
            counted.round_trips += 1
        return plain(self, *args, **options)

    def execute(self: redis.client.Pipeline, raise_on_error: bool = True) -> Any:
        if counted.on and self.command_stack:  # an empty pipeline sends nothing
            counted.commands.extend(str(args[0]).upper() for args, _ in self.command_stack)
            counted.trips.append([str(args[0]).upper() for args, _ in self.command_stack])
            counted.round_trips += 1
        return pipelined(self, raise_on_error)

    monkeypatch.setattr(redis.Redis, "execute_command", execute_command)
    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
    # Politeness, the structure cache and metrics on this Redis, as REDIS_URL makes them in a worker.
    monkeypatch.setitem(app.config, "REDIS_URL", server.url)
    monkeypatch.setitem(app.config, "METRICS_REDIS_URL", server.url)
    # Only the test's flush_pending() sends: the timed flush (1 s) could otherwise split one
    # sync's sums into two pipelines on a slow machine (the same commands, one more round trip).
    monkeypatch.setitem(app.config, "METRICS_FLUSH_SECONDS", 3600.0)
    # (tests/conftest.py drops the stores of earlier tests: one left with counts it could not send
    # would be flushed by flush_pending() too, one more round trip.)
    try:
        yield server, counted
    finally:
        for redis_store in metrics._redis_stores.values():
            redis_store.client.close()
        server.close()


def _command_stats(admin: redis.Redis) -> dict[str, int]:
    """Commands Redis processed so far, by name (a script's own commands included)."""
    return {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in admin.info("commandstats").items()}


def _processed(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    # Not counted: the test's INFO, and what a new connection says about itself (once per
    # connection of a pool, not per sync).
    ignored = {"info", "client|setinfo", "hello"}
    delta = {name: calls - before.get(name, 0) for name, calls in after.items() if name not in ignored}
    return {name: calls for name, calls in delta.items() if calls}


def _sync_once(integration_id: int, counted: Counted, admin: redis.Redis) -> tuple[dict[str, int], SyncEvent]:
    """Make the integration due, dispatch (the job runs inside, eagerly), flush the metrics:
    the commands Redis processed meanwhile, by name."""
    db.session.get(SiteIntegration, integration_id).next_sync_at = utcnow() - timedelta(seconds=5)
    db.session.commit()
    metrics.flush_pending()
    before = _command_stats(admin)
    counted.clear()
    assert schedule.dispatch_due()["dispatched"] == 1
    metrics.flush_pending()
    counted.stop()
    processed = _processed(before, _command_stats(admin))
    event = db.session.scalars(
        db.select(SyncEvent).where(SyncEvent.integration_id == integration_id).order_by(SyncEvent.id.desc())
    ).first()
    assert event is not None
    return processed, event


def test_a_no_change_scheduled_sync_costs_a_few_redis_commands(factory, fake_wp, own_redis) -> None:
    server, counted = own_redis
    admin = redis.Redis.from_url(server.url)
    fake_wp.add_posts(3)
    site = factory.site(url=fake_wp.url)
    integration = make_integration(factory, site, fake_wp.url, sync_interval_minutes=15)
    integration.config_json = {**integration.config_json, "sync_post_types": ["post"]}  # one type, as the bench
    db.session.commit()
    first, event = _sync_once(integration.id, counted, admin)  # the first pull: 3 posts, structure read
    assert event.status == "success" and event.details["created"] == 3, event.error_message
    site_cache.clear()  # another worker process: nothing of the site in this one

    requests_before = len(fake_wp.requests)
    processed, event = _sync_once(integration.id, counted, admin)
    assert [r["route"] for r in fake_wp.requests[requests_before:]] == ["wp/v2/posts"]  # structure from Redis

    assert event.status == "success", event.error_message
    assert event.details.get("incremental") and event.details.get("created", 0) == 0
    print(f"\nfirst sync: {sum(first.values())} commands {first}")
    print(f"no-change sync: {sum(processed.values())} commands {processed}, {counted.round_trips} round trips")
    assert sum(processed.values()) <= MAX_COMMANDS, processed
    assert counted.round_trips <= MAX_ROUND_TRIPS, (counted.commands, counted.trips)
    # One script call per request, no back-off read of its own, no wake-up with nobody waiting.
    assert counted.commands.count("EVALSHA") == 1
    assert not {"PTTL", "GET", "RPUSH", "BLPOP"} & set(counted.commands)
    # The structure came from Redis, not from the site (one HMGET), nor from this process.
    assert counted.commands.count("HMGET") == 1


def test_a_busy_worker_sends_the_metrics_of_many_syncs_in_one_short_pipeline(factory, fake_wp, own_redis) -> None:
    server, counted = own_redis
    admin = redis.Redis.from_url(server.url)
    integrations = []
    for _ in range(5):
        integration = make_integration(factory, factory.site(url=fake_wp.url), fake_wp.url, sync_interval_minutes=15)
        integration.config_json = {**integration.config_json, "sync_post_types": ["post"]}
        integrations.append(integration)
    db.session.commit()
    for integration in integrations:
        _sync_once(integration.id, counted, admin)  # each one's first pull
    for integration in integrations:
        integration.next_sync_at = utcnow() - timedelta(seconds=5)
    db.session.commit()
    metrics.flush_pending()
    before = _command_stats(admin)
    assert schedule.dispatch_due()["dispatched"] == 5  # five no-change syncs, one metrics flush
    metrics.flush_pending()
    processed = _processed(before, _command_stats(admin))
    print(f"\nfive no-change syncs: {sum(processed.values())} commands {processed}")
    # Same labels, same buckets: summed in the process, one increment per field in all.
    assert processed["hincrbyfloat"] <= 6
    assert sum(processed.values()) <= 5 * (MAX_COMMANDS - 5) + 6
