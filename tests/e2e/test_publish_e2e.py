"""publish_content against the real WordPress 6.1 (php-gd, the companion plugin) and a local
image server: a post with a featured image and three inline images (two the same bytes under
different URLs) makes exactly 2 + 1 attachments, and the public page (as a visitor) shows every
image from the site's uploads with srcset, no platform URL, the featured image and the alt texts;
a re-push uploads nothing; a second post reuses an image; a future publish_at is ``future`` with
the right date_gmt; SEO lands in the page's head (no SEO plugin active) or, without the companion
plugin, is a per-post warning."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from bench.images import noisy_jpeg, png
from integration_service.extensions import db
from integration_service.models import Content, SyncEvent
from integration_service.sync.media_html import find_images
from integration_service.sync.push_publishing import SEO_NEEDS_PLUGIN
from tests.e2e.article import article_images, inline_images_html

pytestmark = pytest.mark.e2e
BASE = "/api/v1/integration/integrations"
PLUGIN_ADMIN = "require_once ABSPATH . 'wp-admin/includes/plugin.php'; const PLUGIN = 'igny8-bridge/igny8-bridge.php'; "


@pytest.fixture
def images():
    with article_images(
        noisy_jpeg(7, 120_000), png((10, 120, 200), (1200, 630)), png((200, 50, 50), (800, 600))
    ) as server:
        yield server


def attachment_count(site: Any) -> int:
    response = requests.get(site.rest("wp/v2/media"), params={"per_page": 1}, auth=site.app_password_auth, timeout=30)
    return int(response.headers["X-WP-Total"])


def wp_post(site: Any, post_id: str) -> dict:
    response = requests.get(
        site.rest(f"wp/v2/posts/{post_id}"), params={"context": "edit"}, auth=site.app_password_auth, timeout=30
    )
    response.raise_for_status()
    return response.json()


def publish(editor_client, integration, content: Content) -> SyncEvent:
    response = editor_client.post(f"{BASE}/{integration.id}/publish_content/", json={"content_id": content.id})
    assert response.status_code == 202, response.get_json()
    db.session.expire_all()
    return db.session.get(SyncEvent, response.get_json()["sync_event_id"])


def test_an_article_with_images_is_published_whole(wordpress_site, editor_client, factory, site, integration, images):
    html = inline_images_html(images)
    content = factory.content(
        site,
        title="Publish e2e",
        content_html=html,
        status="published",
        excerpt="The summary",
        slug="publish-e2e",
        featured_image={"url": images.url("/cover.png"), "alt": "Cover alt"},
        seo={"title": "SEO title e2e", "description": "SEO description e2e"},
    )
    before = attachment_count(wordpress_site)

    event = publish(editor_client, integration, content)

    assert event.status == "success", (event.error_message, event.details)
    assert (event.details["media_uploaded"], event.details["media_reused"]) == (3, 1)
    assert attachment_count(wordpress_site) == before + 3  # 2 distinct inline images + the featured one
    stored = db.session.get(Content, content.id)
    post = wp_post(wordpress_site, stored.external_id)
    assert post["status"] == "publish" and post["featured_media"] > 0
    assert post["excerpt"]["raw"] == "The summary" and stored.slug == post["slug"]
    page = requests.get(post["link"], timeout=30).text  # as a visitor
    tags = [t for t in find_images(page) if re.search(r"wp-image-|wp-post-image", t.get("class") or "")]
    assert len(tags) == 4  # three inline and the featured one
    for tag in tags:
        assert tag.src.startswith(f"{wordpress_site.url}/wp-content/uploads/") and tag.get("srcset")
    assert images.base not in page
    assert {t.alt for t in tags} >= {"First", "Same bytes", "Red", "Cover alt"}
    assert "SEO title e2e" in page and "SEO description e2e" in page  # printed by the plugin in <head>

    # Published again: nothing fetched, nothing uploaded.
    hits = sum(images.hits.values())
    again = publish(editor_client, integration, content)
    assert again.status == "success" and again.details["media_uploaded"] == 0
    assert sum(images.hits.values()) == hits and attachment_count(wordpress_site) == before + 3

    # A second post reusing an image reuses its attachment; a future date schedules it.
    when = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    second = factory.content(
        site,
        title="Second e2e",
        content_html=f'<p><img src="{images.url("/c.png")}" alt="Red again"></p>',
        status="published",
        publish_at=when,
    )
    event = publish(editor_client, integration, second)
    assert event.status == "success" and (event.details["media_uploaded"], event.details["media_reused"]) == (0, 1)
    stored = db.session.get(Content, second.id)
    assert stored.external_status == "future"
    post = wp_post(wordpress_site, stored.external_id)
    assert post["status"] == "future" and post["date_gmt"] == when.strftime("%Y-%m-%dT%H:%M:%S")
    assert attachment_count(wordpress_site) == before + 3


def test_without_the_companion_plugin_seo_is_a_warning(wordpress_site, editor_client, factory, site, integration):
    from tests.support.wordpress import eval_php

    eval_php(wordpress_site.name, PLUGIN_ADMIN + "deactivate_plugins(PLUGIN); echo json_encode(true);")
    try:
        content = factory.content(site, title="No plugin e2e", status="published", seo={"title": "Dropped?"})
        event = publish(editor_client, integration, content)
    finally:
        eval_php(wordpress_site.name, PLUGIN_ADMIN + "activate_plugin(PLUGIN); echo json_encode(true);")
    assert event.status == "success", event.error_message
    assert event.details["warnings"] == [{"content_id": content.id, "warning": SEO_NEEDS_PLUGIN}]
    assert db.session.get(Content, content.id).external_id is not None
