"""The connection test under a real gunicorn started with the repository's gunicorn.conf.py,
against a slow site on a real socket (issue 12, item 2): the client gets the JSON 400 within
the deadline, the SyncEvent is stored, and onboarding leaves no integration, even when the web
server kills the worker mid-test."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from integration_service.extensions import db
from integration_service.models import SiteIntegration, SyncEvent
from tests.e2e.service_server import ServiceServer
from tests.support.slow_site import SlowSite

BASE = "/api/v1/integration/integrations"
ONBOARD = f"{BASE}/test-connection/"
DEADLINE = 3


def _server(app, database_url: str, redis_url: str, **kwargs) -> ServiceServer:
    server = ServiceServer(
        database_url,
        redis_url,
        secret_key=app.config["SECRET_KEY"],
        encryption_keys=app.config["ENCRYPTION_KEYS"],
        **kwargs,
    )
    server.start_web()  # a connection test needs no Celery worker
    return server


@pytest.fixture
def slow_site() -> Iterator[SlowSite]:
    with SlowSite("trickle", interval=0.2) as site:
        yield site


def integration_count(site_id: int) -> int:
    db.session.rollback()  # a fresh snapshot: the service process wrote the rows
    return len(list(db.session.scalars(db.select(SiteIntegration).where(SiteIntegration.site_id == site_id))))


def test_under_gunicorn_the_client_gets_json_400_within_the_deadline(
    app, database_url, redis_url, factory, site, slow_site
) -> None:
    server = _server(app, database_url, redis_url, extra_env={"CONNECTION_TEST_DEADLINE_SECONDS": str(DEADLINE)})
    try:
        integration = factory.integration(
            site, config_json={"site_url": slow_site.url}, credentials_json={"api_key": site.plain_api_key}
        )
        started = time.monotonic()
        response = requests.post(
            f"{server.url}{BASE}/{integration.id}/test_connection/",
            headers={"X-API-Key": site.plain_api_key},
            timeout=40,
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["error"]["code"] == "connection_failed" and body["error"]["details"]["stage"] == "timeout"
        assert elapsed < DEADLINE + 2
        db.session.rollback()
        [event] = db.session.scalars(db.select(SyncEvent).where(SyncEvent.integration_id == integration.id))
        assert event.event_type == "test_connection" and event.status == "failed"
        assert event.details["stage"] == "timeout"

        db.session.delete(db.session.get(SiteIntegration, integration.id))
        db.session.execute(db.delete(SyncEvent))
        db.session.commit()
        started = time.monotonic()
        response = requests.post(
            f"{server.url}{ONBOARD}",
            json={"site_id": site.id, "api_key": site.plain_api_key, "site_url": slow_site.url},
            timeout=40,
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 400, response.text
        assert response.json()["error"]["details"]["stage"] == "timeout"
        assert elapsed < DEADLINE + 2
        assert integration_count(site.id) == 0
    except BaseException:
        print(server.logs())
        raise
    finally:
        server.stop()


def test_a_worker_killed_by_gunicorn_mid_onboarding_leaves_no_integration(
    app, database_url, redis_url, site, slow_site
) -> None:
    # A deadline longer than gunicorn's timeout (a misconfiguration): the sync worker is killed
    # mid-test, and still nothing of the onboarding remains.
    server = _server(
        app,
        database_url,
        redis_url,
        threads=1,
        extra_env={"CONNECTION_TEST_DEADLINE_SECONDS": "60", "GUNICORN_TIMEOUT": "3"},
    )
    try:
        started = time.monotonic()
        try:
            response = requests.post(
                f"{server.url}{ONBOARD}",
                json={"site_id": site.id, "api_key": site.plain_api_key, "site_url": slow_site.url},
                timeout=40,
            )
            status = response.status_code
        except requests.ConnectionError:
            status = None  # the killed worker closed the connection without an answer
        assert status in (None, 500, 502), status
        assert time.monotonic() - started < 30  # killed by gunicorn, not ended by the deadline
        assert integration_count(site.id) == 0
        assert "WORKER TIMEOUT" in (server.log_dir / "web.log").read_text(errors="replace")
    except BaseException:
        print(server.logs())
        raise
    finally:
        server.stop()
