"""Sync actions over HTTP (Celery eager in tests): sync, sync_status, debug_status,
update_site_structure, content_types, sync_wordpress_content — and their bad inputs."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest

from integration_service.extensions import db
from integration_service.models import Content, SiteIntegration, SyncEvent, utcnow
from tests.support.dead_broker import dead_broker_app
from tests.workers.fakewp import make_integration

BASE = "/api/v1/integration/integrations"


def url(integration, action: str) -> str:
    return f"{BASE}/{integration.id}/{action}/"


def active_event(integration, **fields) -> SyncEvent:
    values = {
        "integration_id": integration.id,
        "site_id": integration.site_id,
        "event_type": "sync",
        "direction": "both",
        "status": "running",
        "task_id": str(uuid.uuid4()),
        "sync_lock": integration.id,
        "started_at": utcnow(),
        "heartbeat_at": utcnow(),
        "progress_done": 40,
        "progress_total": 100,
    }
    values.update(fields)
    event = SyncEvent(**values)
    db.session.add(event)
    db.session.commit()
    return event


# -- sync -------------------------------------------------------------------------------------


def test_sync_answers_202_and_the_job_completes(editor_client, fake_wp, wp_integration):
    fake_wp.add_posts(3)

    response = editor_client.post(url(wp_integration, "sync"), json={"direction": "from_external"})

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert set(body) == {"job_id", "sync_event_id", "status", "status_url"}
    assert body["status"] == "queued"
    assert body["status_url"] == url(wp_integration, "sync_status")
    event = db.session.get(SyncEvent, body["sync_event_id"])
    assert event.task_id == body["job_id"] and event.event_type == "sync"

    status = editor_client.get(body["status_url"]).get_json()
    assert status["sync_status"] == "success" and status["last_sync_at"]
    assert status["current_job"] is None
    latest = status["recent_events"][0]
    assert set(latest) >= {
        "id",
        "event_type",
        "direction",
        "status",
        "details",
        "error_message",
        "started_at",
        "finished_at",
    }
    assert (latest["status"], latest["direction"], latest["details"]["created"]) == ("success", "from_external", 3)


def test_sync_defaults_to_both_and_accepts_no_body(editor_client, fake_wp, wp_integration):
    response = editor_client.post(url(wp_integration, "sync"))
    assert response.status_code == 202, response.get_json()
    assert db.session.get(SyncEvent, response.get_json()["sync_event_id"]).direction == "both"


def test_task_arguments_are_the_event_id_only(app, editor_client, wp_integration):
    task = app.extensions["celery"].tasks["integration.sync"]
    with mock.patch.object(task, "apply_async") as apply_async:
        response = editor_client.post(url(wp_integration, "sync"), json={"direction": "metadata"})
    assert response.status_code == 202
    kwargs = apply_async.call_args.kwargs
    assert kwargs["args"] == [response.get_json()["sync_event_id"]]
    assert kwargs["task_id"] == response.get_json()["job_id"]
    assert "kwargs" not in kwargs


def test_a_second_sync_gets_409_with_the_running_job_id(editor_client, wp_integration):
    running = active_event(wp_integration)

    response = editor_client.post(url(wp_integration, "sync"), json={"direction": "both"})

    assert response.status_code == 409
    body = response.get_json()
    assert (body["job_id"], body["sync_event_id"]) == (running.task_id, running.id)
    error = body["error"]
    assert error["code"] == "conflict"
    assert error["details"]["job_id"] == running.task_id
    assert error["details"]["sync_event_id"] == running.id
    assert db.session.scalar(db.select(db.func.count(SyncEvent.id))) == 1


def test_a_stuck_job_no_longer_blocks_a_new_sync(app, editor_client, fake_wp, wp_integration):
    old = utcnow() - timedelta(seconds=app.config["SYNC_STUCK_AFTER_SECONDS"] + 1)
    stuck = active_event(wp_integration, heartbeat_at=old, started_at=old)

    response = editor_client.post(url(wp_integration, "sync"), json={"direction": "metadata"})

    assert response.status_code == 202, response.get_json()
    db.session.expire_all()
    stuck = db.session.get(SyncEvent, stuck.id)
    # The dead job was resumed (eagerly, so it finished first) and released the lock.
    assert (stuck.status, stuck.sync_lock) == ("success", None)
    assert stuck.checkpoint["resumes"] == 1
    assert db.session.get(SyncEvent, response.get_json()["sync_event_id"]).status == "success"


def test_sync_status_shows_the_current_job_with_progress(viewer_client, wp_integration):
    running = active_event(wp_integration)

    body = viewer_client.get(url(wp_integration, "sync_status")).get_json()

    job = body["current_job"]
    assert job["job_id"] == running.task_id and job["sync_event_id"] == running.id
    assert (job["direction"], job["state"]) == ("both", "running")
    assert job["progress"] == {"done": 40, "total": 100}
    assert job["started_at"] and job["stuck"] is False


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"is_active": False}, "is_active"), ({"sync_enabled": False}, "sync_enabled")],
)
def test_inactive_or_sync_disabled_integration_is_400(editor_client, factory, site, changes, field):
    integration = make_integration(factory, site, "http://127.0.0.1:8999", **changes)
    response = editor_client.post(url(integration, "sync"), json={})
    assert response.status_code == 400
    assert field in response.get_json()["error"]["details"]
    assert db.session.scalar(db.select(db.func.count(SyncEvent.id))) == 0


@pytest.mark.parametrize(
    "body",
    [{"direction": "sideways"}, {"full": "maybe"}, {"direction": "both", "extra": 1}, {"direction": 5}],
)
def test_bad_sync_bodies_are_400(editor_client, wp_integration, body):
    response = editor_client.post(url(wp_integration, "sync"), json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "validation_error"


def test_sync_of_another_tenants_integration_is_404(api_client_for, factory, wp_integration):
    stranger = api_client_for(factory.user(factory.account(), role="owner"))
    for action in ("sync", "sync_wordpress_content", "update_site_structure"):
        assert stranger.post(url(wp_integration, action), json={}).status_code in (404, 400)
    assert stranger.post(url(wp_integration, "sync"), json={}).status_code == 404
    for action in ("sync_status", "debug_status", "content_types"):
        assert stranger.get(url(wp_integration, action)).status_code == 404


def test_unsupported_platforms_answer_501(editor_client, factory, site):
    shopify = factory.integration(site, platform="shopify", credentials_json={})
    assert editor_client.post(url(shopify, "sync"), json={}).status_code == 501
    response = editor_client.post(url(shopify, "update_site_structure"), json={"post_types": {}, "taxonomies": {}})
    assert response.status_code == 501
    assert response.get_json()["error"]["code"] == "platform_not_supported"
    assert editor_client.post(url(shopify, "sync_wordpress_content"), json={"content_id": 1}).status_code == 501


def test_viewers_cannot_start_syncs(viewer_client, wp_integration):
    assert viewer_client.post(url(wp_integration, "sync"), json={}).status_code == 403


def test_the_site_api_key_can_sync_its_own_site(api_client_for, fake_wp, wp_integration, site):
    plugin = api_client_for(api_key=site.plain_api_key)
    assert plugin.post(url(wp_integration, "sync"), json={"direction": "metadata"}).status_code == 202


def test_broker_down_answers_503_and_leaves_no_queued_row(app, database_url, editor_client, wp_integration):
    headers = editor_client.headers
    with dead_broker_app(app, database_url) as broken, broken.test_client() as client:
        response = client.post(url(wp_integration, "sync"), json={"direction": "both"}, headers=headers)
        content = client.post(
            url(wp_integration, "update_site_structure"),
            json={"post_types": {}, "taxonomies": {}},
            headers=headers,
        )

    assert response.status_code == 503, response.get_json()
    assert response.get_json()["error"]["code"] == "queue_unavailable"
    assert content.status_code == 503
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(SyncEvent.id))) == 0
    assert db.session.get(SiteIntegration, wp_integration.id).sync_status == "idle"
    # Nothing blocks the next sync once the broker is back.
    assert editor_client.post(url(wp_integration, "sync"), json={"direction": "metadata"}).status_code == 202


# -- debug_status -----------------------------------------------------------------------------


def test_debug_status_reports_health(app, editor_client, factory, fake_wp, wp_integration, site):
    fake_wp.add_posts(2)
    editor_client.post(url(wp_integration, "sync"), json={"direction": "from_external"})
    factory.content(site, title="Local only")
    failed = active_event(
        wp_integration, event_type="content_pull", status="failed", sync_lock=None, error_message="boom"
    )
    old = utcnow() - timedelta(seconds=app.config["SYNC_STUCK_AFTER_SECONDS"] + 30)
    stuck = active_event(wp_integration, heartbeat_at=old)

    body = editor_client.get(url(wp_integration, "debug_status")).get_json()

    assert body["integration_id"] == wp_integration.id
    assert body["last_sync"]["status"] == "success" and body["last_sync"]["counts"]["created"] == 2
    assert body["recent_failures"][0]["id"] == failed.id
    assert body["stuck_job"]["detected"] is True and body["stuck_job"]["sync_event_id"] == stuck.id
    assert body["stuck_job"]["heartbeat_age_seconds"] >= app.config["SYNC_STUCK_AFTER_SECONDS"]
    assert body["current_job"]["stuck"] is True
    assert body["content_counts"] == {"total": 3, "by_external_status": {"not_synced": 1, "publish": 2}, "conflicts": 0}
    assert set(body) >= {"last_connection_test", "last_webhook_at", "sync_status", "last_structure_fetch"}


# -- update_site_structure / content_types ----------------------------------------------------

STRUCTURE = {
    "post_types": {"post": {"label": "Posts", "rest_base": "posts", "taxonomies": ["category"]}},
    "taxonomies": {"category": {"label": "Categories", "rest_base": "categories", "hierarchical": True}},
    "plugin_connection_enabled": True,
    "two_way_sync_enabled": False,
    "timestamp": "2026-11-28T00:00:00Z",
}


def test_content_types_is_empty_until_a_structure_arrives(api_client_for, editor_client, wp_integration, site):
    assert editor_client.get(url(wp_integration, "content_types")).get_json() == {}

    plugin = api_client_for(api_key=site.plain_api_key)
    response = plugin.post(url(wp_integration, "update_site_structure"), json=STRUCTURE)

    assert response.status_code == 202, response.get_json()
    assert set(response.get_json()) >= {"job_id", "sync_event_id", "status_url"}
    stored = editor_client.get(url(wp_integration, "content_types")).get_json()
    assert stored["post_types"] == STRUCTURE["post_types"]
    assert stored["taxonomies"] == STRUCTURE["taxonomies"]
    assert stored["two_way_sync_enabled"] is False and stored["last_structure_fetch"]
    event = db.session.get(SyncEvent, response.get_json()["sync_event_id"])
    assert event.status == "success" and "structure" not in event.details
    assert event.details["post_types"] == 1


def test_the_pushed_seo_plugin_is_stored_and_kept_by_a_metadata_sync(
    api_client_for, editor_client, fake_wp, wp_integration, site
):
    plugin = api_client_for(api_key=site.plain_api_key)
    response = plugin.post(url(wp_integration, "update_site_structure"), json={**STRUCTURE, "seo_plugin": "rank_math"})
    assert response.status_code == 202, response.get_json()
    assert editor_client.get(url(wp_integration, "content_types")).get_json()["seo_plugin"] == "rank_math"

    # WordPress's core REST API cannot tell the SEO plugin: a metadata sync keeps the pushed one.
    assert editor_client.post(url(wp_integration, "sync"), json={"direction": "metadata"}).status_code == 202
    stored = editor_client.get(url(wp_integration, "content_types")).get_json()
    assert stored["source"] == "sync" and stored["seo_plugin"] == "rank_math"


@pytest.mark.parametrize(
    "body",
    [
        {"post_types": {}, "taxonomies": {}, "seo_plugin": "aioseo"},
        {"post_types": {}, "taxonomies": {}, "seo_plugin": ""},
        {"post_types": {}, "taxonomies": {}, "seo_plugin": None},
        {"post_types": {}, "taxonomies": {}, "seo_plugin": ["yoast"]},
        {"taxonomies": {}},
        {"post_types": [], "taxonomies": {}},
        {"post_types": {"bad slug!": {}}, "taxonomies": {}},
        {"post_types": {f"t{i}": {} for i in range(201)}, "taxonomies": {}},
        {"post_types": {"post": "not an object"}, "taxonomies": {}},
        {"post_types": {}, "taxonomies": {}, "timestamp": "yesterday"},
        {"post_types": {"post": {"label": "x" * 300_000}}, "taxonomies": {}},
    ],
)
def test_bad_structures_are_400(editor_client, wp_integration, body):
    response = editor_client.post(url(wp_integration, "update_site_structure"), json=body)
    assert response.status_code in (400, 413)
    assert response.get_json()["error"]["code"] in ("validation_error", "payload_too_large")
    assert db.session.scalar(db.select(db.func.count(SyncEvent.id))) == 0


# -- sync_wordpress_content -------------------------------------------------------------------


def test_sync_wordpress_content_pulls_the_edit(editor_client, fake_wp, wp_integration):
    fake_wp.add_posts(2)
    editor_client.post(url(wp_integration, "sync"), json={"direction": "from_external"})
    content = db.session.scalar(db.select(Content).where(Content.external_id == "2"))
    fake_wp.edit_post(2, title="New title", status="draft", content="<p>New</p>", tags=[9])

    response = editor_client.post(url(wp_integration, "sync_wordpress_content"), json={"content_id": content.id})

    assert response.status_code == 202, response.get_json()
    assert set(response.get_json()) >= {"job_id", "sync_event_id", "status_url"}
    db.session.refresh(content)
    assert (content.title, content.content_html, content.status) == ("New title", "<p>New</p>", "draft")
    assert content.external_status == "draft" and content.taxonomies["tags"] == [9]
    event = db.session.get(SyncEvent, response.get_json()["sync_event_id"])
    assert (event.event_type, event.status, event.content_id) == ("content_pull", "success", content.id)


def test_sync_wordpress_content_marks_deleted_posts_missing(editor_client, fake_wp, wp_integration):
    fake_wp.add_posts(1)
    editor_client.post(url(wp_integration, "sync"), json={"direction": "from_external"})
    content = db.session.scalar(db.select(Content))
    fake_wp.delete_post(1)

    assert (
        editor_client.post(url(wp_integration, "sync_wordpress_content"), json={"content_id": content.id}).status_code
        == 202
    )
    db.session.refresh(content)
    assert content.external_status == "missing"


def test_sync_wordpress_content_bad_inputs(editor_client, factory, wp_integration, site, account):
    other_site = factory.site(account)
    foreign = factory.content(other_site, external_id="5")
    unlinked = factory.content(site)
    action = url(wp_integration, "sync_wordpress_content")
    assert editor_client.post(action, json={"content_id": foreign.id}).status_code == 404  # another site
    assert editor_client.post(action, json={"content_id": 999999}).status_code == 404
    assert editor_client.post(action, json={}).status_code == 400
    assert editor_client.post(action, json={"content_id": "abc"}).status_code == 400
    response = editor_client.post(action, json={"content_id": unlinked.id})
    assert response.status_code == 400 and "content_id" in response.get_json()["error"]["details"]
    assert db.session.scalar(db.select(db.func.count(SyncEvent.id))) == 0


RFC_1123 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} ")


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def test_debug_status_dates_are_iso_8601_utc(app, editor_client, fake_wp, wp_integration):
    fake_wp.add_posts(1)
    editor_client.post(url(wp_integration, "sync"), json={"direction": "from_external"})
    wp_integration.last_connection_test_at = utcnow()
    wp_integration.last_connection_test_ok = True
    db.session.commit()

    body = editor_client.get(url(wp_integration, "debug_status")).get_json()

    dates = [
        body["last_connection_test"]["at"],
        body["last_sync"]["started_at"],
        body["last_sync"]["finished_at"],
        body["last_sync_at"],
    ]
    for value in dates:
        assert datetime.fromisoformat(value).utcoffset() == timedelta(0), value
    assert not [value for value in _strings(body) if RFC_1123.match(value)]


def test_any_datetime_in_a_response_is_iso_8601(app):
    moment = datetime(2026, 12, 2, 13, 53, 39, tzinfo=UTC)
    assert json.loads(app.json.dumps({"at": moment})) == {"at": "2026-12-02T13:53:39+00:00"}
    assert json.loads(app.json.dumps({"at": moment.replace(tzinfo=None)})) == {"at": "2026-12-02T13:53:39+00:00"}
