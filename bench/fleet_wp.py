"""A fast WordPress REST emulator for the fleet benchmark: many sites from one asyncio process.

Each site listens on its own loopback port, so the service sees each as a distinct site (its
politeness limits are keyed by host:port).  It answers the routes the service's WordPress client
calls (``integration_service/platforms/wordpress.py``) the way WordPress 6.x does:

- ``/wp-json/`` (the index, ``_fields`` honoured), ``wp/v2/types``, ``wp/v2/taxonomies``
- ``wp/v2/posts`` and ``wp/v2/pages``: ``page``, ``per_page`` (1-100), ``orderby=id``/``modified``,
  ``order``, ``modified_after``, ``_fields`` (``id,modified_gmt``, nested ``title.raw``),
  ``X-WP-Total`` / ``X-WP-TotalPages``, and 400 ``rest_post_invalid_page_number`` past the end
- single posts, ``wp/v2/categories`` / ``wp/v2/tags``, ``wp/v2/users/me``, ``igny8/v1/status``

Latency per request: fixed or drawn from a range; ``--faults`` makes shares of the sites slow,
hang (the client's read timeout ends the request), answer 429 with ``Retry-After`` or refuse the
credentials (401). Per site: a request log and the most requests ever in flight. An admin port:
``GET /_stats``, ``GET /_log?site=N``, ``POST /_reset``, ``POST /_touch?site=N&count=K``.

    python -m bench.fleet_wp --sites 100 --posts 50 --latency 0.005

prints ``{"admin": URL, "sites": [URL, ...], "faults": {N: fault}}`` and serves until SIGTERM.
``FleetEmulator(...).start_in_thread()`` serves from a daemon thread (tests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .fleet_faults import assign_faults, parse_range, parse_shares

BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
NAMESPACES = ["wp/v2", "igny8/v1"]
TYPES = {
    slug: {
        "slug": slug,
        "name": name,
        "rest_base": base,
        "rest_namespace": "wp/v2",
        "taxonomies": taxonomies,
        "hierarchical": slug == "page",
    }
    for slug, name, base, taxonomies in (
        ("post", "Posts", "posts", ["category", "post_tag"]),
        ("page", "Pages", "pages", []),
    )
}
TAXONOMIES = {
    slug: {"slug": slug, "name": name, "rest_base": base, "rest_namespace": "wp/v2", "types": ["post"]}
    for slug, name, base in (("category", "Categories", "categories"), ("post_tag", "Tags", "tags"))
}
TERMS = {"categories": [{"id": 1, "name": "Uncategorized", "slug": "uncategorized"}], "tags": []}
MAX_HEADER_BYTES = 64 * 1024
HANG_SECONDS = 3600.0
RETRY_AFTER_SECONDS = 120


def wp_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def select_fields(item: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """WordPress's ``_fields``: top-level keys, and ``a.b`` for a nested key."""
    out: dict[str, Any] = {}
    for name in fields:
        head, _, rest = name.partition(".")
        if head not in item:
            continue
        if rest and isinstance(item[head], dict):
            if rest in item[head]:
                out.setdefault(head, {})[rest] = item[head][rest]
        else:
            out[head] = item[head]
    return out


