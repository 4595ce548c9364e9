"""Reconcile (``direction: "reconcile"``): cheap drift detection.

Incremental pulls ask WordPress for posts modified after a watermark, so they never see a post
that was deleted, nor one whose modification time was set back (an import, a direct database
edit). A reconcile lists every selected post type with ``_fields=id,modified_gmt`` only (about
3x cheaper than full posts), compares that with the stored rows, marks rows whose post vanished
``external_status: "missing"`` and re-reads, in batches of 100 ids (``include=``), only the posts
whose ``modified_gmt`` differs from the stored one (or that are new). Watermarks are not moved.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import update

from ..extensions import db, rowcount
from ..models import Content, utcnow
from ..platforms.base import PostPage
from ..timeutil import as_utc
from .engine import ContentSyncService, selected_post_types

logger = logging.getLogger(__name__)

BATCH = 100  # ids per include= request (WordPress caps per_page at 100)


@dataclass
class ReconcileCounts:
    listed: int = 0  # posts WordPress listed (ids and modified times only)
    missing: int = 0  # rows newly marked missing: their post is gone
    refetched: int = 0  # posts re-read in full because their modified time differed (or new)
    unchanged: int = 0  # listed posts whose modified time matched their row: not fetched


def _batches(items: list[str]) -> list[list[str]]:
    return [items[start : start + BATCH] for start in range(0, len(items), BATCH)]


class Reconciler:
    def __init__(self, service: ContentSyncService) -> None:
        self.service = service
        self.client = service.client
        self.counts = ReconcileCounts()

    def run(self) -> dict[str, int]:
        """Reconcile every selected post type; returns the counts for the job's details."""
        for post_type in selected_post_types(self.service.integration):
            self._reconcile_type(post_type)
        sync_counts = self.service.counts
        sync_counts.missing += self.counts.missing
        sync_counts.unchanged += self.counts.unchanged
        return asdict(self.counts)

    def _list(self, post_type: str) -> tuple[dict[str, datetime | None], set[str], bool]:
        """(id -> modified_gmt of every usable listed post, ids listed but unusable, complete)."""
        progress = self.service.progress
        listed: dict[str, datetime | None] = {}
        unusable: set[str] = set()
        complete = True
        for page in self.client.list_modified(post_type, concurrency=self.service.concurrency):
            if page.error is not None:
                complete = False
                self.service.counts.error(
                    {"content_type": post_type, "page": page.number, "error": f"page could not be read: {page.error}"}
                )
                continue
            if page.number == 1:
                progress.add_total(page.total if page.total is not None else page.listed)
            elif page.total is None:
                progress.add_total(page.listed)
            for post in page.posts:
                listed[str(post.external_id)] = as_utc(post.modified_gmt)
            unusable.update(str(item["external_id"]) for item in page.problems if item.get("external_id"))
            progress.advance(page.listed)
            progress.report()
        self.counts.listed += len(listed) + len(unusable)
        return listed, unusable, complete

    def _reconcile_type(self, post_type: str) -> None:
        service = self.service
        listed, unusable, complete = self._list(post_type)
        rows = {
            row.external_id: row
            for row in db.session.execute(
                db.select(
                    Content.id, Content.external_id, Content.external_modified_gmt, Content.external_status
                ).where(
                    Content.site_id == service.site_id,
                    Content.content_type == post_type,
                    Content.external_id.is_not(None),
                )
            )
        }
        gone = [
            external_id
            for external_id, row in rows.items()
            if external_id not in listed and external_id not in unusable and row.external_status != "missing"
        ]
        if gone and complete:
            # Paging by offset skips a post when another is deleted during the scan: ask for the
            # candidates by id before calling them missing (usually none or a few).
            for batch in _batches(gone):
                for post in self.client.get_posts(post_type, batch, lean=True).posts:
                    listed[str(post.external_id)] = as_utc(post.modified_gmt)
            self._mark_missing([rows[external_id].id for external_id in gone if external_id not in listed])
        elif gone:
            logger.info("reconcile %s: a page could not be read; nothing marked missing", post_type)
        stale = []
        for external_id, modified in listed.items():
            row = rows.get(external_id)
            if (
                row is None
                or row.external_status == "missing"
                or modified is None
                or as_utc(row.external_modified_gmt) != modified
            ):
                stale.append(external_id)
            else:
                self.counts.unchanged += 1
        service._scan_started = utcnow()  # rows stored from here on are this scan's
        service._duplicates = 0
        for batch in _batches(stale):
            page: PostPage = self.client.get_posts(post_type, batch)
            self.counts.refetched += len(page.posts)
            service._store_page(post_type, page, since=None, full=False, detect_conflicts=True)
            db.session.commit()  # each batch on its own: a rerun does not fetch it again

    def _mark_missing(self, content_ids: list[int]) -> None:
        if not content_ids:
            return
        result = db.session.execute(
            update(Content)
            .where(Content.id.in_(content_ids), Content.site_id == self.service.site_id)
            .values(external_status="missing", last_synced_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        self.counts.missing += rowcount(result) or 0


def reconcile(service: ContentSyncService) -> dict[str, int]:
    return Reconciler(service).run()
