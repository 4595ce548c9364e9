"""What a site's REST API looks like (its REST root, post types and taxonomies), remembered
between syncs of the site for WP_STRUCTURE_CACHE_SECONDS, so an incremental sync that finds
nothing new is one list request per selected post type instead of discovery + types +
taxonomies + lists.

With ``REDIS_URL`` the entries live in Redis, shared by every worker process: at 10,000 sites
no site came round twice to the same process within the TTL, so a per-process copy saved
nothing. One hash per site (``igny8:wp:shape:<site base>``, fields ``<part>|<username>``, each
value zlib-compressed JSON stamped with its own expiry, the hash expiring with its newest part);
a client reads all its parts in one ``HMGET`` and keeps them for its job. There is no
per-process layer in front of Redis: a drop must reach every worker at once. Without Redis (the
embedded default, the unit tests) the entries live in this process.

An entry is dropped everywhere (``DEL`` of the site's hash: every credential's parts) when a
request through the remembered root answers 404 (the site moved its API or changed permalinks),
when the plugin pushes a new structure (``forget_site``), when a metadata sync or a reconcile
starts (they re-read the structure), and on every connection test (diagnostics always
discovers afresh and stores the answer). While Redis is unreachable nothing is remembered and
every client asks the site (``redis_fallback``: one warning per outage, Redis tried again every
few seconds); a drop that could not reach Redis then is logged, and the entry lapses with its TTL.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from ...redis_fallback import RedisFallback
from .discovery import RestRoot

logger = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 21600.0  # WP_STRUCTURE_CACHE_SECONDS (config.py says why 6 h)
KEY_PREFIX = "igny8:wp:shape:"
PARTS = ("root", "types", "taxonomies")
MAX_ENTRIES = 100_000  # in-process store: ~2 KB each, a whole fleet fits; past this the oldest half goes


@dataclass(frozen=True)
class SiteShape:
    root: RestRoot | None = None
    types: dict[str, dict[str, Any]] | None = None
    taxonomies: dict[str, dict[str, Any]] | None = None
    expires: float = field(default=0.0)


def site_base(site_url: str) -> str:
    """The site's address as the client keys it (no query or fragment, one trailing slash)."""
    parts = urlsplit(site_url.strip())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")).rstrip("/") + "/"


# ------------------------------------------------------------------------------ in this process

_entries: dict[tuple[str, str], SiteShape] = {}
_lock = threading.Lock()


