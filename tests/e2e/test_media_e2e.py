"""prepare_media against the real WordPress 6.1 (with php-gd) and a local image server: uploads,
reuse, the rewritten tags rendered with srcset, and an interrupted upload found again by its file
name without the plugin (the plugin's hash lookup is tested with the plugin's own routes)."""

from __future__ import annotations

import hashlib
import io
import re
import secrets
from typing import Any

import pytest
import requests
from sqlalchemy import select

from bench.images import noisy_jpeg, png
from integration_service.extensions import db
from integration_service.models import SiteMedia
from integration_service.platforms.base import PostInput
from integration_service.platforms.http import HttpSettings, HttpTransport
from integration_service.platforms.wordpress import WordPressClient
from integration_service.platforms.wordpress.media import WordPressMedia
from integration_service.sync.media import MediaSettings, prepare_media, upload_filename
from integration_service.sync.media_html import find_images
from tests.e2e.article import article_images

pytestmark = pytest.mark.e2e


def wp_client(site: Any, api_key: str | None = None) -> WordPressClient:
    settings = HttpSettings(allow_private=True, max_retries=1)
    credentials = {"username": site.admin_user, "app_password": site.app_password, "api_key": api_key}
    return WordPressClient(site.url, credentials, settings, HttpTransport(settings))


def attachment_count(site: Any) -> int:
    response = requests.get(site.rest("wp/v2/media"), params={"per_page": 1}, auth=site.app_password_auth, timeout=30)
    return int(response.headers["X-WP-Total"])


@pytest.fixture
def images():
    with article_images(
        noisy_jpeg(1, 120_000), png((10, 120, 200), (1200, 630)), png((200, 50, 50), (800, 600))
    ) as server:
        yield server


def test_images_become_attachments_once_and_render_with_srcset(wordpress_site, factory, images):
    site_row = factory.site(url=wordpress_site.url)
    client = wp_client(wordpress_site)
    settings = MediaSettings.for_client(client, {})
    html = (
        "<!-- wp:paragraph -->\n<p>Photos &amp; more</p>\n<!-- /wp:paragraph -->\n"
        f'<figure class="wp-block-image"><img src="{images.url("/a.jpg")}" alt="First"/></figure>\n'
        f'<p><img src="{images.url("/copy/b.jpg")}" alt="Same bytes"> and '
        f'<img src="{images.url("/c.png")}" alt="Red"></p>'
    )
    before = attachment_count(wordpress_site)
    featured = {"url": images.url("/cover.png"), "alt": "Cover alt", "title": "Cover title"}
    prepared = prepare_media(client, site_row.id, html, featured, settings=settings)

    assert prepared.ok and (prepared.uploaded, prepared.reused) == (3, 1)
    assert attachment_count(wordpress_site) == before + 3
    cover = requests.get(
        wordpress_site.rest(f"wp/v2/media/{prepared.featured_media_id}"),
        params={"context": "edit"},
        auth=wordpress_site.app_password_auth,
        timeout=30,
    ).json()
    assert cover["alt_text"] == "Cover alt" and cover["title"]["raw"] == "Cover title"
    assert cover["media_details"]["sizes"]  # php-gd made the sub-sizes

    post = client.create_post(
        PostInput(content_type="post", title="Media e2e", content_html=prepared.content_html, status="published")
    )
    requests.post(
        wordpress_site.rest(f"wp/v2/posts/{post.external_id}"),
        json={"featured_media": prepared.featured_media_id},
        auth=wordpress_site.app_password_auth,
        timeout=30,
    ).raise_for_status()
    page = requests.get(post.url or "", timeout=30).text  # as a visitor
    tags = [t for t in find_images(page) if re.search(r"wp-image-|wp-post-image", t.get("class") or "")]
    assert len(tags) == 4  # the three inline images and the featured one (the theme's wp-post-image)
    for tag in tags:
        assert tag.src.startswith(f"{wordpress_site.url}/wp-content/uploads/")
        assert tag.get("srcset")
    assert images.base not in page
    assert {t.alt for t in tags} >= {"First", "Same bytes", "Red", "Cover alt"}

    # Pushed again: nothing fetched, nothing uploaded.
    hits = sum(images.hits.values())
    again = prepare_media(client, site_row.id, html, featured, settings=settings)
    assert (again.uploaded, again.reused) == (0, 4) and again.content_html == prepared.content_html
    assert sum(images.hits.values()) == hits and attachment_count(wordpress_site) == before + 3


def test_an_interrupted_upload_is_found_by_its_file_name_without_the_plugin(wordpress_site, factory, images):
    site_row = factory.site(url=wordpress_site.url)
    client = wp_client(wordpress_site)  # no API key: the plugin's lookup is not used
    body = png(tuple(secrets.token_bytes(3)), (300, 200))  # new bytes each run: no earlier match
    sha = hashlib.sha256(body).hexdigest()
    images.files["/lost.png"] = body
    url = images.url("/lost.png")
    media = WordPressMedia(client)
    # What a worker killed after WordPress stored the file leaves: the pending row, the attachment.
    row = SiteMedia(
        site_id=site_row.id,
        source_url=url,
        url_hash=hashlib.sha256(url.encode()).hexdigest(),
        sha256=sha,
        filename=upload_filename(url, sha, "png"),
        mime="image/png",
        state="pending",
    )
    db.session.add(row)
    db.session.commit()
    uploaded = media.upload(io.BytesIO(body), filename=row.filename, mime="image/png", sha256=sha, source_url=url)
    before = attachment_count(wordpress_site)

    prepared = prepare_media(
        client, site_row.id, f'<img src="{url}">', None, settings=MediaSettings.for_client(client, {})
    )
    assert prepared.items[0].status == "reused" and prepared.items[0].external_id == str(uploaded.id)
    assert attachment_count(wordpress_site) == before
    stored = db.session.scalars(select(SiteMedia).where(SiteMedia.site_id == site_row.id)).one()
    assert (stored.state, stored.attachment_id) == ("done", uploaded.id)
    assert re.search(rf"wp-image-{uploaded.id}\b", prepared.content_html)
