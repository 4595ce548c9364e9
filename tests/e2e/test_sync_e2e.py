"""The sync engine against the real WordPress (scripts/wordpress-e2e.sh), Celery eager."""

from __future__ import annotations

import uuid

import pytest
import requests

from integration_service.extensions import db
from integration_service.models import Content, SiteIntegration, SyncEvent

pytestmark = pytest.mark.e2e

BASE = "/api/v1/integration/integrations"


def wp_get(wordpress_site, route: str, **params):
    response = requests.get(
        wordpress_site.rest(route), params=params, auth=wordpress_site.app_password_auth, timeout=30
    )
    response.raise_for_status()
    return response


def sync(editor_client, integration, direction: str, full: bool = False) -> SyncEvent:
    response = editor_client.post(f"{BASE}/{integration.id}/sync/", json={"direction": direction, "full": full})
    assert response.status_code == 202, response.get_json()
    db.session.expire_all()
    return db.session.get(SyncEvent, response.get_json()["sync_event_id"])


def test_metadata_sync_stores_the_real_post_types_and_taxonomies(editor_client, integration):
    event = sync(editor_client, integration, "metadata")

    assert event.status == "success", event.error_message
    stored = db.session.get(SiteIntegration, integration.id).config_json["content_types"]
    assert {"post", "page"} <= set(stored["post_types"])
    assert stored["post_types"]["post"]["rest_base"] == "posts"
    assert {"category", "post_tag"} <= set(stored["taxonomies"])
    assert editor_client.get(f"{BASE}/{integration.id}/content_types/").get_json()["post_types"]["page"]
    assert db.session.scalar(db.select(db.func.count(Content.id))) == 0


def wp_posts(wordpress_site, base: str) -> dict[int, dict]:
    """Every post of a collection (any status but trash), by id."""
    posts: dict[int, dict] = {}
    page = 1
    while True:
        response = wp_get(
            wordpress_site,
            f"wp/v2/{base}",
            status="any",
            per_page=100,
            page=page,
            context="edit",
            _fields="id,title,status",
        )
        posts.update({item["id"]: item for item in response.json()})
        if page >= int(response.headers.get("X-WP-TotalPages") or 1):
            return posts
        page += 1


def test_from_external_pull_creates_rows_matching_wordpress(editor_client, integration, wordpress_site):
    before = {post_type: wp_posts(wordpress_site, base) for post_type, base in (("post", "posts"), ("page", "pages"))}

    event = sync(editor_client, integration, "from_external", full=True)

    assert event.status == "success", event.error_message
    after = {post_type: wp_posts(wordpress_site, base) for post_type, base in (("post", "posts"), ("page", "pages"))}
    for post_type, posts in before.items():
        rows = {
            int(row.external_id): row
            for row in db.session.scalars(db.select(Content).where(Content.content_type == post_type))
        }
        unchanged = {post_id: post for post_id, post in posts.items() if after[post_type].get(post_id) == post}
        # The e2e site is shared: compare the posts nobody touched while the sync ran.
        assert set(unchanged) <= set(rows), (post_type, sorted(set(unchanged) - set(rows)))
        assert set(rows) <= set(posts) | set(after[post_type])
        for post_id, post in unchanged.items():
            assert rows[post_id].title == post["title"]["raw"]
            assert rows[post_id].external_status == post["status"]
    assert before["post"] and before["page"], "the sample site has posts and pages"
    assert event.details["created"] == db.session.scalar(db.select(db.func.count(Content.id)))
    # The sample posts carry categories and tags.
    tagged = db.session.scalars(db.select(Content).where(Content.content_type == "post")).all()
    assert any(row.taxonomies.get("tags") for row in tagged)
    assert any(row.taxonomies.get("categories") for row in tagged)


def test_push_creates_a_real_post_and_a_wordpress_edit_is_pulled_back(
    editor_client, factory, integration, site, wordpress_site
):
    from tests.support.wordpress import eval_php

    marker = uuid.uuid4().hex[:8]
    content = factory.content(
        site,
        title=f"Pushed {marker}",
        content_html=f"<p>Body {marker}</p>",
        status="published",
        taxonomies={"tags": [f"e2e-{marker}"]},
    )
    post_id = None
    tag_ids: list[int] = []
    try:
        event = sync(editor_client, integration, "to_external")
        assert event.status == "success", event.error_message
        assert event.details["pushed"] == 1
        db.session.refresh(content)
        post_id = int(content.external_id)
        assert content.external_status == "publish" and content.external_url

        remote = wp_get(wordpress_site, f"wp/v2/posts/{post_id}", context="edit").json()
        assert remote["title"]["raw"] == f"Pushed {marker}"
        assert remote["status"] == "publish"
        assert f"Body {marker}" in remote["content"]["raw"]
        tag_ids = list(remote["tags"])
        assert tag_ids, "the tag was created and attached"
        linked = eval_php(wordpress_site.name, f"echo get_post_meta({post_id}, '_igny8_content_id', true);")
        assert linked.strip() == str(content.id)

        eval_php(
            wordpress_site.name,
            f"wp_update_post(['ID' => {post_id}, 'post_title' => 'Edited in WordPress {marker}', "
            f"'post_status' => 'draft']);",
        )
        response = editor_client.post(
            f"{BASE}/{integration.id}/sync_wordpress_content/", json={"content_id": content.id}
        )
        assert response.status_code == 202, response.get_json()
        db.session.refresh(content)
        assert content.title == f"Edited in WordPress {marker}"
        assert (content.external_status, content.status) == ("draft", "draft")
    finally:  # leave the shared site as it was
        routes = ([f"wp/v2/posts/{post_id}"] if post_id else []) + [f"wp/v2/tags/{tag}" for tag in tag_ids]
        for route in routes:
            requests.delete(
                wordpress_site.rest(route), params={"force": "true"}, auth=wordpress_site.app_password_auth, timeout=30
            )
