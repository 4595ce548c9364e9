"""The locks of sync/media.py: nobody fetches a new URL twice at once in a process, and nobody
uploads the same bytes to a site twice at once anywhere.

* ``url_lock``: in-process, per (site, URL): the threads wanting a new image wait for the one
  fetching it, then find its row.
* ``image_lock``: per (site, sha256): a thread lock in the process plus, on PostgreSQL, a session
  advisory lock held on its own connection (PostgreSQL releases it if the worker dies). So a
  pending row seen under this lock is never an upload in flight: it is an interrupted one.

URL locks are always taken before image locks and a thread holds at most one of each, so they
cannot deadlock; every wait is bounded and ends in a transient error (the job retries later).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import text

from ..extensions import db
from ..platforms.base import PlatformError

BUSY = "Another job is uploading the same image; retrying later."


class _KeyedLocks:
    """One lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Any, list[Any]] = {}  # key -> [lock, holders and waiters]

    @contextlib.contextmanager
    def hold(self, key: Any, timeout: float) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            if not entry[0].acquire(timeout=max(0.0, timeout)):
                raise PlatformError(BUSY, transient=True)
            try:
                yield
            finally:
                entry[0].release()
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]


_URL_LOCKS = _KeyedLocks()
_IMAGE_LOCKS = _KeyedLocks()


def url_lock(site_id: int, url: str, wait: float) -> contextlib.AbstractContextManager[None]:
    return _URL_LOCKS.hold((site_id, url), wait)


def media_lock_key(site_id: int, sha256: str) -> int:
    """The PostgreSQL advisory lock key (a signed 64-bit integer) of one image on one site."""
    digest = hashlib.sha256(f"site_media:{site_id}:{sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def image_lock(site_id: int, sha256: str, wait: float) -> Iterator[None]:
    deadline = time.monotonic() + wait
    with _IMAGE_LOCKS.hold((site_id, sha256), wait):
        if db.engine.dialect.name != "postgresql":
            yield  # SQLite (development): one process, the thread lock is enough
            return
        key = media_lock_key(site_id, sha256)
        with db.engine.connect() as connection:
            while not connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}):
                connection.rollback()
                if time.monotonic() > deadline:
                    raise PlatformError(BUSY, transient=True)
                time.sleep(0.05)
            connection.commit()  # the lock is the session's, not the transaction's
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                connection.commit()
