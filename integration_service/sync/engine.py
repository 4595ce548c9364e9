"""ContentSyncService, the sync engine: moves posts between a platform and the ``Content`` table.

Pull (``from_external``) pages through each selected post type with the client's paging (a page
at a time, so memory stays flat however large the site is; up to ``WP_CONCURRENCY`` pages in
flight) and upserts each page's rows in one batch; per-post watermarks make later pulls
incremental. Push (``to_external``) sends platform-side content that
is new or changed since its last sync. Conflicts (both sides changed since the last sync) are
recorded on the content and never resolved by overwriting either side.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, insert, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db, rowcount
from ..models import Content, SiteIntegration, utcnow
from ..platforms.base import PlatformClient, PlatformError, PostInput, PostNotFound, PostPage, RemotePost
from ..timeutil import as_utc, iso, parse_iso
from .content_lookup import existing_contents, refresh_statistics

logger = logging.getLogger(__name__)

DEFAULT_POST_TYPES = ("post", "page")
PUSH_BATCH = 100
PUSH_HEARTBEAT_EVERY = 20
MAX_ITEMS_IN_DETAILS = 50  # failed posts and conflicts named in the job's details
PUSH_STATUSES = ("published", "review")
PUSHED_TAXONOMIES = ("categories", "tags")


def content_hash(title: str, content_html: str, status: str, taxonomies: dict[str, Any] | None) -> str:
    """Hash of the fields a sync moves: equal hashes mean nothing to send."""
    payload = json.dumps(
        {"title": title or "", "content_html": content_html or "", "status": status, "taxonomies": taxonomies or {}},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def hash_of(content: Content) -> str:
    return content_hash(content.title, content.content_html, content.status, content.taxonomies)


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
        names = ("created", "updated", "unchanged", "missing", "pushed", "conflicts", "errors")
        counts = cls()
        for name in names:
            setattr(counts, name, int(details.get(name) or 0))
        counts.failed_items = list(details.get("failed_items") or [])
        counts.conflict_items = list(details.get("conflict_items") or [])
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


class SliceDone(Exception):
    """The pull stored its slice budget of pages and more remain: the job's checkpoint holds
    the position, and the job is re-enqueued to go on from there."""


SaveCheckpoint = Callable[[dict[str, Any], int, int | None], None]


class ContentSyncService:
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

    # ------------------------------------------------------------------ pull

    def pull(self, full: bool = False, detect_conflicts: bool = True) -> None:
        """Upsert every (changed) post of the selected post types, resuming from the job's
        checkpoint when it has one. With a slice budget (``max_pages``) it raises SliceDone once
        that many pages are stored and more remain; the checkpoint holds the position."""
        state = self.checkpoint
        watermarks = dict(state.get("watermarks") or self.integration.pull_watermarks or {})
        types_done: list[str] = list(state.get("types_done") or [])
        for post_type in selected_post_types(self.integration):
            if post_type in types_done:
                continue
            if self.max_pages and self.pages_stored >= self.max_pages:
                self._save_checkpoint(watermarks=watermarks, types_done=types_done, post_type=None)
                db.session.commit()
                raise SliceDone(post_type)
            since = None if full else parse_iso(watermarks.get(post_type))
            resuming = state.get("post_type") == post_type
            if resuming:
                scan_started = self._scan_started = parse_iso(state.get("scan_started")) or utcnow()
                errors_before = int(state.get("errors_before") or 0)
                self._duplicates = int(state.get("duplicates") or 0)
                start_page = int(state.get("page") or 0) + 1
                newest_so_far = parse_iso(state.get("newest"))
                if state.get("incremental") is False:
                    since = None  # this scan had fallen back to a full listing
            else:
                errors_before = self.counts.errors
                scan_started = self._scan_started = utcnow()
                self._duplicates = 0
                start_page = 1
                newest_so_far = None
            self._type_state = {
                "watermarks": watermarks,
                "types_done": types_done,
                "post_type": post_type,
                "scan_started": iso(scan_started),
                "errors_before": errors_before,
            }
            newest = self._pull_type(post_type, since, full, detect_conflicts, start_page, newest_so_far)
            if self._duplicates:
                # Paging was not stable (WordPress returned posts again on a later page, so others
                # were skipped): name it, and neither mark missing posts nor advance the mark.
                self.counts.error(
                    {
                        "content_type": post_type,
                        "error": f"WordPress listed {self._duplicates} post(s) twice while paging, so others "
                        "may have been skipped (unstable order); run the sync again",
                    }
                )
            elif full and self.counts.errors == errors_before:
                self._mark_missing(post_type, scan_started)
            # Advance the high-water mark only when every post was stored, or a bad post would be
            # skipped by every later incremental pull.
            if self.counts.errors == errors_before:
                previous = parse_iso(watermarks.get(post_type))
                candidates = [value for value in (previous, newest) if value is not None]
                if candidates:
                    watermarks[post_type] = iso(max(candidates))
                elif full:
                    watermarks[post_type] = iso(scan_started)
            types_done.append(post_type)
            self._save_checkpoint(watermarks=watermarks, types_done=types_done, post_type=None)
            db.session.commit()
        self._save_watermarks(watermarks)

    def _save_checkpoint(self, **position: Any) -> None:
        """Stage the job's position (and the counts and progress so far) in the current
        transaction, so it commits with the page it describes."""
        self.checkpoint = {
            **self.checkpoint,
            **position,
            "phase": "pull",
            "counts": self.counts.as_details(),
            "progress": [self.progress.done, self.progress.total],
            "incremental_used": dict(self.incremental_used),
        }
        if self.save_checkpoint is not None:
            self.save_checkpoint(self.checkpoint, self.progress.done, self.progress.total)

    def _save_watermarks(self, watermarks: dict[str, str]) -> None:
        integration = db.session.get(SiteIntegration, self.integration.id)
        if integration is None:
            return
        integration.pull_watermarks = watermarks
        parsed = [parse_iso(value) for value in watermarks.values()]
        parsed_values = [value for value in parsed if value is not None]
        integration.last_pull_modified_gmt = max(parsed_values) if parsed_values else None
        db.session.commit()

    def _pull_type(
        self,
        post_type: str,
        since: datetime | None,
        full: bool,
        detect_conflicts: bool,
        start_page: int = 1,
        newest: datetime | None = None,
    ) -> datetime | None:
        modified_after = since - self.overlap if since else None
        pages = self.client.pages(post_type, modified_after, concurrency=self.concurrency, start_page=start_page)
        try:
            for page in pages:
                self.incremental_used[post_type] = page.incremental
                if page.error is not None:
                    error = f"page could not be read: {page.error}"
                    self.counts.error({"content_type": post_type, "page": page.number, "error": error})
                elif page.number == 1:
                    self.progress.add_total(page.total if page.total is not None else page.listed)
                elif page.total is None:
                    self.progress.add_total(page.listed)
                created_before = self.counts.created
                page_newest = self._store_page(post_type, page, since, full, detect_conflicts)
                if page_newest and (newest is None or page_newest > newest):
                    newest = page_newest
                if page.error is None:
                    self.progress.advance(page.listed)
                # The page's rows and the position after it commit together.
                self._save_checkpoint(
                    **self._type_state,
                    page=page.number,
                    newest=iso(newest),
                    duplicates=self._duplicates,
                    incremental=page.incremental,
                )
                db.session.commit()
                refresh_statistics(created_before, self.counts.created)
                self.pages_stored += 1
                self.progress.report()
                last_page = page.total_pages is not None and page.number >= page.total_pages
                if self.max_pages and self.pages_stored >= self.max_pages and not last_page:
                    raise SliceDone(post_type)
        finally:
            pages.close()  # type: ignore[attr-defined]
        return newest

    def _store_page(
        self, post_type: str, page: PostPage, since: datetime | None, full: bool, detect_conflicts: bool
    ) -> datetime | None:
        """Upsert one page of posts (not committed yet); returns the newest modified time seen."""
        for problem in page.problems:
            self.counts.error({"content_type": post_type, **problem})
        if not page.posts:
            return None
        for attempt in range(2):
            try:
                newest = self._upsert(post_type, page.posts, since, full, detect_conflicts)
                db.session.flush()  # committed by the caller, with the job's checkpoint
                return newest
            except IntegrityError:
                # Another writer inserted one of these posts meanwhile: reload and apply again.
                db.session.rollback()
                if attempt == 1:
                    raise
        return None

    def _upsert(
        self,
        post_type: str,
        posts: list[RemotePost],
        since: datetime | None,
        full: bool,
        detect_conflicts: bool,
    ) -> datetime | None:
        ids = [str(post.external_id) for post in posts]
        existing = {row.external_id: row for row in existing_contents(self.site_id, post_type, ids)}
        now = utcnow()
        newest: datetime | None = None
        seen: list[int] = []  # rows confirmed without a change: stamped in one UPDATE below
        inserted: dict[str, dict[str, Any]] = {}
        for post in posts:
            external_id = str(post.external_id)
            modified = as_utc(post.modified_gmt)
            if modified and (newest is None or modified > newest):
                newest = modified
            row = existing.get(external_id)
            if row is not None and row.last_synced_at is not None and row.last_synced_at >= self._scan_started:
                self._duplicates += 1  # already handled earlier in this scan
                continue
            if external_id in inserted:
                self._duplicates += 1  # listed twice on one page
                continue
            if row is None:
                # New rows skip the ORM's unit of work: one multi-row INSERT per page (the
                # per-object flush was most of a first pull's time in the profile).
                values = remote_values(post, now)
                del values["conflict"]  # NULL by default
                inserted[external_id] = {
                    **values,
                    "site_id": self.site_id,
                    "content_type": post_type,
                    "external_id": external_id,
                    "source": "wordpress",
                    "created_at": now,
                    "updated_at": now,
                }
                self.counts.created += 1
                continue
            stored = as_utc(row.external_modified_gmt)
            # Any difference counts, not only a newer time: a modification time set back (an
            # import, a direct database edit) is found by a reconcile and must be applied.
            remote_changed = modified is None or modified != stored or row.external_status == "missing"
            if not remote_changed:
                self.counts.unchanged += 1
                seen.append(row.id)
                continue
            local_changed = row.synced_hash is not None and hash_of(row) != row.synced_hash
            if detect_conflicts and local_changed:
                if not row.conflict or row.conflict.get("remote_modified_gmt") != iso(modified):
                    row.conflict = {
                        "detected_at": iso(now),
                        "job_id": self.job_id,
                        "reason": "changed in WordPress and on the platform since the last sync",
                        "remote_modified_gmt": iso(modified),
                        "local_synced_at": iso(row.last_synced_at),
                        "remote_title": (post.title or "")[:200],
                    }
                seen.append(row.id)
                self.counts.conflict({"content_id": row.id, "external_id": external_id, "content_type": post_type})
                continue
            apply_remote(row, post, now)
            self.counts.updated += 1
        if inserted:
            db.session.execute(insert(Content), list(inserted.values()))
        if seen:
            # Seen in this scan (so not missing, and recognisable if listed twice); updated_at is
            # kept because nothing of the content changed.
            db.session.execute(
                update(Content)
                .where(Content.id.in_(seen))
                .values(last_synced_at=now, updated_at=Content.updated_at)
                .execution_options(synchronize_session=False)
            )
        return newest

    def _mark_missing(self, post_type: str, scan_started: datetime) -> None:
        """After a full scan: rows of this post type that the scan did not see are gone in WordPress."""
        if any(item.get("content_type") == post_type and "page" in item for item in self.counts.failed_items):
            return  # a page could not be read: its posts may exist, so mark nothing
        result = db.session.execute(
            update(Content)
            .where(
                Content.site_id == self.site_id,
                Content.content_type == post_type,
                Content.external_id.is_not(None),
                (Content.last_synced_at.is_(None)) | (Content.last_synced_at < scan_started),
                (Content.external_status.is_(None)) | (Content.external_status != "missing"),
            )
            .values(external_status="missing")
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        self.counts.missing += rowcount(result) or 0

    # ------------------------------------------------------------------ push

    def count_push_candidates(self) -> int:
        return db.session.scalar(
            db.select(func.count(Content.id)).where(
                Content.site_id == self.site_id,
                Content.status.in_(PUSH_STATUSES),
                Content.content_type.in_(selected_post_types(self.integration)),
            )
        )

    def push(self, count_unchanged: bool = True) -> None:
        """Create or update in WordPress every published/review content that is new or changed."""
        last_id = 0
        post_types = selected_post_types(self.integration)
        while True:
            batch = db.session.scalars(
                db.select(Content)
                .where(
                    Content.site_id == self.site_id,
                    Content.status.in_(PUSH_STATUSES),
                    Content.content_type.in_(post_types),
                    Content.id > last_id,
                )
                .order_by(Content.id)
                .limit(PUSH_BATCH)
            ).all()
            if not batch:
                return
            for index, content in enumerate(batch, start=1):
                last_id = content.id
                self._push_one(content, count_unchanged)
                self.progress.advance(1)
                if index % PUSH_HEARTBEAT_EVERY == 0:
                    self.progress.report()  # each push is an HTTP round trip: heartbeat often
            self.progress.report()

    def _push_one(self, content: Content, count_unchanged: bool) -> None:
        current = hash_of(content)
        if content.conflict:
            return  # counted when detected; pushing would overwrite the WordPress edit
        if content.external_id and content.external_status != "missing" and current == content.synced_hash:
            if count_unchanged:
                self.counts.unchanged += 1
            return
        if content.external_status == "missing":
            return  # deleted in WordPress: do not resurrect it
        post_input = PostInput(
            content_type=content.content_type,
            title=content.title,
            content_html=content.content_html,
            status=content.status,
            taxonomies=_pushed_taxonomies(content.taxonomies),
            content_id=content.id,
        )
        try:
            if content.external_id:
                remote = self.client.update_post(content.external_id, post_input)
            else:
                remote = self._create_once(content, post_input)
        except PostNotFound:
            content.external_status = "missing"
            db.session.commit()
            self.counts.missing += 1
            return
        except PlatformError as exc:
            if exc.ends_job:
                raise
            self.counts.error({"content_id": content.id, "external_id": content.external_id, "error": str(exc)})
            return
        now = utcnow()
        content.external_id = str(remote.external_id)
        content.external_url = remote.url
        content.external_status = remote.status
        content.external_modified_gmt = as_utc(remote.modified_gmt)
        content.last_synced_at = now
        content.synced_hash = current
        content.conflict = None
        content.push_intent = None
        # Commit each push at once: a worker dying after WordPress created the post must not
        # lose its external_id (a redelivered job would create it twice).
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            self.counts.error(
                {"content_id": content.id, "external_id": str(remote.external_id), "error": "external id already used"}
            )
            return
        self.counts.pushed += 1

    def _create_once(self, content: Content, post_input: PostInput) -> RemotePost:
        """Create the content's post, at most once even when the job is redelivered: a push
        intent is committed before the create, so a worker dying between WordPress creating the
        post and the commit of its id leaves a trace; the next push first looks for the post it
        may have created (``find_pushed_post``) and updates it instead of creating a second one."""
        if content.push_intent:
            since = parse_iso(str(content.push_intent.get("at") or ""))
            previous = replace(post_input, title=str(content.push_intent.get("title") or ""))
            found = self.client.find_pushed_post(previous, since)
            if found is not None:
                logger.info("content %s: adopting post %s created by an interrupted push", content.id, found)
                try:
                    return self.client.update_post(found, post_input)
                except PostNotFound:
                    pass  # deleted since: create it again
        content.push_intent = {"at": iso(utcnow()), "title": post_input.title, "job_id": self.job_id}
        db.session.commit()
        return self.client.create_post(post_input)


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
    values["synced_hash"] = content_hash(
        values["title"], values["content_html"], values["status"], values["taxonomies"]
    )
    return values


def apply_remote(row: Content, post: RemotePost, now: datetime) -> None:
    """Copy a WordPress post onto its Content row and mark it in sync."""
    for name, value in remote_values(post, now).items():
        setattr(row, name, value)


def _pushed_taxonomies(taxonomies: dict[str, Any] | None) -> dict[str, list[Any]]:
    result: dict[str, list[Any]] = {}
    for name in PUSHED_TAXONOMIES:
        values = (taxonomies or {}).get(name)
        if isinstance(values, list):
            result[name] = values
    return result
