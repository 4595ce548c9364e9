"""End to end with the real WordPress and the real igny8-bridge plugin: the service runs as real
processes (gunicorn + a Celery worker, see service_server.py) that WordPress reaches over HTTP.

Nothing is faked: the plugin's settings save calls the onboarding endpoint, pushes the structure
(stored by the worker), and post changes made through WordPress's REST API reach the webhook
endpoints as signed deliveries from the plugin.

Needs PostgreSQL and Redis (``TEST_DATABASE_URL``, ``TEST_REDIS_URL``): the service processes
and the tests share them. The per-test Redis flush of tests/conftest.py is turned off here
(``redis_url`` below): Redis is the service's Celery broker, and a flush would drop the queue
bindings under a running worker.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from integration_service.extensions import db
from integration_service.models import Content, Site, SiteIntegration, SyncEvent
from tests.e2e.service_server import ServiceServer

pytestmark = pytest.mark.e2e

WAIT_SECONDS = 30.0


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    """No per-test Redis flush in this module (see the module docstring)."""
    return None


def _requirements_missing(database_url: str) -> str | None:
    if os.environ.get("SKIP_SERVICES"):
        return "SKIP_SERVICES is set"
    if not database_url.startswith("postgresql"):
        return "needs PostgreSQL (TEST_DATABASE_URL) shared with the service processes"
    if not os.environ.get("TEST_REDIS_URL"):
        return "needs Redis (TEST_REDIS_URL) as the service's Celery broker"
    return None


@pytest.fixture(scope="module")
def service(request: pytest.FixtureRequest, app, database_url: str) -> Iterator[ServiceServer]:
    reason = _requirements_missing(database_url)
    if reason:
        if os.environ.get("REQUIRE_E2E"):
            pytest.fail(f"plugin end-to-end tests cannot run: {reason}")
        pytest.skip(f"plugin end-to-end tests skipped: {reason}")
    wordpress_site = request.getfixturevalue("wordpress_site")  # only once the service can run
    import redis

    broker_url = os.environ["TEST_REDIS_URL"]
    redis.Redis.from_url(broker_url).flushdb()  # stale limits or tasks of earlier tests
    server = ServiceServer(
        database_url,
        broker_url,
        secret_key=app.config["SECRET_KEY"],
        encryption_keys=app.config["ENCRYPTION_KEYS"],
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
        # Leave the shared WordPress site unconfigured: no webhooks to a port that is gone.
        php(
            wordpress_site,
            """
            foreach ([IGNY8_BRIDGE_OPT_SERVICE_URL, IGNY8_BRIDGE_OPT_SITE_ID, IGNY8_BRIDGE_OPT_API_KEY,
                      IGNY8_BRIDGE_OPT_INTEGRATION_ID, IGNY8_BRIDGE_OPT_STRUCTURE_HASH] as $name) {
                delete_option($name);
            }
            igny8_bridge_add_default_options();
            global $wpdb;
            $wpdb->query('DELETE FROM ' . igny8_bridge_outbox_table());
            igny8_bridge_outbox_refresh_due();
            echo json_encode(true);
            """,
        )


def php(wordpress_site, code: str) -> Any:
    """Run PHP in the site (as admin) and decode the JSON it echoes."""
    from tests.support.wordpress import eval_php

    output = eval_php(wordpress_site.name, code)
    try:
        return json.loads(output.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise AssertionError(f"PHP printed no JSON: {output!r}") from None


def wait_for(what: str, check: Callable[[], Any], server: ServiceServer, timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()  # a fresh snapshot: the service processes write the rows
        db.session.expire_all()
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{server.logs()}")
        time.sleep(0.25)


@dataclass
class Connected:
    site: Site
    api_key: str
    integration_id: int
    save_result: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


@pytest.fixture
def connected(service: ServiceServer, wordpress_site, factory) -> Connected:
    """A fresh account and site, onboarded by the plugin's own settings save."""
    site = factory.site(factory.account(), url=wordpress_site.url)
    values = {"service_url": service.url, "site_id": site.id, "api_key": site.plain_api_key}
    encoded = base64.b64encode(json.dumps(values).encode()).decode()
    result = php(
        wordpress_site,
        f"""
        global $wpdb;
        $wpdb->query('DELETE FROM ' . igny8_bridge_outbox_table());
        igny8_bridge_outbox_refresh_due();
        delete_transient('igny8_bridge_structure_lock');
        echo json_encode(igny8_bridge_save_settings(json_decode(base64_decode('{encoded}'), true)));
        """,
    )
    assert result["success"] is True, f"{result}\n{service.logs()}"
    return Connected(site=site, api_key=site.plain_api_key, integration_id=result["integration_id"], save_result=result)


def create_post(wordpress_site, content: Content, status: str) -> dict[str, Any]:
    """A post pushed from the service: created in WordPress with the content id in its meta."""
    response = requests.post(
        wordpress_site.rest("wp/v2/posts"),
        json={
            "title": content.title,
            "content": content.content_html,
            "status": status,
            "meta": {"_igny8_content_id": content.id},
        },
        auth=wordpress_site.app_password_auth,
        timeout=30,
    )
    assert response.status_code == 201, response.text
    post = response.json()
    assert post["meta"]["_igny8_content_id"] == content.id
    content.external_id = str(post["id"])
    db.session.commit()
    return post


def webhook_events(content_id: int, event_type: str = "webhook_status") -> list[SyncEvent]:
    return list(
        db.session.scalars(
            db.select(SyncEvent)
            .where(SyncEvent.content_id == content_id, SyncEvent.event_type == event_type)
            .order_by(SyncEvent.id)
        )
    )


