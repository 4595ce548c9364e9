"""Which queues a worker consumes, and the queue watch behind /readyz and debug_status
(``integration_service.sync.queues``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import SERVICE_QUEUES, TestingConfig
from integration_service import create_app
from integration_service.sync import queues
from tests.support.live_worker import live_celery_app

ROOT = Path(__file__).resolve().parents[2]

WORKER_QUEUES = """
import json, sys
sys.argv = ["celery", "worker", *sys.argv[1:]]
from celery.bin.celery import celery  # noqa: F401
import celery_app
app = celery_app.celery_app
select = [q for q in (sys.argv[3:] if "-Q" in sys.argv else [])]
if select:
    app.amqp.queues.select(select)
print(json.dumps({"consumed": sorted(app.amqp.queues.consume_from),
                  "pool": app.conf.worker_pool, "concurrency": app.conf.worker_concurrency,
                  "pool_size": celery_app.flask_app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_size"),
                  "sync_route": app.amqp.router.route({}, "integration.sync")["queue"].name,
                  "dispatch_route": app.amqp.router.route({}, "integration.dispatch_due_syncs")["queue"].name}))
"""


def _worker_view(tmp_path: Path, *args: str, **env_vars: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "WORKER_CONCURRENCY"}}
    env.update(INSTANCE_PATH=str(tmp_path), **env_vars)
    result = subprocess.run(
        [sys.executable, "-c", WORKER_QUEUES, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_worker_without_q_consumes_every_queue_the_service_routes_to(tmp_path):
    view = _worker_view(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    assert view["consumed"] == sorted(SERVICE_QUEUES) == ["short", "sync"]
    # Every route lands on a consumed queue: nothing waits forever behind a default worker.
    assert {view["sync_route"], view["dispatch_route"]} <= set(view["consumed"])


def test_the_redis_layout_runs_the_threads_pool_with_a_pool_sized_from_the_concurrency(tmp_path):
    view = _worker_view(
        tmp_path, "-c", "300", REDIS_URL="redis://127.0.0.1:1/0", DATABASE_URL="postgresql://u@127.0.0.1:1/x"
    )
    assert view["pool"] == "threads"
    assert view["concurrency"] == 300
    assert view["pool_size"] == 15  # one connection per 20 tasks: jobs hold none while waiting on WordPress


def test_the_embedded_layout_keeps_two_prefork_processes(tmp_path):
    view = _worker_view(tmp_path)
    assert (view["pool"], view["concurrency"], view["pool_size"]) == ("prefork", 2, None)


def test_queue_of_follows_the_task_routes():
    app = create_app(TestingConfig)
    celery_app = app.extensions["celery"]
    assert queues.queue_of(celery_app, "integration.sync") == "sync"
    assert queues.queue_of(celery_app, "integration.update_site_structure") == "short"
    assert queues.queue_of(celery_app, "something.else") == "short"


# ------------------------------------------------------------------ against a real Redis


@pytest.fixture
def queue_redis():
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set")
    import redis

    client = redis.Redis.from_url(url)
    keys = [*SERVICE_QUEUES, *(queues.KEY_PREFIX + q for q in SERVICE_QUEUES)]
    client.delete(*keys)
    queues.clear_cache()
    yield url
    client.delete(*keys)
    queues.clear_cache()


@pytest.fixture
def redis_app(app, queue_redis, tmp_path):
    """The test app with its Celery on TEST_REDIS_URL (not eager), as the web process has it."""
    with live_celery_app(app, app.config["SQLALCHEMY_DATABASE_URI"], queue_redis, tmp_path) as live:
        yield live


def test_readyz_warns_when_jobs_wait_on_a_queue_no_worker_reads(redis_app, queue_redis):
    import redis

    client = redis.Redis.from_url(queue_redis)
    client.rpush("sync", "a job", "another job")
    queues.Registration(queue_redis, "short-only@host", ["short"]).refresh()

    body = redis_app.test_client().get("/readyz").get_json()
    assert body["status"] == "ready"  # the web side is ready; the warning says what is wrong
    assert body["queues"] == {"short": {"waiting": 0, "consumers": 1}, "sync": {"waiting": 2, "consumers": 0}}
    assert len(body["warnings"]) == 1 and "2 job(s) wait on queue 'sync'" in body["warnings"][0]

    queues.Registration(queue_redis, "all@host", ["short", "sync"]).refresh()
    queues.clear_cache()
    body = redis_app.test_client().get("/readyz").get_json()
    assert body["queues"]["sync"] == {"waiting": 2, "consumers": 1}
    assert body["warnings"] == []


def test_a_lapsed_or_withdrawn_registration_is_not_a_consumer(queue_redis):
    import time

    registration = queues.Registration(queue_redis, "gone@host", ["sync"])
    registration.refresh()
    assert queues.read_states(queue_redis, ("sync",))["sync"].consumers == 1
    later = time.time() + queues.ENTRY_TTL_SECONDS + 1
    assert queues.read_states(queue_redis, ("sync",), now=later)["sync"].consumers == 0
    registration.withdraw()
    assert queues.read_states(queue_redis, ("sync",))["sync"].consumers == 0


def test_the_report_is_cached_so_polling_readyz_costs_redis_nothing(redis_app, queue_redis):
    import redis

    client = redis.Redis.from_url(queue_redis)
    first = queues.report(redis_app.extensions["celery"])
    client.rpush("sync", "a job")
    assert queues.report(redis_app.extensions["celery"]) == first  # within CACHE_SECONDS
    queues.clear_cache()
    assert queues.report(redis_app.extensions["celery"])["queues"]["sync"]["waiting"] == 1


def test_debug_status_carries_the_queue_report(editor_client, factory, site, monkeypatch):
    seen = []

    def fake_report(celery_app):
        seen.append(celery_app)
        return {"queues": {"sync": {"waiting": 3, "consumers": 0}}, "warnings": ["3 job(s) wait on queue 'sync'"]}

    monkeypatch.setattr(queues, "report", fake_report)
    integration = factory.integration(site)
    body = editor_client.get(f"/api/v1/integration/integrations/{integration.id}/debug_status/").get_json()
    assert body["worker_queues"] == fake_report(None)
    assert seen  # asked once per call (the report itself is cached)


def test_debug_status_worker_queues_is_null_on_an_eager_or_non_redis_broker(editor_client, factory, site):
    integration = factory.integration(site)
    body = editor_client.get(f"/api/v1/integration/integrations/{integration.id}/debug_status/").get_json()
    assert body["worker_queues"] is None
