"""WordPressClient's publishing fields against the fake WordPress: what a write sends (only what
the post type's schema has; author logins resolved once; scheduling; SEO through the companion
plugin only) and what a read fills back (featured images in one media request per page)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integration_service.platforms.base import PlatformError, PostInput
from integration_service.platforms.registry import client_for
from integration_service.platforms.wordpress import site_cache

FUTURE = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
PAST = datetime(2025, 1, 15, 12, 30, tzinfo=UTC)


def post_input(**fields) -> PostInput:
    values = {"content_type": "post", "title": "Hello", "content_html": "<p>Hi</p>", "status": "published"}
    values.update(fields)
    return PostInput(**values)


def written(pub_wp) -> dict:
    return pub_wp.writes()[-1]["body"]


def test_a_post_gets_every_field(pub_wp, pub_integration):
    with client_for(pub_integration) as client:
        remote = client.create_post(
            post_input(
                excerpt="Summary",
                slug="hello",
                publish_at=PAST,
                author="jane",
                format="aside",
                sticky=True,
                comment_status="closed",
                featured_media=42,
            )
        )
    body = written(pub_wp)
    assert body["excerpt"] == "Summary" and body["slug"] == "hello"
    assert body["date_gmt"] == "2025-01-15T12:30:00"  # back-dated, in UTC without a suffix
    assert body["status"] == "publish"
    assert (body["author"], body["format"], body["sticky"], body["comment_status"]) == (2, "aside", True, "closed")
    assert body["featured_media"] == 42
    assert remote.status == "publish"
    assert remote.publishing["slug"] == "hello" and remote.publishing["author"] == "2"
    assert remote.publishing["publish_at"] == PAST


def test_a_future_publish_at_schedules_the_post(pub_wp, pub_integration, monkeypatch):
    with client_for(pub_integration) as client:
        remote = client.create_post(post_input(publish_at=FUTURE))
        client.create_post(post_input(publish_at=FUTURE, status="review"))
    assert pub_wp.writes()[0]["body"]["status"] == "future"
    assert pub_wp.writes()[0]["body"]["date_gmt"] == "2027-03-01T08:00:00"
    assert remote.status == "future" and remote.content_status == "published"
    assert pub_wp.writes()[1]["body"]["status"] == "pending"  # only a published content is scheduled


def test_pages_get_no_format_sticky_or_excerpt_and_the_schema_is_read_once(pub_wp, pub_integration):
    with client_for(pub_integration) as client:
        for _ in range(3):
            client.create_post(
                post_input(content_type="page", excerpt="x", format="aside", sticky=True, comment_status="open")
            )
    body = written(pub_wp)
    assert "format" not in body and "sticky" not in body and "excerpt" not in body
    assert body["comment_status"] == "open"
    schema_reads = [r for r in pub_wp.requests if r["method"] == "OPTIONS"]
    assert [r["route"] for r in schema_reads] == ["wp/v2/pages"]


def test_author_logins_are_resolved_once_per_client_and_ids_pass_through(pub_wp, pub_integration):
    with client_for(pub_integration) as client:
        for _ in range(3):
            client.create_post(post_input(author="editor"))
        client.create_post(post_input(author="5"))
    assert [w["body"]["author"] for w in pub_wp.writes()] == [5, 5, 5, 5]
    assert len([r for r in pub_wp.requests if r["route"] == "wp/v2/users"]) == 1
    lookup = next(r for r in pub_wp.requests if r["route"] == "wp/v2/users")
    assert lookup["query"]["search"] == "editor" and lookup["query"]["context"] == "edit"


def test_an_unknown_author_fails_that_post_naming_it(pub_wp, pub_integration):
    pub_wp.users[9] = "editor-in-chief"  # a search hit that is not the login
    with client_for(pub_integration) as client, pytest.raises(PlatformError) as caught:
        client.create_post(post_input(author="chief"))
    assert "'chief'" in str(caught.value) and not caught.value.ends_job
    assert pub_wp.writes() == []


def test_seo_is_sent_as_the_plugin_field_only_with_the_plugin(pub_wp, pub_integration):
    seo = {"title": "T", "noindex": True}
    with client_for(pub_integration) as client:
        assert client.supports_seo() is False
        client.create_post(post_input(seo=seo))
    assert "igny8_seo" not in written(pub_wp)

    pub_wp.plugin = True
    # The plugin's activation pushes the structure, which drops the remembered REST root.
    site_cache.clear()
    with client_for(pub_integration) as client:
        assert client.supports_seo() is True
        remote = client.create_post(post_input(seo=seo))
    assert written(pub_wp)["igny8_seo"] == {
        "title": "T",
        "description": "",
        "focus_keyword": "",
        "canonical_url": "",
        "noindex": True,
    }
    assert remote.publishing["seo"] == {"title": "T", "noindex": True}


def test_unset_fields_are_not_sent(pub_wp, pub_integration):
    with client_for(pub_integration) as client:
        client.create_post(post_input())
    assert set(written(pub_wp)) == {"title", "content", "status"}  # no content_id: no meta


def test_a_page_of_posts_resolves_featured_images_in_one_request(pub_wp, pub_integration):
    first = pub_wp.add_media("http://127.0.0.1:8999/wp-content/uploads/a.png", alt="A")
    second = pub_wp.add_media("http://127.0.0.1:8999/wp-content/uploads/b.png")
    for index in range(6):
        pub_wp.add_post(featured_media=(first, second, 0)[index % 3], excerpt="E", slug=f"s-{index}")
    with client_for(pub_integration) as client:
        page = client.list_posts("post", 1)
    assert len(pub_wp.media_requests()) == 1
    assert set(pub_wp.media_requests()[0]["query"]["include"].split(",")) == {str(first), str(second)}
    images = [post.publishing["featured_image"] for post in page.posts]
    assert (
        images
        == [
            {"url": "http://127.0.0.1:8999/wp-content/uploads/a.png", "alt": "A"},
            {"url": "http://127.0.0.1:8999/wp-content/uploads/b.png"},
            None,
        ]
        * 2
    )
    assert page.posts[0].publishing["featured_media"] == {
        "id": first,
        "url": "http://127.0.0.1:8999/wp-content/uploads/a.png",
    }
    assert page.posts[0].publishing["excerpt"] == "E" and page.posts[0].publishing["slug"] == "s-0"


def test_a_page_without_featured_images_asks_for_no_media(pub_wp, pub_integration):
    pub_wp.add_posts(3)
    with client_for(pub_integration) as client:
        client.list_posts("post", 1)
    assert pub_wp.media_requests() == []


def test_a_draft_has_no_publish_at(pub_wp, pub_integration):
    pub_wp.add_post(status="draft", date_gmt=PAST)
    pub_wp.add_post(status="future", date_gmt=FUTURE)
    with client_for(pub_integration) as client:
        draft, scheduled = client.list_posts("post", 1).posts
    assert draft.publishing["publish_at"] is None
    assert scheduled.publishing["publish_at"] == FUTURE and scheduled.content_status == "published"


def test_a_lean_listing_carries_no_publishing_fields(pub_wp, pub_integration):
    pub_wp.add_posts(2)
    with client_for(pub_integration) as client:
        page = client.get_posts("post", ["1", "2"], lean=True)
    # The fake ignores _fields; the client asked for id and modified_gmt only.
    assert pub_wp.list_requests()[-1]["query"]["_fields"] == "id,modified_gmt"
    assert len(page.posts) == 2


def test_the_schema_lookup_failing_sends_every_field(pub_wp, pub_integration, monkeypatch):
    original = pub_wp.handle

    def no_schema(method, path, query, body, headers=None):
        if query.get("_method") == "OPTIONS":
            return 404, {}, {"code": "rest_no_route", "message": "No route.", "data": {}}
        return original(method, path, query, body, headers)

    monkeypatch.setattr(pub_wp, "handle", no_schema)
    with client_for(pub_integration) as client:
        client.create_post(post_input(content_type="page", format="aside", publish_at=PAST + timedelta(days=1)))
    assert written(pub_wp)["format"] == "aside"
