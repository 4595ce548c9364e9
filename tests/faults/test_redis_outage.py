"""Redis goes away under a running service (issue 20, items 1 and 2), against real processes:
gunicorn with gunicorn.conf.py, a Celery worker (threads pool, as by default) and celery beat, all on a Redis of the
test's own (tests/support/redis_server.py; the shared Redis is never touched) that the test
stops, later kills with SIGKILL mid-sync, and starts again.

While Redis is away: every request that does not need the queue answers as usual (the rate
limiter counts in process memory), enqueueing answers 503 queue_unavailable with Retry-After and
leaves no job row and no lock, /readyz says which dependency is missing and /metrics says the
counters' store is unreachable. Worker and beat keep running (same processes); once Redis is
back the next sync succeeds within 30 s without restarting anything, a scheduled one too, and no
request fails. After the SIGKILL (Redis back empty: no queue, no binding, no lease) the running
job ends, and new jobs run again.

``FAULT_REDIS_OUTAGE_SECONDS`` (default 20) is how long the first stop lasts; the issue's
minute is ``FAULT_REDIS_OUTAGE_SECONDS=60``.
"""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta

import pytest

from integration_service.extensions import db
from integration_service.models import SiteIntegration, SyncEvent, utcnow
from tests.factories import DEFAULT_PASSWORD
from tests.faults.outage_stack import BASE, CONTENT, TOKEN, Api, Stack, sync_and_wait, wait_for
from tests.integration import conftest as integration_fixtures
from tests.support.redis_server import REDIS_SERVER, RedisServer
from tests.workers.fakewp import make_integration

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server to run a Redis of the test's own"),
]
# The integration tests' fixtures (PostgreSQL required, a served fake WordPress).
_require_services = integration_fixtures._require_services
served_wp = integration_fixtures.served_wp

OUTAGE_SECONDS = float(os.environ.get("FAULT_REDIS_OUTAGE_SECONDS", "20"))
BACK_WITHIN = 30.0  # seconds from Redis's return to the next sync's success


def _jobs() -> list[tuple[int, str, int | None]]:
    db.session.expire_all()
    rows = db.session.execute(db.select(SyncEvent.id, SyncEvent.status, SyncEvent.sync_lock)).all()
    db.session.rollback()
    return [tuple(row) for row in rows]


