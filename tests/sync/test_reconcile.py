"""Reconcile (direction "reconcile") and push idempotency against the faked WordPress (``responses``)."""

from __future__ import annotations

from datetime import timedelta

import responses
from flask import current_app

from integration_service.extensions import db
from integration_service.models import Content, SiteIntegration, SyncEvent
from integration_service.platforms.http_types import HttpSettings
from integration_service.platforms.wordpress.client import WordPressClient
from integration_service.sync import runner
from integration_service.timeutil import iso
from tests.factories import Factory
from tests.workers.fakewp import APP_PASSWORD, FakeWordPress


def run(integration: SiteIntegration, direction: str, full: bool = False) -> SyncEvent:
    event = Factory(current_app).queued_sync(integration, direction, full)
    runner.run(runner.SyncJob, event.id, event.task_id, 0, 0)
    db.session.expire_all()
    return db.session.get(SyncEvent, event.id)


def row(site_id: int, external_id: int) -> Content:
    return db.session.scalar(
        db.select(Content).where(Content.site_id == site_id, Content.external_id == str(external_id))
    )


def test_reconcile_finds_deleted_and_back_dated_posts_and_fetches_only_those(fake_wp, wp_integration):
    posts = fake_wp.add_posts(150)
    assert run(wp_integration, "from_external").status == "success"
    fake_wp.delete_post(posts[10]["id"])
    # Edited, then its modification time set back before the watermark: invisible to an
    # incremental pull (modified_after), but its modified_gmt differs from the stored one.
    back_dated = posts[20]["id"]
    fake_wp.edit_post(back_dated, title="Rewritten")
    fake_wp.posts[back_dated]["modified_gmt"] = posts[0]["modified_gmt"] - timedelta(days=3)
    new = fake_wp.add_post(title="Brand new")

    incremental = run(wp_integration, "from_external")
    assert incremental.status == "success"
    assert row(wp_integration.site_id, back_dated).title != "Rewritten"
    assert row(wp_integration.site_id, posts[10]["id"]).external_status == "publish"

    fake_wp.requests.clear()
    event = run(wp_integration, "reconcile")

    assert event.status == "success", event.error_message
    details = event.details
    assert (details["listed"], details["missing"], details["refetched"], details["unchanged"]) == (150, 1, 1, 149)
    assert row(wp_integration.site_id, posts[10]["id"]).external_status == "missing"
    assert row(wp_integration.site_id, back_dated).title == "Rewritten"
    assert details["updated"] == 1 and details["created"] == 0  # the new post came with the pull
    assert row(wp_integration.site_id, new["id"]) is not None
    listings = fake_wp.list_requests("posts")
    lean = [r for r in listings if "include" not in r["query"]]
    assert lean and all(r["query"]["_fields"] == "id,modified_gmt" for r in lean)
    fetched = [r["query"]["include"] for r in listings if "include" in r["query"]]
    # The vanished candidate is confirmed by id, then only the back-dated post is read in full.
    assert fetched == [str(posts[10]["id"]), str(back_dated)]
    assert "_fields" in listings[-1]["query"] and "content.raw" in listings[-1]["query"]["_fields"]

    again = run(wp_integration, "reconcile")
    assert (again.details["missing"], again.details["refetched"], again.details["unchanged"]) == (0, 0, 150)


def test_reconcile_stores_posts_it_has_never_seen_and_marks_nothing_when_a_page_fails(fake_wp, wp_integration):
    fake_wp.add_posts(3)
    first = run(wp_integration, "reconcile")
    assert (first.details["listed"], first.details["refetched"], first.details["created"]) == (3, 3, 3)

    fake_wp.delete_post(1)
    fake_wp.list_status = 503
    current_app.config["SYNC_MAX_RETRIES"] = 0
    failed = run(wp_integration, "reconcile")
    assert failed.status == "failed"
    assert row(wp_integration.site_id, 1).external_status == "publish"


