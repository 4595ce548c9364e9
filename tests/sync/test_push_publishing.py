"""The push's publishing part against the fake WordPress, with ``media.prepare_media`` stood in
(its own tests are tests/sync/test_media*.py): images before the one post write, the fields
sent and kept, SEO warnings, per-post failures (an image, an author), change and conflict
detection, a pull then a push sending nothing, and publish_content end to end (eager Celery)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import current_app

from integration_service.extensions import db
from integration_service.models import Content, SyncEvent
from integration_service.platforms.wordpress import site_cache
from integration_service.sync import push_publishing, runner
from integration_service.sync.media import MediaItem, PreparedMedia
from tests.factories import Factory

FUTURE = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
PAST = datetime(2025, 1, 15, 12, 30, tzinfo=UTC)
CDN = "https://cdn.example.com"


class MediaStub:
    """prepare_media's interface: every CDN image "uploads" to attachment 70 + n."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.failing: dict[str, str] = {}

    def __call__(self, client, site_id, content_html, featured_image, *, settings=None) -> PreparedMedia:
        self.calls.append({"html": content_html, "featured": featured_image})
        urls = [featured_image["url"]] if featured_image else []
        urls += [part.split('"', 1)[0] for part in content_html.split('src="')[1:]]
        items, html = [], content_html
        for index, url in enumerate(dict.fromkeys(urls)):
            if url in self.failing:
                items.append(MediaItem(url, None, None, "failed", self.failing[url]))
                continue
            local = f"{client.site_url}/wp-content/uploads/{index}.png"
            items.append(MediaItem(url, str(70 + index), local, "uploaded"))
            html = html.replace(url, local)
        failed = sum(item.status == "failed" for item in items)
        featured_id = 70 if featured_image and featured_image["url"] not in self.failing else None
        return PreparedMedia(html, featured_id, items, uploaded=len(items) - failed, failed=failed)


@pytest.fixture
def media(monkeypatch) -> MediaStub:
    stub = MediaStub()
    monkeypatch.setattr(push_publishing, "prepare_media", stub)
    return stub


def run(integration, direction: str = "to_external") -> SyncEvent:
    event = Factory(current_app).queued_sync(integration, direction)
    runner.run(runner.SyncJob, event.id, event.task_id, 0, 0)
    db.session.expire_all()
    return db.session.get(SyncEvent, event.id)


def article(factory, site, **fields) -> Content:
    values = {"status": "published", "title": "Article", "content_html": f'<p><img src="{CDN}/a.png" alt="A"></p>'}
    values.update(fields)
    return factory.content(site, **values)


def test_images_first_then_one_write_with_every_field(pub_wp, pub_integration, factory, site, media):
    content = article(
        factory,
        site,
        excerpt="Summary",
        slug="article",
        publish_at=PAST,
        author="jane",
        format="aside",
        sticky=True,
        comment_status="closed",
        featured_image={"url": f"{CDN}/cover.jpg", "alt": "Cover"},
    )
    pub_wp.add_post(slug="article")  # taken: WordPress makes the new one article-2

    event = run(pub_integration)

    assert event.status == "success", event.error_message
    (write,) = pub_wp.writes()
    body = write["body"]
    assert "/wp-content/uploads/" in body["content"] and CDN not in body["content"]
    assert (body["featured_media"], body["author"], body["date_gmt"]) == (70, 2, "2025-01-15T12:30:00")
    assert (body["excerpt"], body["format"], body["sticky"], body["comment_status"]) == (
        "Summary",
        "aside",
        True,
        "closed",
    )
    assert media.calls[0]["featured"] == {"url": f"{CDN}/cover.jpg", "alt": "Cover"}
    assert (event.details["media_uploaded"], event.details["media_reused"], event.details["media_failed"]) == (2, 0, 0)
    stored = db.session.get(Content, content.id)
    assert stored.slug == "article-2"  # WordPress's answer
    assert stored.content_html.count(CDN) == 1  # the platform copy keeps its own URLs
    assert [item["status"] for item in stored.media] == ["uploaded", "uploaded"]
    assert stored.featured_media == {"id": 70, "url": f"{CDN}/cover.jpg"}

    again = run(pub_integration)  # nothing changed (the stored slug is WordPress's): nothing sent
    assert again.details["unchanged"] == 1 and len(pub_wp.writes()) == 1 and len(media.calls) == 1