def _assert_queue_unavailable(response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    body = response.json()
    assert body["error"]["code"] == "queue_unavailable" and body["request_id"], body
    assert int(response.headers["Retry-After"]) >= 1


def _metric(text: str, name: str, labels: str = "") -> float | None:
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_the_service_rides_out_a_redis_outage(app, database_url, factory, served_wp, tmp_path):
    account = factory.account()
    site = factory.site(account)
    editor = factory.user(account, role="editor", email="outage@example.com")
    served_wp.add_posts(30)
    integration = make_integration(factory, site, served_wp.url, sync_interval_minutes=None)  # manual syncs only
    scheduled = make_integration(factory, factory.site(account), served_wp.url, sync_interval_minutes=None)
    content = factory.content(site, title="pushed", external_id="1")
    integration_id, scheduled_id, content_id, site_id = integration.id, scheduled.id, content.id, site.id
    api_key = site.plain_api_key
    db.session.commit()

    redis_server = RedisServer(tmp_path / "redis").start()
    stack = Stack(app, database_url, redis_server.url, tmp_path)
    try:
        stack.start()
        user = Api(stack.web.url, {"Authorization": f"Bearer {factory.token(editor)}"})
        plugin = Api(stack.web.url, {"X-API-Key": api_key})
        assert sync_and_wait(user, integration_id, 60)["status"] == "success", stack.logs()
        pids = {"worker": stack.worker.process.pid, "beat": stack.beat.process.pid}

        # ---- Redis stopped ------------------------------------------------------------------
        redis_server.stop()
        stopped_at = time.monotonic()
        ready = user.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"] == {"database": True, "broker": False}
        assert user.get("/healthz").status_code == 200

        answers = {
            "list": user.get(f"{BASE}/"),
            "get": user.get(f"{BASE}/{integration_id}/"),
            "patch": user.patch(f"{BASE}/{integration_id}/", {"sync_enabled": True}),
            "sync_status": user.get(f"{BASE}/{integration_id}/sync_status/"),
            "debug_status": user.get(f"{BASE}/{integration_id}/debug_status/"),
            "content_types": user.get(f"{BASE}/{integration_id}/content_types/"),
            "content_create": user.post(CONTENT, {"site_id": site_id, "title": "written during the outage"}),
            "token": user.post(TOKEN, {"email": "outage@example.com", "password": DEFAULT_PASSWORD}),
            "site_key_list": plugin.get(f"{BASE}/"),
            "webhook": plugin.deliver(api_key, {"post_id": 1, "post_status": "draft", "content_id": content_id}),
        }
        failed = {name: (r.status_code, r.text[:300]) for name, r in answers.items() if not r.ok}
        assert not failed, failed
        assert answers["webhook"].json()["status"] == "applied"
        for name in ("list", "token", "webhook"):  # still rate limited, in the process's memory
            assert int(answers[name].headers["X-RateLimit-Remaining"]) >= 0
        # The connection test takes its politeness slot from the process: it reaches the (fake)
        # WordPress, whose verdict it reports, instead of failing for want of Redis.
        tested = user.post(f"{BASE}/{integration_id}/test_connection/")
        assert tested.status_code in (200, 400) and "Redis" not in tested.text, tested.text
        assert tested.json().get("details", tested.json().get("error", {}).get("details", {})).get("stage") != "timeout"

        jobs_before = _jobs()
        status_before = user.get(f"{BASE}/{integration_id}/").json()["sync_status"]
        for path, body in [
            ("sync/", {"direction": "both"}),
            ("sync/", {"direction": "from_external", "full": True}),
            ("sync_wordpress_content/", {"content_id": content_id}),
            ("update_site_structure/", {"post_types": {"post": {"label": "Posts"}}, "taxonomies": {}}),
        ]:
            _assert_queue_unavailable(user.post(f"{BASE}/{integration_id}/{path}", body))
        assert _jobs() == jobs_before  # no row left, and no lock
        assert all(lock is None for _, _, lock in _jobs())
        assert user.get(f"{BASE}/{integration_id}/").json()["sync_status"] == status_before

        scrape = user.get("/metrics")
        assert scrape.status_code == 200 and _metric(scrape.text, "integration_metrics_store_up") == 0

        while time.monotonic() - stopped_at < OUTAGE_SECONDS:
            assert all(stack.alive().values()), stack.logs()
            assert user.get(f"{BASE}/{integration_id}/sync_status/").status_code == 200
            time.sleep(1)

        # ---- Redis back ---------------------------------------------------------------------
        redis_server.start()
        returned_at = time.monotonic()
        event = sync_and_wait(user, integration_id, BACK_WITHIN)
        assert event["status"] == "success", (event, stack.logs())
        back_after = time.monotonic() - returned_at
        assert back_after < BACK_WITHIN
        # Beat and the worker's dispatcher: a due scheduled integration is synced, unprompted.
        db.session.execute(
            db.update(SiteIntegration)
            .where(SiteIntegration.id == scheduled_id)
            .values(sync_interval_minutes=15, next_sync_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
        wait_for(
            lambda: [e for e in _scheduled_events(scheduled_id) if e.status == "success"],
            BACK_WITHIN,
            f"beat's scheduled sync did not run after Redis returned:\n{stack.logs()}",
        )
        after = [
            user.get(f"{BASE}/"),
            user.post(TOKEN, {"email": "outage@example.com", "password": DEFAULT_PASSWORD}),
            plugin.deliver(api_key, {"post_id": 1, "post_status": "publish", "content_id": content_id}),
            user.get("/readyz"),
        ] + [user.get(f"{BASE}/{integration_id}/sync_status/") for _ in range(20)]
        assert [r.status_code for r in after if not r.ok] == []  # zero failures after recovery
        # The limiter counted in memory meanwhile, and said so once Redis took the counts.
        scrape = wait_for(
            lambda: (
                (s := user.get("/metrics")).ok
                and _metric(s.text, "integration_redis_fallback_total", '{component="ratelimit"}')
                and s
            ),
            10,
            "the fallback counts never reached /metrics",
        )
        assert _metric(scrape.text, "integration_metrics_store_up") == 1
        assert _metric(scrape.text, "integration_redis_fallback_total", '{component="ratelimit"}') >= len(answers)
        web_log = (stack.web.log_dir / "web.log").read_text(errors="replace")
        assert "ratelimit: Redis is unreachable" in web_log and "Traceback" not in web_log

        # ---- Redis killed mid-sync, back empty ------------------------------------------------
        served_wp.add_posts(270)
        served_wp.list_delay = 0.5
        running = user.post(f"{BASE}/{integration_id}/sync/", {"direction": "from_external", "full": True})
        assert running.status_code == 202, running.text
        running_id = running.json()["sync_event_id"]
        wait_for(
            lambda: (
                (job := user.get(f"{BASE}/{integration_id}/sync_status/").json()["current_job"])
                and job["state"] == "running"
                and job["progress"]["done"] >= 100
            ),
            30,
            f"the sync never got going:\n{stack.logs()}",
        )
        redis_server.kill(lose_data=True)
        time.sleep(3)
        assert user.get(f"{BASE}/{integration_id}/sync_status/").status_code == 200
        redis_server.start()
        returned_at = time.monotonic()
        served_wp.list_delay = 0
        # The job that was running ends (it finishes, or resumes from its checkpoint) ...
        wait_for(
            lambda: user.get(f"{BASE}/{integration_id}/sync_status/").json()["current_job"] is None,
            60,
            f"the job running at the SIGKILL never ended:\n{stack.logs()}",
        )
        db.session.expire_all()
        killed = db.session.get(SyncEvent, running_id)
        assert killed.status == "success" and killed.sync_lock is None, (killed.status, killed.error_message)
        # ... and the next job runs without a restart.
        event = sync_and_wait(user, integration_id, BACK_WITHIN)
        assert event["status"] == "success", (event, stack.logs())
        assert time.monotonic() - returned_at < 60
        assert {"worker": stack.worker.process.pid, "beat": stack.beat.process.pid} == pids
        assert all(stack.alive().values()), stack.logs()
        print(f"first sync after the stop succeeded {back_after:.1f} s after Redis returned")
    finally:
        stack.stop()
        redis_server.close()


def _scheduled_events(integration_id: int) -> list[SyncEvent]:
    db.session.expire_all()
    events = list(db.session.scalars(db.select(SyncEvent).where(SyncEvent.integration_id == integration_id)))
    db.session.rollback()
    return [e for e in events if (e.details or {}).get("trigger") == "scheduled"]
