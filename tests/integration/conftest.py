"""Integration fixtures: a real ``celery -A celery_app worker`` process on Redis and PostgreSQL,
and a test-side app whose Celery is not eager and talks to the same Redis.

Skipped with the reason unless TEST_DATABASE_URL is PostgreSQL and TEST_REDIS_URL is set; with
REQUIRE_E2E set (CI) they fail instead of skipping.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.support.live_worker import live_celery_app, require_services, start_workers
from tests.workers.fakewp import FakeWordPress


@pytest.fixture(autouse=True)
def _require_services() -> None:
    require_services("integration tests")


@pytest.fixture
def served_wp() -> Iterator[FakeWordPress]:
    """A fake WordPress served over HTTP on loopback (reachable from worker processes)."""
    fake = FakeWordPress()
    server = fake.serve()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def start_worker(app: Flask, database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Any]:
    """``start_worker(**env)`` starts a real worker on the queues sync and short; all are stopped
    after the test (before the database is cleaned)."""
    workers, start = start_workers(app, database_url, redis_url, tmp_path, "itest")
    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def live_app(app: Flask, database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app like the test app but whose Celery really sends to Redis (not eager)."""
    with live_celery_app(app, database_url, redis_url, tmp_path) as live:
        yield live
