"""A small in-memory WordPress REST API for sync tests.

``FakeWordPress.handle(method, path, query, body)`` answers like WordPress 6.1 does for the
routes the sync engine uses (REST index, /wp/v2/types, /wp/v2/taxonomies, post collections with
``per_page``/``page``/``modified_after``/``orderby=modified``, single posts, create and update).
Unit tests mount it on ``responses``; integration tests serve it over real HTTP from a thread
(``serve()``), because a worker in another process cannot see ``responses`` mocks.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
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
    "attachment": {
        "slug": "attachment",
        "name": "Media",
        "rest_base": "media",
        "rest_namespace": "wp/v2",
        "taxonomies": [],
        "hierarchical": False,
    },
}
TAXONOMIES = {
    "category": {
        "slug": "category",
        "name": "Categories",
        "rest_base": "categories",
        "rest_namespace": "wp/v2",
        "types": ["post"],
        "hierarchical": True,
    },
    "post_tag": {
        "slug": "post_tag",
        "name": "Tags",
        "rest_base": "tags",
        "rest_namespace": "wp/v2",
        "types": ["post"],
        "hierarchical": False,
    },
}
BASES = {"posts": "post", "pages": "page"}


def wp_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class FakeWordPress:
    def __init__(self, url: str = "http://127.0.0.1:8999") -> None:
        self.url = url.rstrip("/")
        self.posts: dict[int, dict[str, Any]] = {}
        self.next_id = 1
        self.clock = BASE_TIME
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        # Behaviour switches for failure tests.
        self.list_status: int | None = None  # answer every collection request with this status
        self.auth_status: int | None = None  # answer every authenticated route with this status
        self.supports_modified_after = True  # False: WordPress < 5.7 ignores the parameter
        self.list_delay = 0.0  # seconds to sleep per collection page
        self.malformed_ids: set[int] = set()  # posts listed with a broken body
        # Like MySQL ordering rows with equal modified times differently from one query to the next.
        self.unstable_ties = False
        self.plugin = False  # the IGNY8 Bridge namespace (and its posts?content_id= lookup) is served
        self.create_delay = 0.0  # seconds to stall after storing a created post, before answering
        self.created = threading.Event()  # set once a create has stored its post

    # -- content ------------------------------------------------------------------------

    def tick(self, seconds: int = 60) -> datetime:
        self.clock += timedelta(seconds=seconds)
        return self.clock

    def add_post(
        self,
        title: str = "",
        post_type: str = "post",
        status: str = "publish",
        content: str = "<p>Hello</p>",
        categories: list[int] | None = None,
        tags: list[int] | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            post_id = self.next_id
            self.next_id += 1
            post = {
                "id": post_id,
                "type": post_type,
                "title": title or f"{post_type.title()} {post_id}",
                "content": content,
                "status": status,
                "modified_gmt": self.tick(),
                "categories": categories if categories is not None else ([1] if post_type == "post" else None),
                "tags": tags if tags is not None else ([] if post_type == "post" else None),
                "meta": {},
            }
            self.posts[post_id] = post
            return post

    def add_posts(self, count: int, post_type: str = "post", same_time: bool = False) -> list[dict[str, Any]]:
        posts = [self.add_post(post_type=post_type) for _ in range(count)]
        if same_time:  # like a bulk import: one modified time for all
            for post in posts:
                post["modified_gmt"] = posts[0]["modified_gmt"]
        return posts

    def edit_post(self, post_id: int, **changes: Any) -> dict[str, Any]:
        with self.lock:
            post = self.posts[post_id]
            post.update(changes)
            post["modified_gmt"] = self.tick()
            return post

    def delete_post(self, post_id: int) -> None:
        with self.lock:
            self.posts.pop(post_id)

    def render(self, post: dict[str, Any]) -> dict[str, Any]:
        base = "posts" if post["type"] == "post" else "pages"
        if post["id"] in self.malformed_ids:
            return {"id": "not-a-number", "title": None, "content": 42, "modified_gmt": "yesterday"}
        body = {
            "id": post["id"],
            "type": post["type"],
            "link": f"{self.url}/?p={post['id']}",
            "status": post["status"],
            "modified_gmt": wp_time(post["modified_gmt"]),
            "title": {"raw": post["title"], "rendered": post["title"]},
            "content": {"raw": post["content"], "rendered": post["content"]},
            "meta": dict(post["meta"]),
            "_links": {"self": [{"href": f"{self.url}/wp-json/wp/v2/{base}/{post['id']}"}]},
        }
        if post["type"] == "post":
            body["categories"] = list(post["categories"] or [])
            body["tags"] = list(post["tags"] or [])
        return body

    # -- HTTP -----------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        route = path.split("/wp-json/", 1)[1] if "/wp-json/" in path else query.get("rest_route", "").lstrip("/")
        route = route.strip("/")
        authenticated = bool(headers and headers.get("Authorization"))
        with self.lock:
            self.requests.append({"method": method, "route": route, "query": dict(query), "body": body})
        if route == "":
            return (
                200,
                {},
                {
                    "name": "Fake",
                    "url": self.url,
                    "home": self.url,
                    "namespaces": ["wp/v2", *(["igny8/v1"] if self.plugin else [])],
                    "gmt_offset": 0,
                    "timezone_string": "UTC",
                    "authentication": {},
                },
            )
        if self.auth_status and authenticated:
            return self.auth_status, {}, {"code": "rest_not_logged_in", "message": "Sorry.", "data": {}}
        if route == "igny8/v1/posts" and self.plugin:
            if not (headers and headers.get("X-API-Key")):
                return 401, {}, {"code": "igny8_bridge_unauthorized", "message": "Missing API key.", "data": {}}
            wanted = int(query.get("content_id", 0))
            with self.lock:
                found = sorted(p["id"] for p in self.posts.values() if p["meta"].get("_igny8_content_id") == wanted)
            return 200, {}, [{"id": post_id, "type": self.posts[post_id]["type"]} for post_id in found]
        if route == "wp/v2/types":
            return 200, {}, TYPES
        if route == "wp/v2/taxonomies":
            return 200, {}, TAXONOMIES
        match = re.fullmatch(r"wp/v2/(posts|pages)(?:/(\d+))?", route)
        if not match:
            return 404, {}, {"code": "rest_no_route", "message": "No route.", "data": {"status": 404}}
        post_type = BASES[match.group(1)]
        post_id = int(match.group(2)) if match.group(2) else None
        if method == "GET" and post_id is None:
            return self._list(post_type, query)
        if method == "GET":
            post = self.posts.get(post_id)
            if post is None or post["type"] != post_type:
                return 404, {}, {"code": "rest_post_invalid_id", "message": "Invalid post ID.", "data": {}}
            return 200, {}, self.render(post)
        if method == "POST":
            return self._write(post_type, post_id, body or {})
        return 405, {}, {"code": "rest_no_route", "message": "Method not allowed.", "data": {}}

    def _list(self, post_type: str, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if self.list_status:
            return self.list_status, {}, {"code": "unavailable", "message": "Try later.", "data": {}}
        if self.list_delay:
            time.sleep(self.list_delay)
        per_page = int(query.get("per_page", 10))
        page = int(query.get("page", 1))
        with self.lock:
            items = [post for post in self.posts.values() if post["type"] == post_type]
        if "modified_after" in query and self.supports_modified_after:
            after = datetime.fromisoformat(query["modified_after"].replace("Z", "+00:00"))
            if after.tzinfo is None:
                after = after.replace(tzinfo=UTC)
            items = [post for post in items if post["modified_gmt"] > after]
        if "include" in query:
            wanted = {int(value) for value in query["include"].split(",") if value}
            items = [post for post in items if post["id"] in wanted]
        if query.get("search"):
            items = [post for post in items if query["search"].lower() in post["title"].lower()]
        direction = -1 if self.unstable_ties and page % 2 == 0 else 1
        items.sort(key=lambda post: (post["modified_gmt"], direction * post["id"]))
        total = len(items)
        total_pages = (total + per_page - 1) // per_page
        if page > max(total_pages, 1):
            return 400, {}, {"code": "rest_post_invalid_page_number", "message": "Page too big.", "data": {}}
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(total_pages)}
        return 200, headers, [self.render(post) for post in chunk]

    def _write(self, post_type: str, post_id: int | None, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            if post_id is None:
                post_id = self.next_id
                self.next_id += 1
                post = {
                    "id": post_id,
                    "type": post_type,
                    "title": "",
                    "content": "",
                    "status": "draft",
                    "categories": [1] if post_type == "post" else None,
                    "tags": [] if post_type == "post" else None,
                    "meta": {},
                }
                self.posts[post_id] = post
                status = 201
            else:
                post = self.posts.get(post_id)
                if post is None:
                    return 404, {}, {"code": "rest_post_invalid_id", "message": "Invalid post ID.", "data": {}}
                status = 200
            for key, target in (("title", "title"), ("content", "content"), ("status", "status")):
                if key in body:
                    post[target] = body[key]
            for key in ("categories", "tags"):
                if key in body:
                    post[key] = list(body[key])
            post["meta"].update(body.get("meta") or {})
            post["modified_gmt"] = self.tick()
            answer = self.render(post)
        if status == 201:
            self.created.set()
            if self.create_delay:
                time.sleep(self.create_delay)  # like a worker dying before it stores the new id
        return status, {}, answer

    def list_requests(self, post_type_base: str = "posts") -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "GET" and r["route"] == f"wp/v2/{post_type_base}"]

    # -- mounting -------------------------------------------------------------------------

    def mount(self, rsps: Any) -> None:
        """Answer every request to ``self.url`` through a ``responses.RequestsMock``."""

        def callback(request: Any) -> tuple[int, dict[str, str], str]:
            parts = urlsplit(request.url)
            query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
            body = json.loads(request.body) if request.body else None
            status, headers, payload = self.handle(request.method, parts.path, query, body, dict(request.headers))
            return status, {"Content-Type": "application/json", **headers}, json.dumps(payload)

        pattern = re.compile(re.escape(self.url) + r"/.*")
        for method in ("GET", "POST"):
            rsps.add_callback(method, pattern, callback=callback)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
        """Serve over real HTTP from a daemon thread; sets ``self.url``. Call ``shutdown()`` after."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                parts = urlsplit(self.path)
                query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                status, headers, payload = fake.handle(self.command, parts.path, query, body, dict(self.headers))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        self.url = f"http://{host}:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


# -- pytest fixtures (import them into a test module to use them) -----------------------------

APP_PASSWORD = "abcd efgh ijkl mnop qrst uvwx"


def make_integration(factory: Any, site: Any, url: str, **fields: Any) -> Any:
    """A WordPress integration of ``site`` pointing at ``url`` with Application Password credentials."""
    credentials = {"api_key": site.plain_api_key, "username": "admin", "app_password": APP_PASSWORD}
    return factory.integration(site, config_json={"site_url": url}, credentials_json=credentials, **fields)


def _fixtures() -> tuple[Any, Any]:
    import pytest
    import responses

    @pytest.fixture
    def fake_wp():
        fake = FakeWordPress()
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            fake.mount(rsps)
            yield fake

    @pytest.fixture
    def wp_integration(factory, site, fake_wp):
        return make_integration(factory, site, fake_wp.url)

    return fake_wp, wp_integration


fake_wp, wp_integration = _fixtures()