def test_a_future_publish_at_schedules(pub_wp, pub_integration, factory, site, media):
    content = article(factory, site, publish_at=FUTURE)
    run(pub_integration)
    body = pub_wp.writes()[0]["body"]
    assert (body["status"], body["date_gmt"]) == ("future", "2027-03-01T08:00:00")
    assert db.session.get(Content, content.id).external_status == "future"


def test_a_failed_image_fails_that_post_only(pub_wp, pub_integration, factory, site, media):
    media.failing[f"{CDN}/a.png"] = "HTTP 404 from the image's server"
    broken = article(factory, site)
    fine = article(factory, site, content_html="<p>No images</p>")

    event = run(pub_integration)

    assert event.status == "partial"
    (item,) = event.details["failed_items"]
    assert item["content_id"] == broken.id
    assert f"image {CDN}/a.png: HTTP 404" in item["error"]
    assert event.details["media_failed"] == 1
    assert [w["body"]["title"] for w in pub_wp.writes()] == [fine.title]  # no post for the broken one
    stored = db.session.get(Content, broken.id)
    assert stored.external_id is None and stored.media[0]["status"] == "failed"


def test_seo_without_the_plugin_is_a_warning_and_the_post_still_goes(pub_wp, pub_integration, factory, site, media):
    content = article(factory, site, seo={"title": "SEO"})
    event = run(pub_integration)
    assert event.status == "success"
    assert event.details["warnings"] == [{"content_id": content.id, "warning": push_publishing.SEO_NEEDS_PLUGIN}]
    assert "igny8_seo" not in pub_wp.writes()[0]["body"]

    pub_wp.plugin = True
    # The plugin's activation pushes the structure, which drops the remembered REST root.
    site_cache.clear()
    db.session.get(Content, content.id).seo = {"title": "SEO 2"}
    db.session.commit()
    event = run(pub_integration)
    assert event.details["warnings"] == []
    assert pub_wp.writes()[-1]["body"]["igny8_seo"]["title"] == "SEO 2"


def test_an_unknown_author_fails_that_post_naming_it(pub_wp, pub_integration, factory, site, media):
    article(factory, site, author="nobody")
    event = run(pub_integration)
    assert event.status == "partial"
    assert "'nobody'" in event.details["failed_items"][0]["error"]
    assert pub_wp.writes() == []


def test_a_changed_publishing_field_is_pushed_again(pub_wp, pub_integration, factory, site, media):
    content = article(factory, site)
    run(pub_integration)
    db.session.get(Content, content.id).excerpt = "New summary"
    db.session.commit()
    event = run(pub_integration)
    assert event.details["pushed"] == 1 and pub_wp.writes()[-1]["body"]["excerpt"] == "New summary"


def test_both_sides_changed_is_a_conflict(pub_wp, pub_integration, factory, site, media):
    content = article(factory, site)
    run(pub_integration)
    stored = db.session.get(Content, content.id)
    stored.seo = {"title": "Platform SEO"}
    db.session.commit()
    pub_wp.tick(3600)
    pub_wp.edit_post(int(stored.external_id), title="Edited in WordPress")

    event = run(pub_integration, "both")

    assert event.details["conflicts"] == 1
    assert db.session.get(Content, content.id).conflict is not None


