"""The push (``to_external``): creates or updates in WordPress every published or in-review
content of the selected post types that is new or changed since its last sync (by content
hash), committing each post's external id at once; a create is made at most once even when the
job is redelivered (the push intent, ``find_pushed_post``). Content in conflict, or deleted in
WordPress, is left alone.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Content, utcnow
from ..platforms.base import PlatformError, PostInput, PostNotFound, RemotePost
from ..timeutil import as_utc, iso, parse_iso
from . import push_publishing
from .common import SyncRun, content_hash, publishing_of, selected_post_types

logger = logging.getLogger(__name__)

PUSH_BATCH = 100
PUSH_HEARTBEAT_EVERY = 20
PUSH_STATUSES = ("published", "review")
PUSHED_TAXONOMIES = ("categories", "tags")


class Push(SyncRun):
    """The push direction of a ``SyncRun``."""

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

    def publish_one(self, content: Content) -> str:
        """``publish_content``: push one content now, changed since its last sync or not.
        Returns what happened (created, updated, failed, conflict, missing)."""
        if content.conflict:
            error = "changed in WordPress and on the platform since the last sync: resolve the conflict first"
            self.counts.error({"content_id": content.id, "external_id": content.external_id, "error": error})
            return "conflict"
        if content.external_status == "missing":
            error = "its WordPress post was deleted; clear external_id to publish it as a new post"
            self.counts.error({"content_id": content.id, "external_id": content.external_id, "error": error})
            return "missing"
        return self._push_one(content, count_unchanged=False, force=True)

    def _push_one(self, content: Content, count_unchanged: bool, force: bool = False) -> str:
        # The fields as they are now (a PATCH during the push is found changed by the next one).
        snapshot = (content.title, content.content_html, content.status, content.taxonomies, publishing_of(content))
        current = content_hash(*snapshot)
        if content.conflict:
            return "conflict"  # counted when detected; pushing would overwrite the WordPress edit
        unchanged = content.external_status != "missing" and current == content.synced_hash
        if content.external_id and unchanged and not force:
            if count_unchanged:
                self.counts.unchanged += 1
            return "unchanged"
        if content.external_status == "missing":
            return "missing"  # deleted in WordPress: do not resurrect it
        try:
            extra = push_publishing.prepare(self.client, content, self.counts)  # images first
        except PlatformError as exc:
            if exc.ends_job:
                raise
            self.counts.error({"content_id": content.id, "external_id": content.external_id, "error": str(exc)})
            return "failed"
        if extra is None:
            return "failed"
        post_input = PostInput(
            content_type=content.content_type,
            title=content.title,
            status=content.status,
            taxonomies=_pushed_taxonomies(content.taxonomies),
            content_id=content.id,
            **{key: value for key, value in extra.items() if not key.startswith("_")},
        )
        created = not content.external_id
        try:
            if content.external_id:
                remote = self.client.update_post(content.external_id, post_input)
            else:
                remote = self._create_once(content, post_input)
        except PostNotFound:
            content.external_status = "missing"
            db.session.commit()
            self.counts.missing += 1
            return "missing"
        except PlatformError as exc:
            if exc.ends_job:
                raise
            self.counts.error({"content_id": content.id, "external_id": content.external_id, "error": str(exc)})
            return "failed"
        push_publishing.store_result(content, remote, extra)
        if content.slug != snapshot[4].get("slug"):
            current = content_hash(*snapshot[:4], {**snapshot[4], "slug": content.slug})
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
            return "failed"
        self.counts.pushed += 1
        return "created" if created else "updated"

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


def _pushed_taxonomies(taxonomies: dict[str, Any] | None) -> dict[str, list[Any]]:
    result: dict[str, list[Any]] = {}
    for name in PUSHED_TAXONOMIES:
        values = (taxonomies or {}).get(name)
        if isinstance(values, list):
            result[name] = values
    return result
