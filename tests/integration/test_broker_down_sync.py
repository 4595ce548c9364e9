"""The broker (Redis) goes away while a sync runs in a real worker (issue 12 section 6).

The worker reaches Redis through a TCP proxy the test cuts (the shared Redis is never touched).
``broker``: only Celery's broker connection goes (CELERY_BROKER_URL through the proxy), so the
slice re-enqueue cannot be published and the runner carries on with the next slice itself.
``redis``: all of Redis goes (the politeness slots too), so requests fail as transient and the
retry cannot be published either: the job must still end visibly (finished, or failed with a
message), never stay queued holding the integration's lock. Heartbeats and progress keep going
to PostgreSQL meanwhile, and no broker message carries a secret.
"""

from __future__ import annotations

import time

import pytest

from integration_service.extensions import db
from integration_service.models import SyncEvent
from tests.integration.test_worker_sync import BASE, poll_until_done, start_pull_and_wait
from tests.support.secrets import assert_no_secret_in_redis
from tests.support.tcp_proxy import TcpProxy
from tests.workers.fakewp import make_integration

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("outage", ["broker", "redis"])
def test_sync_ends_visibly_when_the_broker_goes_away(
    app,
    live_app,
    start_worker,
    factory,
    site,
    editor,
    served_wp,
    redis_url,
    outage,
):
    proxy = TcpProxy.for_url(redis_url)
    proxy.start()
    env = {
        "SYNC_SLICE_PAGES": "1",  # every page a slice: each one needs the broker to re-enqueue
        "SYNC_HEARTBEAT_SECONDS": "1",
        "SYNC_RETRY_BACKOFF_SECONDS": "0.5",
        "SYNC_RETRY_BACKOFF_MAX_SECONDS": "2",
        "WP_SLOT_WAIT_SECONDS": "2",
        "CELERY_BROKER_URL": proxy.url_for(redis_url),
    }
    if outage == "redis":
        env["REDIS_URL"] = proxy.url_for(redis_url)
    worker = start_worker(**env)
    served_wp.add_posts(600)
    served_wp.list_delay = 2.0  # long page fetches: the cut lands mid-fetch, before a re-enqueue
    integration = make_integration(factory, site, served_wp.url)
    headers = {"Authorization": f"Bearer {factory.token(editor)}"}
    client = live_app.test_client()
    event_id = start_pull_and_wait(client, headers, integration.id, worker, done=200)
    time.sleep(0.5)  # page 2's slice was handed off; the next one is fetching page 3

    proxy.cut()
    cut_at = time.monotonic()
    heartbeats = set()
    while time.monotonic() - cut_at < 60:
        db.session.expire_all()
        event = db.session.get(SyncEvent, event_id)
        if event.heartbeat_at is not None:
            heartbeats.add(event.heartbeat_at)
        if event.status in ("success", "partial", "failed"):
            break
        time.sleep(0.3)
    ended_after = time.monotonic() - cut_at
    print(f"\n{outage} down: job {event.status} {ended_after:.1f} s after the cut ({event.error_message})")
    assert event.status in ("success", "partial", "failed"), (
        f"still {event.status} {ended_after:.0f} s after the broker went ({event.details}):\n{worker.log()[-3000:]}"
    )
    assert event.sync_lock is None
    if outage == "broker":
        # The runner went on with the slices itself, writing progress to PostgreSQL.
        assert event.status == "success", event.error_message
        assert event.progress_done == 600 and event.details["created"] == 600
        assert len(heartbeats) >= 3
        assert "could not enqueue the next slice" in worker.log()
    else:
        # Without Redis the politeness limits fall back to this process's own counts (issue 20):
        # the job goes on and finishes, its progress in PostgreSQL.
        assert event.status == "success", event.error_message
        assert event.progress_done == 600

    proxy.start()  # the broker is back (same port): the worker reconnects and serves a new sync
    served_wp.list_delay = 0
    again = client.post(f"{BASE}/{integration.id}/sync/", json={"direction": "from_external"}, headers=headers)
    assert again.status_code == 202, again.get_json()
    final = poll_until_done(client, headers, integration.id, timeout=60)
    assert final["recent_events"][0]["status"] == "success", (final, worker.log()[-3000:])
    assert_no_secret_in_redis(redis_url, app, site)
    proxy.cut()