def external_status(content_id: int) -> str | None:
    return db.session.get(Content, content_id).external_status


# -- the tests ----------------------------------------------------------------------------------


def test_settings_save_onboards_the_site_and_pushes_the_structure(connected: Connected, service, wordpress_site):
    integration = wait_for(
        "the integration",
        lambda: db.session.scalar(db.select(SiteIntegration).where(SiteIntegration.site_id == connected.site.id)),
        service,
    )
    assert integration.id == connected.integration_id
    assert (integration.platform, integration.is_active) == ("wordpress", True)
    assert connected.save_result["structure"]["success"] is True

    tested = requests.post(
        f"{service.url}/api/v1/integration/integrations/{integration.id}/test_connection/",
        headers=connected.headers,
        timeout=60,
    )
    assert tested.status_code == 200, tested.text
    assert tested.json()["success"] is True

    def content_types() -> dict | None:
        response = requests.get(
            f"{service.url}/api/v1/integration/integrations/{integration.id}/content_types/",
            headers=connected.headers,
            timeout=10,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return body if "post" in (body.get("post_types") or {}) else None

    structure = wait_for("the pushed structure in content_types", content_types, service)
    assert {"post", "page"} <= set(structure["post_types"])
    assert {"category", "post_tag"} <= set(structure["taxonomies"])
    assert structure["seo_plugin"] == "none"  # neither Yoast SEO nor Rank Math in the test site
    assert structure.get("last_structure_fetch")


def test_reactivating_the_plugin_pushes_the_structure(connected: Connected, service, wordpress_site):
    integration_id = connected.integration_id
    wait_for(
        "the first structure",
        lambda: (db.session.get(SiteIntegration, integration_id).config_json or {}).get("content_types"),
        service,
    )
    integration = db.session.get(SiteIntegration, integration_id)
    config = dict(integration.config_json)
    config.pop("content_types")
    integration.config_json = config
    db.session.commit()

    php(
        wordpress_site,
        """
        require_once ABSPATH . 'wp-admin/includes/plugin.php';
        $plugin = 'igny8-bridge/igny8-bridge.php';
        deactivate_plugins($plugin);
        $error = activate_plugin($plugin);
        echo json_encode(is_wp_error($error) ? $error->get_error_message() : true);
        """,
    )

    stored = wait_for(
        "the structure pushed on activation",
        lambda: (db.session.get(SiteIntegration, integration_id).config_json or {}).get("content_types"),
        service,
    )
    assert "post" in stored["post_types"]


def test_publish_then_trash_reach_the_content_through_webhooks(connected: Connected, service, wordpress_site, factory):
    content = factory.content(connected.site, title="Pushed from the platform", status="review")
    post = create_post(wordpress_site, content, "draft")
    content_id = content.id
    wait_for("the draft status", lambda: external_status(content_id) == "draft", service)

    published = requests.post(
        wordpress_site.rest(f"wp/v2/posts/{post['id']}"),
        json={"status": "publish"},
        auth=wordpress_site.app_password_auth,
        timeout=30,
    )
    assert published.status_code == 200, published.text
    wait_for("external_status publish", lambda: external_status(content_id) == "publish", service)
    stored = db.session.get(Content, content_id)
    assert stored.external_url == published.json()["link"]

    trashed = requests.delete(
        wordpress_site.rest(f"wp/v2/posts/{post['id']}"), auth=wordpress_site.app_password_auth, timeout=30
    )
    assert trashed.status_code == 200, trashed.text
    wait_for("external_status trash", lambda: external_status(content_id) == "trash", service)

    events = webhook_events(content_id)
    applied = [event for event in events if event.details.get("outcome") == "applied"]
    assert [event.details["post_status"] for event in applied][-2:] == ["publish", "trash"]
    assert all(event.webhook_id and event.webhook_id.startswith("msg_") for event in events)
    assert len({event.webhook_id for event in events}) == len(events)  # one delivery per change
    integration = db.session.get(SiteIntegration, connected.integration_id)
    assert integration.last_webhook_at is not None
    # The metadata webhook of the new post brought its category names.
    metadata = wait_for(
        "the metadata webhook",
        lambda: (db.session.get(Content, content_id).meta or {}).get("terms"),
        service,
    )
    assert "categories" in metadata


def test_a_change_made_while_the_service_is_down_is_delivered_later(
    connected: Connected, service, wordpress_site, factory
):
    content = factory.content(connected.site, title="Outage", status="published")
    post = create_post(wordpress_site, content, "publish")
    content_id = content.id
    wait_for("external_status publish", lambda: external_status(content_id) == "publish", service)

    service.stop_web()
    try:
        edited = requests.post(
            wordpress_site.rest(f"wp/v2/posts/{post['id']}"),
            json={"title": "Edited during the outage", "status": "private"},
            auth=wordpress_site.app_password_auth,
            timeout=30,
        )
        assert edited.status_code == 200, edited.text
        queued = php(
            wordpress_site,
            "global $wpdb; echo json_encode($wpdb->get_col('SELECT webhook_id FROM ' . igny8_bridge_outbox_table()));",
        )
        assert queued, "the failed delivery was not queued in the plugin's outbox"
        db.session.expire_all()
        assert external_status(content_id) == "publish"
    finally:
        service.start_web()

    drained = php(wordpress_site, "echo json_encode(igny8_bridge_drain_outbox(true));")
    assert drained["remaining"] == 0, drained
    wait_for("external_status private", lambda: external_status(content_id) == "private", service)
    delivered = {event.webhook_id for event in webhook_events(content_id)}
    assert set(queued) & delivered, (queued, delivered)