class MemoryShapes:
    """This process's entries (no Redis configured)."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds

    def get(self, key: tuple[str, str]) -> SiteShape | None:
        with _lock:
            entry = _entries.get(key)
            if entry is None:
                return None
            if entry.expires <= time.monotonic():
                del _entries[key]
                return None
            return entry

    def remember(self, key: tuple[str, str], **parts: Any) -> None:
        """Store parts of a site's shape (root, types, taxonomies); a new root starts a new entry."""
        if self.ttl_seconds <= 0:
            return
        with _lock:
            entry = _entries.get(key)
            now = time.monotonic()
            if entry is None or entry.expires <= now or "root" in parts:
                entry = SiteShape(expires=now + self.ttl_seconds)
            _entries[key] = replace(entry, **parts)
            if len(_entries) > MAX_ENTRIES:
                for stale in sorted(_entries, key=lambda k: _entries[k].expires)[: MAX_ENTRIES // 2]:
                    del _entries[stale]

    def forget(self, key: tuple[str, str]) -> None:
        self.forget_site(key[0])

    def forget_site(self, site_url: str) -> None:
        base = site_base(site_url)
        with _lock:
            for key in [k for k in _entries if site_base(k[0]) == base]:
                del _entries[key]


# ------------------------------------------------------------------------------ in Redis


def _encode(part: str, value: Any, expires: float) -> bytes:
    if part == "root":
        value = {"style": value.style, "base": value.base, "index": value.index}
    return zlib.compress(json.dumps({"expires": expires, "value": value}, separators=(",", ":")).encode())


def _decode(part: str, raw: Any, now: float) -> Any:
    if raw is None:
        return None
    try:
        stored = json.loads(zlib.decompress(raw))
    except (zlib.error, ValueError):
        return None  # written by something else: asked again, then overwritten
    if not isinstance(stored, dict) or float(stored.get("expires") or 0) <= now:
        return None
    value = stored.get("value")
    if part == "root":
        return RestRoot(**value) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else None


class RedisShapes:
    """Entries shared by every process through Redis."""

    def __init__(self, url: str, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        # Short timeouts: a slow Redis costs a sync at most this, then it asks the site.
        self.client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.fallback = RedisFallback("structure_cache")

    def get(self, key: tuple[str, str]) -> SiteShape | None:
        if self.ttl_seconds <= 0:
            return None
        if not self.fallback.use_redis():
            self.fallback.count_fallback()
            return None
        base, username = key
        try:
            raw = self.client.hmget(KEY_PREFIX + base, [f"{part}|{username}" for part in PARTS])
        except redis.RedisError as exc:
            self.fallback.failed(exc)
            return None
        self.fallback.recovered()
        now = time.time()
        values = {part: _decode(part, value, now) for part, value in zip(PARTS, raw, strict=True)}
        if not any(value is not None for value in values.values()):
            return None
        return SiteShape(**values)

    def remember(self, key: tuple[str, str], **parts: Any) -> None:
        if self.ttl_seconds <= 0 or not self.fallback.use_redis():
            return
        base, username = key
        expires = time.time() + self.ttl_seconds
        pipe = self.client.pipeline(transaction=False)
        if "root" in parts:  # a new root starts a new entry
            stale = [f"{part}|{username}" for part in PARTS if part not in parts]
            if stale:
                pipe.hdel(KEY_PREFIX + base, *stale)
        pipe.hset(
            KEY_PREFIX + base,
            mapping={f"{part}|{username}": _encode(part, value, expires) for part, value in parts.items()},
        )
        pipe.pexpire(KEY_PREFIX + base, int(self.ttl_seconds * 1000))
        try:
            pipe.execute()
        except redis.RedisError as exc:
            self.fallback.failed(exc)

    def forget(self, key: tuple[str, str]) -> None:
        self.forget_site(key[0])

    def forget_site(self, site_url: str) -> None:
        base = site_base(site_url)
        try:
            self.client.delete(KEY_PREFIX + base)
        except redis.RedisError as exc:
            self.fallback.failed(exc)
            logger.warning(
                "could not drop the remembered structure of a site; it lapses within %.0f s", self.ttl_seconds
            )


# ------------------------------------------------------------------------------ the process's stores

Shapes = MemoryShapes | RedisShapes
_stores: dict[tuple[str | None, float], Shapes] = {}
_stores_lock = threading.Lock()


def shapes_for(redis_url: str | None, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> Shapes:
    """The process's store for these settings (one Redis connection pool per URL)."""
    with _stores_lock:
        store = _stores.get((redis_url, ttl_seconds))
        if store is None:
            store = RedisShapes(redis_url, ttl_seconds) if redis_url else MemoryShapes(ttl_seconds)
            _stores[(redis_url, ttl_seconds)] = store
        return store


def forget_site(site_url: str) -> None:
    """Drop every entry of the site (whatever credentials it was read with) everywhere: in this
    process, and in the Redis of the running app (``REDIS_URL``) when there is one."""
    from flask import current_app, has_app_context

    MemoryShapes(DEFAULT_TTL_SECONDS).forget_site(site_url)
    if has_app_context() and (url := current_app.config.get("REDIS_URL")):
        shapes_for(url, float(current_app.config.get("WP_STRUCTURE_CACHE_SECONDS", DEFAULT_TTL_SECONDS))).forget_site(
            site_url
        )


def clear() -> None:
    """Forget this process's entries (tests)."""
    with _lock:
        _entries.clear()