@dataclass
class Site:
    number: int
    posts: int
    pages: int
    latency: float
    url: str = ""
    latency_range: tuple[float, float] | None = None  # drawn per request (overrides latency)
    fault: str | None = None  # one of FAULTS
    # id -> modified time for posts edited after creation (others: BASE_TIME + id seconds)
    edited: dict[int, datetime] = field(default_factory=dict)
    log: list[tuple[float, float, str, str, int]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def ids(self, post_type: str) -> range:
        return range(1, self.posts + 1) if post_type == "post" else range(self.posts + 1, self.posts + self.pages + 1)

    def modified(self, post_id: int) -> datetime:
        return self.edited.get(post_id) or BASE_TIME + timedelta(seconds=post_id)

    def post_type_of(self, post_id: int) -> str | None:
        if 1 <= post_id <= self.posts:
            return "post"
        if self.posts < post_id <= self.posts + self.pages:
            return "page"
        return None

    def render(self, post_id: int, post_type: str) -> dict[str, Any]:
        title = f"{post_type.title()} {post_id} of site {self.number}"
        content = f"<p>Body of {post_type} {post_id} on site {self.number}.</p>"
        body: dict[str, Any] = {
            "id": post_id,
            "type": post_type,
            "status": "publish",
            "link": f"{self.url}/?p={post_id}",
            "modified_gmt": wp_time(self.modified(post_id)),
            "title": {"raw": title, "rendered": title},
            "content": {"raw": content, "rendered": content},
        }
        if post_type == "post":
            body.update(categories=[1], tags=[])
        return body

    def stats(self) -> dict[str, Any]:
        return {
            "site": self.number,
            "url": self.url,
            "requests": len(self.log),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
        }


Answer = tuple[int, dict[str, str], Any]


def _error(status: int, code: str, message: str) -> Answer:
    return status, {}, {"code": code, "message": message, "data": {"status": status}}


class FleetEmulator:
    def __init__(
        self,
        post_counts: list[int],
        page_counts: list[int] | None = None,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        latency_range: tuple[float, float] | None = None,
        faults: dict[int, str] | None = None,
        slow_range: tuple[float, float] = (2.0, 5.0),
        hang_seconds: float = HANG_SECONDS,
    ) -> None:
        pages = page_counts or [0] * len(post_counts)
        faults = faults or {}
        self.host = host
        self.hang_seconds = hang_seconds
        self.sites = [
            Site(
                number=i,
                posts=posts,
                pages=pages[i],
                latency=latency,
                latency_range=slow_range if faults.get(i) == "slow" else latency_range,
                fault=faults.get(i),
            )
            for i, posts in enumerate(post_counts)
        ]
        self.admin_url = ""
        self._servers: list[asyncio.AbstractServer] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None

    async def start(self) -> None:
        for site in self.sites:
            server = await asyncio.start_server(
                lambda r, w, s=site: self._connection(r, w, s), self.host, 0, limit=MAX_HEADER_BYTES
            )
            site.url = f"http://{self.host}:{server.sockets[0].getsockname()[1]}"
            self._servers.append(server)
        admin = await asyncio.start_server(lambda r, w: self._connection(r, w, None), self.host, 0)
        self.admin_url = f"http://{self.host}:{admin.sockets[0].getsockname()[1]}"
        self._servers.append(admin)

    async def serve_until_stopped(self) -> None:
        self._stopped = asyncio.Event()
        await self.start()
        await self._stopped.wait()
        for server in self._servers:
            server.close()

    def start_in_thread(self) -> FleetEmulator:
        """Serve from a daemon thread; returns once every site listens."""
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.start())
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, name="fleet-wp", daemon=True).start()
        if not ready.wait(60):
            raise RuntimeError("the emulator did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            loop = self._loop

            async def shut() -> None:
                for server in self._servers:
                    server.close()
                tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
                for task in tasks:  # open connections (a hanging answer): end them before the loop
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                loop.stop()

            asyncio.run_coroutine_threadsafe(shut(), loop)

    def stats(self) -> dict[str, Any]:
        sites = [site.stats() for site in self.sites]
        return {
            "sites": sites,
            "faults": {str(site.number): site.fault for site in self.sites if site.fault},
            "requests": sum(item["requests"] for item in sites),
            "max_in_flight": max((item["max_in_flight"] for item in sites), default=0),
        }

    def reset(self) -> None:
        for site in self.sites:
            site.log.clear()
            site.max_in_flight = site.in_flight

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, site: Site | None) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target = [*lines[0].split(" "), "", ""][:2]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                if site is None:
                    status, extra, payload = self._admin(method, target)
                else:
                    status, extra, payload = await self._site_request(site, method, target, headers, body)
                data = json.dumps(payload, separators=(",", ":")).encode()
                close = headers.get("connection", "").lower() == "close"
                out = [f"HTTP/1.1 {status} X", "Content-Type: application/json; charset=UTF-8"]
                out += [f"Content-Length: {len(data)}", "Connection: " + ("close" if close else "keep-alive")]
                out += [f"{name}: {value}" for name, value in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + data)
                await writer.drain()
                if close:
                    return
        except ConnectionError:
            return
        finally:
            writer.close()

    async def _site_request(self, site: Site, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        started = time.monotonic()
        site.in_flight += 1
        site.max_in_flight = max(site.max_in_flight, site.in_flight)
        try:
            delay = random.uniform(*site.latency_range) if site.latency_range else site.latency
            if site.fault == "hang":
                delay = self.hang_seconds
            if delay:
                await asyncio.sleep(delay)
            parts = urlsplit(target)
            query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
            path = unquote(parts.path)
            route = path.split("/wp-json/", 1)[1] if "/wp-json/" in path else query.get("rest_route", "").lstrip("/")
            if "/wp-json" not in path and "rest_route" not in query:
                answer: Answer = 404, {}, {"code": "not_found"}
            elif site.fault == "rate_limited":
                answer = 429, {"Retry-After": str(RETRY_AFTER_SECONDS)}, {"code": "too_many_requests"}
            elif site.fault == "auth" and headers.get("authorization"):
                answer = _error(401, "incorrect_password", "The provided password is an invalid application password.")
            else:
                answer = self._route(site, method, route.strip("/"), query, headers)
        finally:
            site.in_flight -= 1
        site.log.append((started, time.monotonic(), method, target, answer[0]))
        return answer

    def _route(self, site: Site, method: str, route: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        if method != "GET":
            return _error(405, "rest_no_route", "The emulator is read-only.")
        if route == "":
            index = {
                "name": f"Fleet site {site.number}",
                "description": "WordPress REST emulator",
                "url": site.url,
                "home": site.url,
                "gmt_offset": 0,
                "timezone_string": "UTC",
                "namespaces": NAMESPACES,
                "authentication": {"application-passwords": {"endpoints": {}}},
            }
            fields = query.get("_fields")
            return (
                200,
                {"Link": '<https://api.w.org/>; rel="https://api.w.org/"'},
                (select_fields(index, fields.split(",")) if fields else index),
            )
        if route == "wp/v2/types":
            return 200, {}, TYPES
        if route == "wp/v2/taxonomies":
            return 200, {}, TAXONOMIES
        if route == "wp/v2/users/me":
            if not headers.get("authorization"):
                return _error(401, "rest_not_logged_in", "You are not currently logged in.")
            capabilities = {"edit_posts": True, "publish_posts": True, "upload_files": True}
            me = {"id": 1, "name": "admin", "slug": "admin", "roles": ["administrator"], "capabilities": capabilities}
            return 200, {}, me
        if route == "igny8/v1/status":
            if not headers.get("x-api-key"):
                return _error(401, "igny8_unauthorized", "Missing API key.")
            return 200, {}, {"plugin_version": "1.0.0", "wordpress_version": "6.6", "connected": True}
        if route in ("wp/v2/categories", "wp/v2/tags"):
            terms = TERMS[route.rsplit("/", 1)[1]]
            return 200, {"X-WP-Total": str(len(terms)), "X-WP-TotalPages": "1"}, terms
        for base, post_type in (("wp/v2/posts", "post"), ("wp/v2/pages", "page")):
            if route == base:
                return self._list(site, post_type, query)
            if route.startswith(base + "/") and route[len(base) + 1 :].isdigit():
                post_id = int(route[len(base) + 1 :])
                if site.post_type_of(post_id) != post_type:
                    return _error(404, "rest_post_invalid_id", "Invalid post ID.")
                return 200, {}, site.render(post_id, post_type)
        return _error(404, "rest_no_route", "No route was found matching the URL and request method.")

    def _list(self, site: Site, post_type: str, query: dict[str, str]) -> Answer:
        try:
            per_page = int(query.get("per_page", 10))
            page = int(query.get("page", 1))
        except ValueError:
            return _error(400, "rest_invalid_param", "Invalid parameter(s): page, per_page")
        if not 1 <= per_page <= 100 or page < 1:
            return _error(400, "rest_invalid_param", "Invalid parameter(s): page, per_page")
        ids = list(site.ids(post_type))
        if "modified_after" in query:
            try:
                after = datetime.fromisoformat(query["modified_after"].replace("Z", "+00:00"))
            except ValueError:
                return _error(400, "rest_invalid_param", "Invalid parameter(s): modified_after")
            after = after if after.tzinfo else after.replace(tzinfo=UTC)
            ids = [post_id for post_id in ids if site.modified(post_id) > after]
        if query.get("orderby") == "modified":
            ids.sort(key=lambda post_id: (site.modified(post_id), post_id))
        if query.get("order", "desc") == "desc":
            ids.reverse()
        total = len(ids)
        total_pages = (total + per_page - 1) // per_page
        if page > 1 and page > total_pages:
            return _error(
                400, "rest_post_invalid_page_number", "The page number requested is larger than the number of pages."
            )
        chunk = ids[(page - 1) * per_page : page * per_page]
        fields = query.get("_fields", "").split(",") if query.get("_fields") else None
        items = [site.render(post_id, post_type) for post_id in chunk]
        if fields:
            items = [select_fields(item, fields) for item in items]
        return 200, {"X-WP-Total": str(total), "X-WP-TotalPages": str(total_pages)}, items

    def _admin(self, method: str, target: str) -> Answer:
        parts = urlsplit(target)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        if parts.path == "/_stats":
            return 200, {}, self.stats()
        if parts.path == "/_log" and query.get("site", "").isdigit() and int(query["site"]) < len(self.sites):
            site = self.sites[int(query["site"])]
            return (
                200,
                {},
                [{"start": a, "end": b, "method": m, "target": t, "status": s} for a, b, m, t, s in site.log],
            )
        if parts.path == "/_reset" and method == "POST":
            self.reset()
            return 200, {}, {"reset": True}
        if parts.path == "/_touch" and method == "POST" and query.get("site", "").isdigit():
            site = self.sites[int(query["site"])]
            now = datetime.now(UTC)
            count = min(int(query.get("count", "1")), site.posts)
            for post_id in range(1, count + 1):
                site.edited[post_id] = now
            return 200, {}, {"touched": count}
        return 404, {}, {"code": "not_found"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--posts", type=int, default=50, help="posts per site")
    parser.add_argument("--big", type=int, default=0, help="posts of one extra big site (listed first)")
    parser.add_argument("--pages", type=int, default=0, help="pages per site")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds slept per request")
    parser.add_argument("--latency-range", default="", help="LOW,HIGH: seconds drawn per request")
    parser.add_argument("--slow-range", default="2,5", help="LOW,HIGH: the slow sites' seconds per request")
    parser.add_argument(
        "--faults", default="", help="share of sites per fault, e.g. slow=0.05,hang=0.01,rate_limited=0.01,auth=0.01"
    )
    parser.add_argument(
        "--hang-seconds",
        type=float,
        default=HANG_SECONDS,
        help="how long a hanging site takes to answer (just past the client's read timeout: a request "
        "its client gave up on then stops counting as in flight before the client's retry comes)",
    )
    parser.add_argument("--seed", type=int, default=22)
    args = parser.parse_args(argv)
    counts = ([args.big] if args.big else []) + [args.posts] * args.sites
    emulator = FleetEmulator(
        counts,
        [args.pages] * len(counts),
        latency=args.latency,
        latency_range=parse_range(args.latency_range),
        faults=assign_faults(len(counts), parse_shares(args.faults), args.seed, first=1 if args.big else 0),
        slow_range=parse_range(args.slow_range) or (2.0, 5.0),
        hang_seconds=args.hang_seconds,
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(emulator.serve_until_stopped())
        while not emulator.admin_url:
            await asyncio.sleep(0.01)
        faults = {str(site.number): site.fault for site in emulator.sites if site.fault}
        urls = [site.url for site in emulator.sites]
        print(json.dumps({"admin": emulator.admin_url, "sites": urls, "faults": faults}), flush=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: emulator._stopped and emulator._stopped.set())
        await task

    asyncio.run(run())
    sys.exit(0)


if __name__ == "__main__":
    main()
