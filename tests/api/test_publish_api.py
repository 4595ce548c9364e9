"""``POST /integrations/{id}/publish_content/``: the request side (202 and its job, the sync
lock, tenancy, bad ids and bad bodies). What the job does is in tests/sync/test_publish*.py."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest

from integration_service.extensions import db
from integration_service.models import SiteIntegration, SyncEvent, utcnow
from tests.support.dead_broker import dead_broker_app
from tests.workers.fakewp import make_integration

BASE = "/api/v1/integration/integrations"


def url(integration, action: str = "publish_content") -> str:
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
    }
    values.update(fields)
    event = SyncEvent(**values)
    db.session.add(event)
    db.session.commit()
    return event


def events() -> list[SyncEvent]:
    return db.session.scalars(db.select(SyncEvent).order_by(SyncEvent.id)).all()


@pytest.fixture
def task_sent(app):
    """The publish task's apply_async, mocked: the request side alone, the job is not run."""
    task = app.extensions["celery"].tasks["integration.publish_content"]
    with mock.patch.object(task, "apply_async") as apply_async:
        yield apply_async


def test_publish_answers_202_and_enqueues_ids_only(editor_client, factory, wp_integration, site, task_sent):
    content = factory.content(site, status="published")

    response = editor_client.post(url(wp_integration), json={"content_id": content.id})

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert set(body) >= {"job_id", "sync_event_id", "status_url"}
    assert body["status_url"] == f"{BASE}/{wp_integration.id}/sync_status/"
    kwargs = task_sent.call_args.kwargs
    assert kwargs["args"] == [body["sync_event_id"]] and kwargs["task_id"] == body["job_id"]
    assert "kwargs" not in kwargs
    (event,) = events()
    assert (event.event_type, event.action, event.direction, event.status) == (
        "publish",
        "publish_content",
        "to_external",
        "queued",
    )
    assert (event.content_id, event.sync_lock, event.task_id) == (content.id, wp_integration.id, body["job_id"])
    # A publish is not a sync: the integration's sync_status keeps reporting the last sync.
    assert db.session.get(SiteIntegration, wp_integration.id).sync_status == "idle"


def test_publish_is_409_while_a_sync_of_the_integration_runs(editor_client, factory, wp_integration, site, task_sent):
    content = factory.content(site, status="published")
    running = active_event(wp_integration)

    response = editor_client.post(url(wp_integration), json={"content_id": content.id})

    assert response.status_code == 409
    body = response.get_json()
    assert body["error"]["code"] == "conflict"
    assert (body["job_id"], body["sync_event_id"]) == (running.task_id, running.id)
    assert len(events()) == 1 and not task_sent.called


def test_a_content_already_being_published_is_409(editor_client, factory, wp_integration, site, task_sent):
    content = factory.content(site, status="published")
    first = editor_client.post(url(wp_integration), json={"content_id": content.id})
    assert first.status_code == 202

    again = editor_client.post(url(wp_integration), json={"content_id": content.id})
    other = editor_client.post(url(wp_integration), json={"content_id": factory.content(site).id})
    sync = editor_client.post(url(wp_integration, "sync"), json={"direction": "to_external"})

    for response in (again, other, sync):
        assert response.status_code == 409, response.get_json()
        assert response.get_json()["job_id"] == first.get_json()["job_id"]
    assert f"publish job (content {content.id})" in again.get_json()["error"]["message"]
    assert again.get_json()["error"]["details"]["event_type"] == "publish"
    assert len(events()) == 1


def test_a_stuck_publish_no_longer_blocks(app, editor_client, factory, wp_integration, site, task_sent):
    content = factory.content(site, status="published")
    old = utcnow().replace(year=2020)
    stuck = active_event(wp_integration, event_type="publish", content_id=content.id, heartbeat_at=old)

    response = editor_client.post(url(wp_integration), json={"content_id": content.id})

    assert response.status_code == 202, response.get_json()
    db.session.expire_all()
    assert db.session.get(SyncEvent, stuck.id).status == "failed"


