"""What the sync engine's pull and push share: the content hash (equal hashes: nothing to
send), the post types an integration syncs, a run's counts and progress, the slice signal, the
copy of a WordPress post onto its Content row, and ``SyncRun``, the state one run of the engine
holds (its integration, client, counts, progress and resumable checkpoint).

``pull`` and ``push`` each add one direction to ``SyncRun``; ``engine.ContentSyncService`` is
the two together.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app

from ..models import Content, SiteIntegration, utcnow
from ..platforms.base import PlatformClient, RemotePost
from ..timeutil import as_utc, iso

DEFAULT_POST_TYPES = ("post", "page")
MAX_ITEMS_IN_DETAILS = 50  # failed posts and conflicts named in the job's details


MEDIA_COUNTS = ("media_uploaded", "media_reused", "media_failed")
# The publishing fields (contract "Publishing") that take part in change and conflict detection.
PUBLISHING_FIELDS = (
    "excerpt", "slug", "publish_at", "author", "format", "sticky", "comment_status", "featured_image", "seo",
)  # fmt: skip


def content_hash(
    title: str,
    content_html: str,
    status: str,
    taxonomies: dict[str, Any] | None,
    publishing: dict[str, Any] | None = None,
) -> str:
    """Hash of the fields a sync moves: equal hashes mean nothing to send. A publishing field
    counts only when set, so a row that has none hashes as before they existed (an upgrade does
    not make every content look changed)."""
    values: dict[str, Any] = {
        "title": title or "",
        "content_html": content_html or "",
        "status": status,
        "taxonomies": taxonomies or {},
    }
    for name, value in (publishing or {}).items():
        if value is not None:
            values[name] = iso(value) if isinstance(value, datetime) else value
    payload = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def publishing_of(content: Content) -> dict[str, Any]:
    return {name: getattr(content, name) for name in PUBLISHING_FIELDS}


def hash_of(content: Content) -> str:
    return content_hash(content.title, content.content_html, content.status, content.taxonomies, publishing_of(content))


def selected_post_types(integration: SiteIntegration) -> list[str]:
    """Post types to sync: ``config_json.sync_post_types`` when set, else post and page."""
    configured = (integration.config_json or {}).get("sync_post_types")
    if isinstance(configured, list) and configured and all(isinstance(item, str) for item in configured):
        return list(dict.fromkeys(configured))
    return list(DEFAULT_POST_TYPES)


@dataclass
class SyncCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    missing: int = 0
    pushed: int = 0
    conflicts: int = 0
    errors: int = 0
    failed_items: list[dict[str, Any]] = field(default_factory=list)
    conflict_items: list[dict[str, Any]] = field(default_factory=list)
    # Publishing: images of the pushed posts, and per-post warnings (the post still went).
    media_uploaded: int = 0
    media_reused: int = 0
    media_failed: int = 0
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def warn(self, item: dict[str, Any]) -> None:
        if len(self.warnings) < MAX_ITEMS_IN_DETAILS:
            self.warnings.append(item)

    def error(self, item: dict[str, Any]) -> None:
        self.errors += 1
        if len(self.failed_items) < MAX_ITEMS_IN_DETAILS:
            self.failed_items.append(item)

    def conflict(self, item: dict[str, Any]) -> None:
        self.conflicts += 1
        if len(self.conflict_items) < MAX_ITEMS_IN_DETAILS:
            self.conflict_items.append(item)

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> SyncCounts:
        """The counts a checkpoint carried (``as_details``), to go on counting after a resume."""
        names = ("created", "updated", "unchanged", "missing", "pushed", "conflicts", "errors", *MEDIA_COUNTS)
        counts = cls()
        for name in names:
            setattr(counts, name, int(details.get(name) or 0))
        counts.failed_items = list(details.get("failed_items") or [])
        counts.conflict_items = list(details.get("conflict_items") or [])
        counts.warnings = list(details.get("warnings") or [])
        return counts

    def as_details(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "missing": self.missing,
            "pushed": self.pushed,
            "conflicts": self.conflicts,
            "errors": self.errors,
            "failed_items": list(self.failed_items),
            "conflict_items": list(self.conflict_items),
            "media_uploaded": self.media_uploaded,
            "media_reused": self.media_reused,
            "media_failed": self.media_failed,
            "warnings": list(self.warnings),
        }


class Progress:
    """Progress counters; ``report`` passes (done, total) on after each batch (it heartbeats), at
    most once per ``min_interval`` seconds (each one is an UPDATE and a COMMIT), and always when
    the count is complete."""

    def __init__(self, report: Callable[[int, int | None], None], min_interval: float = 1.0) -> None:
        self.done = 0
        self.total: int | None = 0
        self._report = report
        self._min_interval = min_interval
        self._last_report: float | None = None

    def add_total(self, amount: int | None) -> None:
        if amount is None:
            return
        self.total = (self.total or 0) + amount

    def advance(self, amount: int) -> None:
        self.done += amount
        if self.total is not None and self.done > self.total:
            self.total = self.done  # posts created during the scan

    def report(self) -> None:
        now = time.monotonic()
        complete = self.total is not None and self.done >= self.total
        if not complete and self._last_report is not None and now - self._last_report < self._min_interval:
            return
        self._last_report = now
        self._report(self.done, self.total)

    def report_if_due(self) -> None:
        """Report only once ``min_interval`` has passed since the last report (or since the first
        call): for a step that wrote nothing, whose progress the next write or the job's final
        state publishes anyway; completeness alone does not force a report (an UPDATE and a
        COMMIT of its own)."""
        now = time.monotonic()
        if self._last_report is None:
            self._last_report = now
        elif now - self._last_report >= self._min_interval:
            self.report()

    def reported(self) -> None:
        """The current progress was just written by another statement (a checkpoint carries it)."""
        self._last_report = time.monotonic()


class SliceDone(Exception):
    """The pull stored its slice budget of pages and more remain: the job's checkpoint holds
    the position, and the job is re-enqueued to go on from there."""


SaveCheckpoint = Callable[[dict[str, Any], int, int | None], None]


def remote_values(post: RemotePost, now: datetime) -> dict[str, Any]:
    """The columns a WordPress post sets on its Content row, which is then in sync."""
    values: dict[str, Any] = {
        "title": post.title or "",
        "content_html": post.content_html or "",
        "status": post.content_status,
        "external_url": post.url,
        "external_status": post.status,
        "external_modified_gmt": as_utc(post.modified_gmt),
        "taxonomies": dict(post.taxonomies or {}),
        "last_synced_at": now,
        "conflict": None,
    }
    publishing: dict[str, Any] = {}
    if post.publishing:  # a listing that asked for them (not a lean one)
        publishing = {name: post.publishing.get(name) for name in PUBLISHING_FIELDS}
        values.update(publishing, featured_media=post.publishing.get("featured_media"))
    values["synced_hash"] = content_hash(
        values["title"], values["content_html"], values["status"], values["taxonomies"], publishing
    )
    return values


def apply_remote(row: Content, post: RemotePost, now: datetime) -> None:
    """Copy a WordPress post onto its Content row and mark it in sync."""
    for name, value in remote_values(post, now).items():
        setattr(row, name, value)


class SyncRun:
    """One run of the engine over one integration: what the pull and the push both read."""

    def __init__(
        self,
        integration: SiteIntegration,
        client: PlatformClient,
        counts: SyncCounts,
        progress: Progress,
        job_id: int | None = None,
        checkpoint: dict[str, Any] | None = None,
        save_checkpoint: SaveCheckpoint | None = None,
        max_pages: int = 0,
    ) -> None:
        self.integration = integration
        self.site_id = integration.site_id
        self.client = client
        self.counts = counts
        self.progress = progress
        self.job_id = job_id
        self.concurrency = max(1, int(current_app.config["WP_CONCURRENCY"]))
        self.overlap = timedelta(seconds=int(current_app.config["SYNC_PULL_OVERLAP_SECONDS"]))
        self.incremental_used: dict[str, bool] = {}
        self._scan_started = utcnow()
        self._duplicates = 0
        # Resumable position: written (fenced by the job's claim) in the transaction of each page.
        self.checkpoint: dict[str, Any] = dict(checkpoint or {})
        self.save_checkpoint = save_checkpoint
        self.max_pages = max(0, max_pages)  # pages per run (a slice); 0: no limit
        self.pages_stored = 0
        self._type_state: dict[str, Any] = {}
        self._uncommitted = False  # rows written since the last commit (committed with a position)
