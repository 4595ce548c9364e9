"""The pull (``from_external``): pages through each selected post type with the client's paging
(a page at a time, so memory stays flat however large the site is; up to ``WP_CONCURRENCY``
pages in flight) and upserts each page's rows in one batch. Per-post-type watermarks make later
pulls incremental; the job's checkpoint, committed with each page, lets a sliced or resumed job
go on where it stopped. A post changed on both sides since the last sync is recorded as a
conflict on its content, never overwritten.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db, rowcount
from ..models import Content, SiteIntegration, utcnow
from ..platforms.base import PostPage, RemotePost
from ..timeutil import as_utc, iso, parse_iso
from .common import SliceDone, SyncRun, apply_remote, hash_of, remote_values, selected_post_types
from .content_lookup import existing_contents, refresh_statistics, statistics_due

logger = logging.getLogger(__name__)


class Pull(SyncRun):
    """The pull direction of a ``SyncRun``."""

    def pull(self, full: bool = False, detect_conflicts: bool = True, defer_tail: bool = False) -> None:
        """Upsert every (changed) post of the selected post types, resuming from the job's
        checkpoint when it has one. With a slice budget (``max_pages``) it raises SliceDone once
        that many pages are stored and more remain; the checkpoint holds the position.

        What a page writes commits with the position after it, before the next page is waited
        for. A step that wrote nothing (an empty or unreadable page, a post type without changes)
        only moves the position in memory: a resume from the older committed one redoes a request
        and stores nothing. With ``defer_tail`` the last writes (the last page's rows, the
        watermarks) are left uncommitted once no WordPress request follows them: the caller
        commits them with its next write (the job's finish), so a pull that finds nothing costs
        no transaction of its own."""
        state = self.checkpoint
        watermarks = dict(state.get("watermarks") or self.integration.pull_watermarks or {})
        types_done: list[str] = list(state.get("types_done") or [])
        post_types = [post_type for post_type in selected_post_types(self.integration) if post_type not in types_done]
        for index, post_type in enumerate(post_types):
            if self.max_pages and self.pages_stored >= self.max_pages:
                self._move_to(watermarks=watermarks, types_done=types_done, post_type=None)
                self._commit_position()  # the next slice starts from here
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
            self._move_to(watermarks=watermarks, types_done=types_done, post_type=None)
            last_type = index == len(post_types) - 1
            if self._uncommitted and not (defer_tail and last_type):
                self._commit_position()  # the next type's requests follow
        self._save_watermarks(watermarks, commit=not defer_tail)

    def _move_to(self, **position: Any) -> None:
        """Set the job's position (with the counts and progress so far) in memory only."""
        self.checkpoint = {
            **self.checkpoint,
            **position,
            "phase": "pull",
            "counts": self.counts.as_details(),
            "progress": [self.progress.done, self.progress.total],
            "incremental_used": dict(self.incremental_used),
        }

    def _save_checkpoint(self, **position: Any) -> None:
        """Stage the job's position (and the counts and progress so far) in the current
        transaction, so it commits with the page it describes."""
        self._move_to(**position)
        if self.save_checkpoint is not None:
            self.save_checkpoint(self.checkpoint, self.progress.done, self.progress.total)

    def _commit_position(self) -> None:
        """Commit what was written since the last commit with the position reached (fenced by
        the job's claim: a job that lost it writes nothing and stops)."""
        self._save_checkpoint()
        db.session.commit()
        self._uncommitted = False
        if self.save_checkpoint is not None:
            self.progress.reported()  # the checkpoint wrote the progress and the heartbeat
        else:
            self.progress.report()

    def _save_watermarks(self, watermarks: dict[str, str], commit: bool = True) -> None:
        integration = db.session.get(SiteIntegration, self.integration.id)
        if integration is None:
            return
        parsed = [parse_iso(value) for value in watermarks.values()]
        parsed_values = [value for value in parsed if value is not None]
        newest = max(parsed_values) if parsed_values else None
        # Unchanged (a pull that found nothing new): nothing to write.
        if integration.pull_watermarks != watermarks or integration.last_pull_modified_gmt != newest:
            integration.pull_watermarks = watermarks
            integration.last_pull_modified_gmt = newest
        if commit:
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
                self._move_to(
                    **self._type_state,
                    page=page.number,
                    newest=iso(newest),
                    duplicates=self._duplicates,
                    incremental=page.incremental,
                )
                self._uncommitted = self._uncommitted or bool(page.posts)
                self.pages_stored += 1
                last_page = page.total_pages is not None and page.number >= page.total_pages
                sliced = bool(self.max_pages and self.pages_stored >= self.max_pages and not last_page)
                analyze = statistics_due(created_before, self.counts.created)
                if sliced or analyze or (self._uncommitted and not last_page):
                    # The page's rows and the position after it commit together, before the next
                    # page is waited for (a last page's wait for the type's end: one commit less).
                    self._commit_position()
                elif not last_page:
                    self.progress.report_if_due()
                refresh_statistics(created_before, self.counts.created)  # commits: after the page's commit
                if sliced:
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
        self._uncommitted = True  # committed with the position after the type
        self.counts.missing += rowcount(result) or 0