def test_content_with_a_conflict_is_409(editor_client, factory, wp_integration, site, task_sent):
    content = factory.content(site, status="published", external_id="3", conflict={"reason": "both changed"})
    response = editor_client.post(url(wp_integration), json={"content_id": content.id})
    assert response.status_code == 409
    assert "conflict" in response.get_json()["error"]["details"]
    assert events() == []


def test_tenancy_and_bad_ids_are_404(api_client_for, editor_client, factory, wp_integration, site, account, task_sent):
    stranger = api_client_for(factory.user(factory.account(), role="owner"))
    mine = factory.content(site, status="published")
    other_site_content = factory.content(factory.site(account), status="published")
    foreign_account = factory.content(factory.site(factory.account()), status="published")

    assert stranger.post(url(wp_integration), json={"content_id": mine.id}).status_code == 404
    for content_id in (other_site_content.id, foreign_account.id, 999_999):
        response = editor_client.post(url(wp_integration), json={"content_id": content_id})
        assert response.status_code == 404, content_id
        assert response.get_json()["error"]["code"] == "not_found"
    assert editor_client.post(f"{BASE}/999999/publish_content/", json={"content_id": mine.id}).status_code == 404
    assert editor_client.post(f"{BASE}/abc/publish_content/", json={"content_id": mine.id}).status_code == 404
    assert events() == [] and not task_sent.called


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"content_id": "abc"},
        {"content_id": "1"},
        {"content_id": 0},
        {"content_id": -1},
        {"content_id": 2**40},
        {"content_id": True},
        {"content_id": None},
        {"content_id": 1.5},
        {"content_id": [1]},
        {"content_id": 1, "extra": 1},
        [1],
        "1",
    ],
)
def test_bad_bodies_are_400(editor_client, wp_integration, body, task_sent):
    response = editor_client.post(url(wp_integration), json=body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["code"] == "validation_error"
    assert events() == []


def test_missing_or_non_json_body_is_a_4xx(editor_client, wp_integration, task_sent):
    missing = editor_client.post(url(wp_integration))
    assert missing.status_code == 400, missing.get_json()
    assert missing.get_json()["error"]["code"] == "validation_error"
    broken = editor_client.post(url(wp_integration), data="{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    form = editor_client.post(
        url(wp_integration), data="content_id=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 415 and form.get_json()["error"]["code"] == "unsupported_media_type"
    assert events() == []


@pytest.mark.parametrize(
    ("changes", "field"), [({"is_active": False}, "is_active"), ({"sync_enabled": False}, "sync_enabled")]
)
def test_inactive_or_sync_disabled_integration_is_400(editor_client, factory, site, changes, field, task_sent):
    integration = make_integration(factory, site, "http://127.0.0.1:8999", **changes)
    content = factory.content(site, status="published")
    response = editor_client.post(url(integration), json={"content_id": content.id})
    assert response.status_code == 400
    assert field in response.get_json()["error"]["details"]
    assert events() == []


def test_roles_and_platforms(viewer_client, api_client_for, editor_client, factory, wp_integration, site, task_sent):
    content = factory.content(site, status="published")
    assert viewer_client.post(url(wp_integration), json={"content_id": content.id}).status_code == 403
    shopify = factory.integration(factory.site(wp_integration.site.account), platform="shopify", credentials_json={})
    assert editor_client.post(url(shopify), json={"content_id": content.id}).status_code == 501
    plugin = api_client_for(api_key=site.plain_api_key)
    assert plugin.post(url(wp_integration), json={"content_id": content.id}).status_code == 202


def test_broker_down_answers_503_and_leaves_no_queued_row(
    app, database_url, editor_client, factory, wp_integration, site
):
    content = factory.content(site, status="published")
    headers = editor_client.headers
    with dead_broker_app(app, database_url) as broken, broken.test_client() as client:
        response = client.post(url(wp_integration), json={"content_id": content.id}, headers=headers)
    assert response.status_code == 503, response.get_json()
    assert response.get_json()["error"]["code"] == "queue_unavailable"
    db.session.expire_all()
    assert events() == []
    assert db.session.get(SiteIntegration, wp_integration.id).sync_status == "idle"