def test_reconcile_is_a_valid_direction_and_others_stay_400(editor_client, wp_integration, fake_wp):
    url = f"/api/v1/integration/integrations/{wp_integration.id}/sync/"
    fake_wp.add_posts(2)
    accepted = editor_client.post(url, json={"direction": "reconcile"})
    assert accepted.status_code == 202, accepted.get_json()
    event = db.session.get(SyncEvent, accepted.get_json()["sync_event_id"])
    assert (event.direction, event.status, event.details["listed"]) == ("reconcile", "success", 2)
    refused = editor_client.post(url, json={"direction": "reconciles"})
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "validation_error"


def _pending_push(factory, site, title: str = "Launch notes") -> Content:
    return factory.content(site, title=title, status="published", content_type="post")


def test_a_push_records_its_intent_before_creating_and_clears_it_after(fake_wp, wp_integration, factory, site):
    content = _pending_push(factory, site)
    seen: list[dict | None] = []
    original = fake_wp._write

    def spy(post_type, post_id, body):
        db.session.expire_all()
        seen.append(db.session.get(Content, content.id).push_intent)  # committed by now
        return original(post_type, post_id, body)

    fake_wp._write = spy
    event = run(wp_integration, "to_external")

    assert event.status == "success" and event.details["pushed"] == 1
    assert seen[0] is not None and seen[0]["title"] == "Launch notes" and seen[0]["job_id"] == event.id
    stored = db.session.get(Content, content.id)
    assert stored.push_intent is None and stored.external_id == "1"


def test_a_redelivered_push_adopts_the_post_found_by_the_plugin(fake_wp, wp_integration, factory, site):
    fake_wp.plugin = True
    content = _pending_push(factory, site)
    created = fake_wp._write("post", None, {"title": content.title, "meta": {"_igny8_content_id": content.id}})[2]
    fake_wp.add_post(title=content.title)  # same title, not ours: the plugin's answer is exact
    content.push_intent = {"at": iso(fake_wp.clock), "title": content.title, "job_id": 1}
    db.session.commit()

    event = run(wp_integration, "to_external")

    assert event.status == "success", event.error_message
    assert len(fake_wp.posts) == 2
    stored = db.session.get(Content, content.id)
    assert stored.external_id == str(created["id"]) and stored.push_intent is None
    lookups = [r for r in fake_wp.requests if r["route"] == "igny8/v1/posts"]
    assert [r["query"]["content_id"] for r in lookups] == [str(content.id)]


def test_without_the_plugin_a_redelivered_push_finds_the_post_by_its_exact_title(
    fake_wp, wp_integration, factory, site
):
    content = _pending_push(factory, site, title="Quarterly report")
    fake_wp.add_post(title="Quarterly report draft")  # contains the title: not an exact match
    intent_at = fake_wp.tick()
    created = fake_wp.add_post(title="Quarterly report")
    content.push_intent = {"at": iso(intent_at), "title": content.title, "job_id": 1}
    db.session.commit()

    event = run(wp_integration, "to_external")

    assert event.status == "success", event.error_message
    assert len(fake_wp.posts) == 2
    assert db.session.get(Content, content.id).external_id == str(created["id"])


def test_an_intent_whose_post_was_never_created_creates_it(fake_wp, wp_integration, factory, site):
    content = _pending_push(factory, site)
    content.push_intent = {"at": iso(fake_wp.clock), "title": content.title, "job_id": 1}
    db.session.commit()

    event = run(wp_integration, "to_external")

    assert event.status == "success" and event.details["pushed"] == 1
    assert len(fake_wp.posts) == 1


def test_client_lean_listing_and_batched_fetch_use_fields_and_include():
    fake = FakeWordPress()
    for _ in range(3):
        fake.add_post()
    settings = HttpSettings(allow_private=True, max_retries=0)
    client = WordPressClient(fake.url, {"username": "admin", "app_password": APP_PASSWORD}, settings)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.mount(rsps)
        pages = list(client.list_modified("post"))
        some = client.get_posts("post", ["1", "3", "99"])
    assert [post.external_id for post in pages[0].posts] == ["1", "2", "3"]
    assert all(post.modified_gmt is not None for post in pages[0].posts)
    assert [post.external_id for post in some.posts] == ["1", "3"]
    queries = [r["query"] for r in fake.list_requests()]
    assert queries[0]["_fields"] == "id,modified_gmt" and queries[1]["include"] == "1,3,99"
