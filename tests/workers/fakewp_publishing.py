"""``PublishingWordPress``: the fake WordPress of ``fakewp`` plus what publishing uses, as
WordPress 6.1 answers it: each post type's REST schema (``?_method=OPTIONS``; pages have no
format, sticky or excerpt), the users search (``context=edit``), media by id (``include=``),
and posts that keep excerpt, slug (made unique like WordPress does), date_gmt (a future date
makes ``future``), author (integers only), format, sticky, comment status, featured_media and,
with the companion plugin, its ``igny8_seo`` field. Fixtures: ``pub_wp`` / ``pub_integration``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.workers.fakewp import FakeWordPress, make_integration, wp_time

COMMON = {"id", "date", "date_gmt", "guid", "link", "modified", "modified_gmt", "slug", "status", "type", "title",
          "content", "author", "featured_media", "comment_status", "ping_status", "template", "meta"}  # fmt: skip
SCHEMAS = {
    "post": COMMON | {"excerpt", "format", "sticky", "categories", "tags"},
    "page": COMMON | {"parent", "menu_order"},
}
SEO_EMPTY = {"title": "", "description": "", "focus_keyword": "", "canonical_url": "", "noindex": False}


class PublishingWordPress(FakeWordPress):
    def __init__(self, url: str = "http://127.0.0.1:8999") -> None:
        super().__init__(url)
        self.users = {1: "admin", 2: "jane", 5: "editor"}
        self.media: dict[int, dict[str, Any]] = {}
        self.now = datetime(2026, 6, 1, tzinfo=UTC)  # WordPress's clock, for scheduling

    def add_media(self, source_url: str, alt: str = "") -> int:
        with self.lock:
            media_id = self.next_id
            self.next_id += 1
            self.media[media_id] = {"id": media_id, "source_url": source_url, "alt_text": alt}
            return media_id

    def add_post(self, title: str = "", post_type: str = "post", status: str = "publish", **kwargs: Any):
        publishing = {key: kwargs.pop(key) for key in list(kwargs) if key in _PUBLISHING}
        post = super().add_post(title, post_type, status, **kwargs)
        post.update(_defaults(post["id"], post_type))
        post.update(publishing)
        return post

    def handle(self, method, path, query, body, headers=None):
        route = path.split("/wp-json/", 1)[1] if "/wp-json/" in path else query.get("rest_route", "").lstrip("/")
        route = route.strip("/")
        if route in ("wp/v2/posts", "wp/v2/pages") and query.get("_method") == "OPTIONS":
            with self.lock:
                self.requests.append({"method": "OPTIONS", "route": route, "query": dict(query), "body": body})
            post_type = "post" if route.endswith("posts") else "page"
            properties = {name: {"type": "string"} for name in SCHEMAS[post_type]}
            return 200, {}, {"namespace": "wp/v2", "schema": {"title": post_type, "properties": properties}}
        if route == "wp/v2/users" and method == "GET":
            with self.lock:
                self.requests.append({"method": method, "route": route, "query": dict(query), "body": body})
            wanted = query.get("search", "").lower()
            found = [
                {"id": uid, "username": login, "slug": login} for uid, login in self.users.items() if wanted in login
            ]
            return 200, {}, found
        if route == "wp/v2/media" and method == "GET":
            with self.lock:
                self.requests.append({"method": method, "route": route, "query": dict(query), "body": body})
            ids = [int(value) for value in query.get("include", "").split(",") if value]
            return 200, {}, [dict(self.media[media_id]) for media_id in ids if media_id in self.media]
        return super().handle(method, path, query, body, headers)

    def render(self, post: dict[str, Any]) -> dict[str, Any]:
        body = super().render(post)
        if not isinstance(body.get("id"), int):
            return body
        body.update(
            slug=post.get("slug", ""),
            date_gmt=wp_time(post.get("date_gmt") or post["modified_gmt"]),
            author=post.get("author", 1),
            featured_media=post.get("featured_media", 0),
            comment_status=post.get("comment_status", "open"),
        )
        if post["type"] == "post":
            body.update(
                excerpt={"raw": post.get("excerpt", ""), "rendered": f"<p>{post.get('excerpt', '')}</p>"},
                format=post.get("format", "standard"),
                sticky=post.get("sticky", False),
            )
        if self.plugin:
            body["igny8_seo"] = {**SEO_EMPTY, **(post.get("igny8_seo") or {})}
        return body

    def _write(self, post_type: str, post_id: int | None, body: dict[str, Any]):
        body = dict(body)
        if "author" in body and not isinstance(body["author"], int):
            return 400, {}, {"code": "rest_invalid_param", "message": "Invalid parameter(s): author", "data": {}}
        if "author" in body and body["author"] not in self.users:
            return 400, {}, {"code": "rest_invalid_author", "message": "Invalid author ID.", "data": {}}
        extra = {key: body.pop(key) for key in list(body) if key in _PUBLISHING and key in SCHEMAS[post_type]}
        seo = body.pop("igny8_seo", None)
        status, headers, answer = super()._write(post_type, post_id, body)
        if status >= 400:
            return status, headers, answer
        with self.lock:
            post = self.posts[answer["id"]]
            if status == 201:
                post.update(_defaults(post["id"], post_type))
            if "slug" in extra:
                extra["slug"] = self._unique_slug(extra["slug"], post["id"])
            if "date_gmt" in extra:
                extra["date_gmt"] = datetime.fromisoformat(extra["date_gmt"]).replace(tzinfo=UTC)
            post.update(extra)
            if seo is not None and self.plugin:
                post["igny8_seo"] = dict(seo)
            date = post.get("date_gmt")
            if post["status"] in ("publish", "future") and isinstance(date, datetime):
                post["status"] = "future" if date > self.now else "publish"
            answer = self.render(post)
        return status, headers, answer

    def _unique_slug(self, slug: str, post_id: int) -> str:
        taken = {post.get("slug") for other_id, post in self.posts.items() if other_id != post_id}
        candidate, number = slug.lower(), 2
        while candidate in taken:
            candidate, number = f"{slug.lower()}-{number}", number + 1
        return candidate

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST" and r["route"].startswith("wp/v2/")]

    def media_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["route"] == "wp/v2/media"]


_PUBLISHING = (
    "excerpt",
    "slug",
    "date_gmt",
    "author",
    "format",
    "sticky",
    "comment_status",
    "featured_media",
    "igny8_seo",
)


def _defaults(post_id: int, post_type: str) -> dict[str, Any]:
    return {"slug": f"{post_type}-{post_id}", "author": 1, "featured_media": 0, "comment_status": "open"}


def _fixtures() -> tuple[Any, Any]:
    import pytest
    import responses

    @pytest.fixture
    def pub_wp():
        fake = PublishingWordPress()
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            fake.mount(rsps)
            yield fake

    @pytest.fixture
    def pub_integration(factory, site, pub_wp):
        return make_integration(factory, site, pub_wp.url)

    return pub_wp, pub_integration


pub_wp, pub_integration = _fixtures()
