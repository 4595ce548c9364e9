"""What a site's REST API looks like (its REST root, post types and taxonomies), remembered in
this process between syncs of the site for WP_STRUCTURE_CACHE_SECONDS, so an incremental sync
that finds nothing new is one list request per selected post type instead of discovery + types
+ taxonomies + lists.

The entry is dropped (and the next client asks the site again) when it lapses, when a request
through the remembered root answers 404 (the site moved its API or changed permalinks), when the
plugin pushes a new structure (``forget_site``, in the worker that stores it), when a reconcile
starts, and on every connection test (diagnostics always discovers afresh and stores the answer).
Workers on other hosts see a structure change within the TTL."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from .discovery import RestRoot

TTL_SECONDS = float(os.environ.get("WP_STRUCTURE_CACHE_SECONDS", "900"))
MAX_ENTRIES = 100_000  # ~2 KB each: a whole fleet fits; past this the oldest half is dropped


@dataclass(frozen=True)
class SiteShape:
    root: RestRoot | None = None
    types: dict[str, dict[str, Any]] | None = None
    taxonomies: dict[str, dict[str, Any]] | None = None
    expires: float = field(default=0.0)


_entries: dict[tuple[str, str], SiteShape] = {}
_lock = threading.Lock()


def get(key: tuple[str, str]) -> SiteShape | None:
    with _lock:
        entry = _entries.get(key)
        if entry is None:
            return None
        if entry.expires <= time.monotonic():
            del _entries[key]
            return None
        return entry


def remember(key: tuple[str, str], **parts: Any) -> None:
    """Store parts of a site's shape (root, types, taxonomies); a new root starts a new entry."""
    if TTL_SECONDS <= 0:
        return
    with _lock:
        entry = _entries.get(key)
        now = time.monotonic()
        if entry is None or entry.expires <= now or "root" in parts:
            entry = SiteShape(expires=now + TTL_SECONDS)
        _entries[key] = replace(entry, **parts)
        if len(_entries) > MAX_ENTRIES:
            for stale in sorted(_entries, key=lambda k: _entries[k].expires)[: MAX_ENTRIES // 2]:
                del _entries[stale]


def forget(key: tuple[str, str]) -> None:
    with _lock:
        _entries.pop(key, None)


def forget_site(site_url: str) -> None:
    """Every entry of the site (whatever credentials it was read with)."""
    base = site_url.strip().rstrip("/")
    with _lock:
        for key in [k for k in _entries if k[0].rstrip("/") == base]:
            del _entries[key]


def clear() -> None:
    with _lock:
        _entries.clear()