def test_a_pull_then_a_push_sends_nothing(pub_wp, pub_integration, media):
    cover = pub_wp.add_media(f"{pub_wp.url}/wp-content/uploads/cover.png", alt="Cover")
    pub_wp.plugin = True
    pub_wp.add_post(
        featured_media=cover, excerpt="E", slug="s", date_gmt=PAST, author=2, format="aside", sticky=True,
        comment_status="closed", igny8_seo={"title": "T", "noindex": True},
    )  # fmt: skip
    pub_wp.add_post(post_type="page")

    pulled = run(pub_integration, "from_external")
    assert pulled.status == "success", pulled.error_message
    row = db.session.scalar(db.select(Content).where(Content.content_type == "post"))
    assert (row.excerpt, row.slug, row.publish_at, row.author, row.format, row.sticky, row.comment_status) == (
        "E", "s", PAST, "2", "aside", True, "closed",
    )  # fmt: skip
    assert row.featured_image == {"url": f"{pub_wp.url}/wp-content/uploads/cover.png", "alt": "Cover"}
    assert row.seo == {"title": "T", "noindex": True}
    writes = len(pub_wp.writes())

    pushed = run(pub_integration, "to_external")

    assert pushed.details["pushed"] == 0 and pushed.details["unchanged"] == 2
    assert len(pub_wp.writes()) == writes and media.calls == []

    # Published again on demand: the featured image read back is its attachment, not re-uploaded.
    event = publish(pub_integration, row)
    assert event.status == "success", event.error_message
    assert media.calls[-1]["featured"] is None
    assert pub_wp.writes()[-1]["body"]["featured_media"] == cover


def publish(integration, content) -> SyncEvent:
    from integration_service.sync.publish import PUBLISH, PublishJob

    event = SyncEvent(
        integration_id=integration.id,
        site_id=integration.site_id,
        event_type=PUBLISH.event_type,
        action=PUBLISH.action,
        direction="to_external",
        status="queued",
        content_id=content.id,
        task_id="t-" + str(content.id),
        sync_lock=integration.id,
    )
    db.session.add(event)
    db.session.commit()
    runner.run(PublishJob, event.id, event.task_id, 0, 0)
    db.session.expire_all()
    return db.session.get(SyncEvent, event.id)


def test_publish_content_end_to_end(pub_wp, pub_integration, factory, site, media, editor_client):
    content = article(factory, site, featured_image={"url": f"{CDN}/cover.jpg"})
    url = f"/api/v1/integration/integrations/{pub_integration.id}/publish_content/"

    response = editor_client.post(url, json={"content_id": content.id})

    assert response.status_code == 202, response.get_json()
    event = db.session.get(SyncEvent, response.get_json()["sync_event_id"])
    assert (event.status, event.sync_lock, event.event_type) == ("success", None, "publish")
    assert event.details["result"] == "created" and event.details["media_uploaded"] == 2
    assert db.session.scalar(db.select(db.func.count(SyncEvent.id))) == 1
    stored = db.session.get(Content, content.id)
    assert stored.external_id is not None and stored.external_status == "publish"

    # Published again though unchanged (an explicit request): the post is written again.
    again = editor_client.post(url, json={"content_id": content.id})
    assert again.status_code == 202
    assert db.session.get(SyncEvent, again.get_json()["sync_event_id"]).details["result"] == "updated"
    assert len(pub_wp.writes()) == 2


def test_publish_content_of_a_failing_image_is_partial(pub_wp, pub_integration, factory, site, media):
    media.failing[f"{CDN}/a.png"] = "the bytes are not an allowed image type (svg)"
    content = article(factory, site)
    event = publish(pub_integration, content)
    assert event.status == "partial"
    assert f"{CDN}/a.png" in event.error_message and "svg" in event.error_message
    assert event.details["result"] == "failed" and pub_wp.writes() == []


def test_publish_content_of_a_deleted_post_is_reported(pub_wp, pub_integration, factory, site, media):
    content = article(factory, site, external_id="99", external_status="missing")
    event = publish(pub_integration, content)
    assert event.status == "partial" and event.details["result"] == "missing"
    assert "deleted" in event.details["failed_items"][0]["error"]
