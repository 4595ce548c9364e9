"""WordPressClient posts, structure and terms against a WordPress faked with ``responses``."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from responses import matchers

from integration_service.platforms.base import PlatformError, PostInput, PostNotFound
from tests.platforms.fakes import (
    API_KEY,
    SITE,
    add_wordpress,
    fake_dns_fixture,  # noqa: F401 - fixture
    make_client,
    mocked_fixture,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.usefixtures("fake_dns")

API = f"{SITE}/wp-json/wp/v2"
TYPES = {
    "post": {
        "slug": "post",
        "name": "Posts",
        "rest_base": "posts",
        "rest_namespace": "wp/v2",
        "taxonomies": ["category", "post_tag"],
        "hierarchical": False,
    },
    "page": {
        "slug": "page",
        "name": "Pages",
        "rest_base": "pages",
        "rest_namespace": "wp/v2",
        "taxonomies": [],
        "hierarchical": True,
    },
}
TAXONOMIES = {
    "category": {"slug": "category", "name": "Categories", "rest_base": "categories", "types": ["post"]},
    "post_tag": {"slug": "post_tag", "name": "Tags", "rest_base": "tags", "types": ["post"]},
}


def wp_post(post_id: int, raw: bool = True) -> dict:
    title = {"raw": f"Post {post_id}", "rendered": f"Post {post_id}"} if raw else {"rendered": "Rock &amp; Roll"}
    content = {"raw": "<p>raw</p>", "rendered": "<p>rendered</p>"} if raw else {"rendered": "<p>rendered</p>"}
    return {
        "id": post_id,
        "type": "post",
        "title": title,
        "content": content,
        "status": "publish",
        "link": f"{SITE}/?p={post_id}",
        "modified_gmt": "2026-05-01T10:00:00",
        "categories": [1, 2],
        "tags": [5],
    }


@pytest.fixture
def wp(mocked: responses.RequestsMock) -> responses.RequestsMock:
    add_wordpress(mocked)
    mocked.get(f"{API}/types", json=TYPES)
    mocked.get(f"{API}/taxonomies", json=TAXONOMIES)
    return mocked


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def test_list_posts_sends_the_right_query_and_maps_posts(wp: responses.RequestsMock) -> None:
    wp.get(f"{API}/posts", json=[wp_post(1), wp_post(2)], headers={"X-WP-Total": "2", "X-WP-TotalPages": "1"})
    since = datetime(2026, 4, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    page = make_client().list_posts("post", 1, modified_after=since, fields=["modified_gmt", "title"])
    call = next(c for c in wp.calls if urlsplit(c.request.url).path == "/wp-json/wp/v2/posts")
    params = query(call)
    assert params["per_page"] == ["100"] and params["page"] == ["1"]
    assert params["context"] == ["edit"] and params["status"] == ["any"]
    assert params["orderby"] == ["id"] and params["order"] == ["asc"]
    assert params["modified_after"] == ["2026-04-01T10:00:00Z"]
    assert params["_fields"] == ["id,modified_gmt,title"]
    assert call.request.headers["Authorization"].startswith("Basic ")
    assert page.total == 2 and page.total_pages == 1
    first = page.posts[0]
    assert first.external_id == "1" and first.title == "Post 1" and first.content_html == "<p>raw</p>"
    assert first.status == "publish" and first.url == f"{SITE}/?p=1"
    assert first.modified_gmt == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert first.taxonomies == {"categories": [1, 2], "tags": [5]}


def test_list_posts_anonymous_uses_view_context(wp: responses.RequestsMock) -> None:
    wp.get(f"{API}/posts", json=[wp_post(3, raw=False)], headers={"X-WP-Total": "1", "X-WP-TotalPages": "1"})
    page = make_client(credentials={"api_key": API_KEY}).list_posts("post", 1)
    call = next(c for c in wp.calls if urlsplit(c.request.url).path == "/wp-json/wp/v2/posts")
    assert query(call)["context"] == ["view"] and "status" not in query(call)
    assert "Authorization" not in call.request.headers
    assert page.posts[0].title == "Rock & Roll" and page.posts[0].content_html == "<p>rendered</p>"


def test_page_past_the_end_is_empty(wp: responses.RequestsMock) -> None:
    wp.get(f"{API}/posts", status=400, json={"code": "rest_post_invalid_page_number", "message": "x"})
    page = make_client().list_posts("post", 9)
    assert page.posts == []


def test_pages_walks_every_page(wp: responses.RequestsMock) -> None:
    for number in (1, 2, 3):
        wp.get(
            f"{API}/posts",
            json=[wp_post(number)],
            headers={"X-WP-Total": "3", "X-WP-TotalPages": "3"},
            match=[matchers.query_param_matcher({"page": str(number)}, strict_match=False)],
        )
    ids = [post.external_id for page in make_client().pages("post", per_page=1, concurrency=2) for post in page.posts]
    assert ids == ["1", "2", "3"]


def test_pages_go_on_fetching_while_the_caller_stores_a_page(wp: responses.RequestsMock) -> None:
    """With a slow caller, the scan keeps ``concurrency`` requests going (never more) until
    PAGES_AHEAD_PER_REQUEST x concurrency pages wait, instead of idling the site."""
    from integration_service.platforms.wordpress.paging import PAGES_AHEAD_PER_REQUEST

    lock = threading.Lock()
    fetched: list[int] = []
    in_flight = [0, 0]  # now, most at once

    def page(request: Any) -> tuple[int, dict[str, str], str]:
        number = int(parse_qs(urlsplit(request.url).query)["page"][0])
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        time.sleep(0.02)
        with lock:
            in_flight[0] -= 1
            fetched.append(number)
        return 200, {"X-WP-Total": "12", "X-WP-TotalPages": "12"}, json.dumps([wp_post(number)])

    wp.add_callback(responses.GET, f"{API}/posts", callback=page)
    concurrency = 2
    scan = make_client().pages("post", per_page=1, concurrency=concurrency)
    assert next(scan).number == 1 and next(scan).number == 2
    # The caller is busy with page 2: the pages after it are fetched meanwhile, up to the cap.
    ahead = PAGES_AHEAD_PER_REQUEST * concurrency
    deadline = time.monotonic() + 5
    while len(fetched) < 2 + ahead and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert sorted(fetched) == list(range(1, 3 + ahead))
    assert [p.number for p in scan] == list(range(3, 13))
    assert sorted(fetched) == list(range(1, 13)) and in_flight[1] == concurrency


def test_rest_base_comes_from_the_types_endpoint(wp: responses.RequestsMock) -> None:
    wp.get(f"{API}/pages", json=[], headers={"X-WP-Total": "0", "X-WP-TotalPages": "0"})
    client = make_client()
    client.list_posts("page", 1)
    client.list_posts("page", 1)
    assert len([c for c in wp.calls if c.request.url.startswith(f"{API}/types")]) == 1  # cached per client


def test_unknown_post_type(wp: responses.RequestsMock) -> None:
    with pytest.raises(PlatformError, match="no REST-enabled post type 'product'"):
        make_client().list_posts("product", 1)


def test_get_post_and_not_found(wp: responses.RequestsMock) -> None:
    wp.get(f"{API}/posts/1", json=wp_post(1))
    wp.get(f"{API}/posts/99", status=404, json={"code": "rest_post_invalid_id", "message": "Invalid post ID."})
    client = make_client()
    assert client.get_post("post", "1").title == "Post 1"
    with pytest.raises(PostNotFound):
        client.get_post("post", "99")
    with pytest.raises(PostNotFound):
        client.get_post("post", "not-a-number")


def test_create_post_resolves_term_names_and_sets_meta(wp: responses.RequestsMock) -> None:
    wp.get(f"{API}/categories", json=[{"id": 3, "name": "News &amp; Views", "slug": "news-views"}])
    wp.get(f"{API}/tags", json=[])
    wp.post(f"{API}/tags", status=201, json={"id": 12, "name": "fresh"})
    wp.post(f"{API}/posts", status=201, json={**wp_post(50), "status": "draft"})
    post = make_client().create_post(
        PostInput(
            content_type="post",
            title="Hello",
            content_html="<p>Hi</p>",
            status="draft",
            taxonomies={"categories": ["News & Views", 7], "post_tag": ["fresh"]},
            meta={"_igny8_content_id": 42},
        )
    )
    created = next(c for c in wp.calls if c.request.method == "POST" and c.request.url.startswith(f"{API}/posts"))
    body = json.loads(created.request.body)
    assert body == {
        "title": "Hello",
        "content": "<p>Hi</p>",
        "status": "draft",
        "categories": [3, 7],
        "tags": [12],
        "meta": {"_igny8_content_id": 42},
    }
    assert post.external_id == "50" and post.status == "draft"


def test_existing_term_race_uses_the_term_id_wordpress_reports(wp: responses.RequestsMock) -> None:
    wp.get(f"{API}/tags", json=[])
    wp.post(f"{API}/tags", status=400, json={"code": "term_exists", "message": "exists", "data": {"term_id": 33}})
    wp.post(f"{API}/posts", status=201, json=wp_post(51))
    make_client().create_post(PostInput("post", "T", "C", "publish", taxonomies={"tags": ["old"]}))
    created = next(c for c in wp.calls if c.request.url.startswith(f"{API}/posts"))
    assert json.loads(created.request.body)["tags"] == [33]


def test_update_post_and_missing_post(wp: responses.RequestsMock) -> None:
    wp.post(f"{API}/posts/5", json=wp_post(5))
    wp.post(f"{API}/posts/6", status=404, json={"code": "rest_post_invalid_id", "message": "Invalid post ID."})
    client = make_client()
    assert client.update_post("5", PostInput("post", "T", "C", "publish")).external_id == "5"
    with pytest.raises(PostNotFound):
        client.update_post("6", PostInput("post", "T", "C", "publish"))


def test_writes_need_an_application_password(wp: responses.RequestsMock) -> None:
    with pytest.raises(PlatformError) as excinfo:
        make_client(credentials={"api_key": API_KEY}).create_post(PostInput("post", "T", "C", "draft"))
    assert excinfo.value.stage == "auth"


def test_auth_and_transient_errors_carry_stage_and_retry_after(wp: responses.RequestsMock) -> None:
    wp.get(f"{API}/posts/1", status=401, json={"code": "rest_forbidden", "message": "no"})
    wp.get(f"{API}/posts/2", status=503, headers={"Retry-After": "120"})
    client = make_client()
    with pytest.raises(PlatformError) as auth:
        client.get_post("post", "1")
    assert auth.value.stage == "auth" and not auth.value.transient
    with pytest.raises(PlatformError) as busy:
        client.get_post("post", "2")
    assert busy.value.transient and busy.value.retry_after == 120 and busy.value.status_code == 503


def test_fetch_structure(wp: responses.RequestsMock) -> None:
    structure = make_client().fetch_structure()
    assert structure["post_types"]["post"]["rest_base"] == "posts"
    assert structure["post_types"]["post"]["taxonomies"] == ["category", "post_tag"]
    assert structure["taxonomies"]["post_tag"]["rest_base"] == "tags"


def test_query_style_urls_are_used_for_every_call(mocked: responses.RequestsMock) -> None:
    from tests.platforms.fakes import index

    mocked.get(f"{SITE}/wp-json/", status=404, body="<html>/wp-content/</html>")

    def route(rest_route: str):
        return [matchers.query_param_matcher({"rest_route": rest_route}, strict_match=False)]

    mocked.get(f"{SITE}/", json=index(), match=route("/"))
    mocked.get(f"{SITE}/", json=TYPES, match=route("/wp/v2/types"))
    mocked.get(f"{SITE}/", json=TAXONOMIES, match=route("/wp/v2/taxonomies"))
    mocked.get(
        f"{SITE}/", json=[wp_post(1)], headers={"X-WP-Total": "1", "X-WP-TotalPages": "1"}, match=route("/wp/v2/posts")
    )
    page = make_client().list_posts("post", 1)
    assert [post.external_id for post in page.posts] == ["1"]
    assert all(urlsplit(call.request.url).path == "/" for call in mocked.calls[1:])


def test_list_posts_asks_only_for_the_fields_it_maps(wp: responses.RequestsMock) -> None:
    # WordPress skips rendering what nobody asked for; content.raw alone avoids the_content filters.
    wp.get(f"{API}/posts", json=[wp_post(1)], headers={"X-WP-Total": "1", "X-WP-TotalPages": "1"})
    make_client().list_posts("post", 1)
    call = next(c for c in wp.calls if urlsplit(c.request.url).path == "/wp-json/wp/v2/posts")
    requested = set(query(call)["_fields"][0].split(","))
    assert {
        "id",
        "type",
        "status",
        "link",
        "modified_gmt",
        "title.raw",
        "content.raw",
        "categories",
        "tags",
    } <= requested
    assert "content.rendered" not in requested and "excerpt" not in requested


def test_a_failing_taxonomy_lookup_is_made_once_per_list_not_once_per_post(mocked: responses.RequestsMock) -> None:
    add_wordpress(mocked)
    mocked.get(f"{API}/types", json=TYPES)
    taxonomies = mocked.get(f"{API}/taxonomies", status=500, json={"code": "boom"})
    mocked.get(
        f"{API}/posts", json=[wp_post(i) for i in range(1, 6)], headers={"X-WP-Total": "5", "X-WP-TotalPages": "1"}
    )
    page = make_client().list_posts("post", 1)
    assert len(page.posts) == 5
    # The default rest bases still map the terms.
    assert page.posts[0].taxonomies == {"categories": [1, 2], "tags": [5]}
    assert taxonomies.call_count == 1
