"""PostgreSQL restarts under gunicorn (issue 20 item 3): while it is down every request that needs
the database answers 503 database_unavailable with Retry-After, webhook deliveries included,
never a 500; once it is back no request fails, though every connection gunicorn's workers had
pooled died with the restart (they are replaced before use, integration_service/dbpool.py).

gunicorn runs with the repository's gunicorn.conf.py on the throwaway cluster of
tests/faults/test_postgres_restart.py and a Redis of the test's own.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from config import TestingConfig
from integration_service import create_app
from integration_service.extensions import db
from tests.e2e.service_server import ServiceServer
from tests.factories import DEFAULT_PASSWORD, Factory
from tests.faults import test_postgres_restart
from tests.faults.outage_stack import BASE, CONTENT, TOKEN, Api
from tests.support.redis_server import REDIS_SERVER, RedisServer

pytestmark = [
    test_postgres_restart.pytestmark,
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server"),
]
cluster = test_postgres_restart.cluster

DELIVERIES = 300  # during the outage, from 8 senders at once


def _requests(user: Api, plugin: Api, api_key: str, ids: dict[str, int]) -> dict[str, object]:
    integration = f"{BASE}/{ids['integration']}"
    return {
        "list": user.get(f"{BASE}/"),
        "get": user.get(f"{integration}/"),
        "patch": user.patch(f"{integration}/", {"sync_enabled": True}),
        "sync_status": user.get(f"{integration}/sync_status/"),
        "debug_status": user.get(f"{integration}/debug_status/"),
        "sync": user.post(f"{integration}/sync/", {"direction": "both"}),
        "content_create": user.post(CONTENT, {"site_id": ids["site"], "title": "t"}),
        "token": user.post(TOKEN, {"email": "pg@example.com", "password": DEFAULT_PASSWORD}),
        "site_key_list": plugin.get(f"{BASE}/"),
        "webhook": plugin.deliver(api_key, {"post_id": 1, "post_status": "draft", "content_id": ids["content"]}),
        "metrics": user.get("/metrics"),
    }


def test_api_across_a_postgres_restart(cluster, tmp_path):
    app = create_app(TestingConfig, overrides={"SQLALCHEMY_DATABASE_URI": cluster.url})
    with app.app_context():
        db.create_all()
        factory = Factory(app)
        account = factory.account()
        site = factory.site(account)
        editor = factory.user(account, role="editor", email="pg@example.com")
        integration = factory.integration(site, sync_interval_minutes=None)
        content = factory.content(site, title="c", external_id="1")
        ids = {"integration": integration.id, "site": site.id, "content": content.id}
        api_key, token = site.plain_api_key, factory.token(editor)
        db.session.remove()
        db.engine.dispose()

    redis_server = RedisServer(tmp_path / "redis").start()
    web = ServiceServer(
        cluster.url,
        redis_server.url,
        secret_key=app.config["SECRET_KEY"],
        encryption_keys=app.config["ENCRYPTION_KEYS"],
        extra_env={"RATELIMIT_WEBHOOKS": "100000/minute", "RATELIMIT_INTEGRATION": "100000/minute"},
    )
    try:
        web.start_web()
        user = Api(web.url, {"Authorization": f"Bearer {token}"})
        plugin = Api(web.url, {"X-API-Key": api_key})

        def burst(count: int) -> list[int]:
            """Webhook deliveries from 8 senders at once (each a new webhook-id), and their codes."""
            with ThreadPoolExecutor(8) as pool:
                return list(
                    pool.map(
                        lambda i: (
                            plugin.deliver(
                                api_key, {"post_id": 1, "post_status": "publish", "content_id": ids["content"]}
                            ).status_code
                        ),
                        range(count),
                    )
                )

        # Fill every gunicorn worker's pool with connections (all die with the restart).
        assert set(burst(80)) == {200}
        before = _requests(user, plugin, api_key, ids)
        assert {name: r.status_code for name, r in before.items() if not r.ok} == {}
        cluster.pg_ctl("stop", "-m", "fast")

        during = _requests(user, plugin, api_key, ids)
        for name, response in during.items():
            assert response.status_code == 503, (name, response.status_code, response.text[:300])
            body = response.json()
            assert body["error"]["code"] == "database_unavailable" and body["request_id"], (name, body)
            assert int(response.headers["Retry-After"]) >= 1, name
            assert "Traceback" not in response.text
        codes = burst(DELIVERIES)
        assert set(codes) == {503}, {code: codes.count(code) for code in set(codes)}
        probe = Api(web.url, {})  # as a load balancer probes: no credentials
        assert probe.get("/healthz").status_code == 200
        ready = probe.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] is False

        cluster.pg_ctl("start")
        time.sleep(0.2)
        # Zero failures from here on: the dead pooled connections are replaced before use.
        after = _requests(user, plugin, api_key, ids)
        failed = {name: (r.status_code, r.text[:200]) for name, r in after.items() if not r.ok}
        # The sync queued before the outage (no worker runs here) still holds the lock: 409.
        assert failed == {"sync": (409, after["sync"].text[:200])}, failed
        codes = burst(200)
        assert set(codes) == {200}, {code: codes.count(code) for code in set(codes)}
        web_log = (web.log_dir / "web.log").read_text(errors="replace")
        assert "Traceback" not in web_log
        assert "replacing it before use" in web_log
    finally:
        web.stop()
        redis_server.close()
