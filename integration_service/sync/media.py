"""Images of a post into the site's media library, before the post is written.

``prepare_media`` takes a post's HTML and featured image, makes sure every image it references
(the featured image, and each ``<img src>`` with an absolute http(s) URL not on the site) is an
attachment of the site, and returns the HTML to send with those tags pointing at the attachments
(``media_html``), the featured attachment id and one ``MediaItem`` per image. The featured image
is taken in even when it is on the site already (``featured_media`` needs an attachment id, and
core REST cannot find one by URL); a failed image's tag is left as it was.

Once per site: ``SiteMedia`` rows remember each source URL and the sha256 of its bytes with the
attachment, so the same URL (not fetched again) or the same bytes under another URL (fetched, not
uploaded) reuse it, and a re-push of unchanged content fetches and uploads nothing. (A URL whose
image was replaced keeps its first attachment: give a new image a new URL.)

Redelivery: the row is committed ``pending`` before the upload and ``done`` after it. A pending
row found later means a worker may have died after WordPress stored the file: the attachment is
looked up (``WordPressMedia.find_uploaded``: exact by source hash with the companion plugin, by
file name and time window without it, whose remaining risk its docstring states) before
anything is uploaded again. Two jobs never upload the same bytes at once: the upload runs under
a lock per (site, sha256) (``media_locks``), so a pending row seen while holding the lock is
never another job's upload in flight.

``prepare_media`` may commit the caller's database session (the pending rows must be durable
before each upload; images prepared in parallel use sessions of their own). Permanent problems
with one image become a failed item; transient ones (network, 5xx, 429, the lock not free in
time) raise a transient ``PlatformError`` so the job is retried.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import SiteMedia
from ..platforms.base import PlatformError
from ..platforms.http import HttpSettings, HttpTransport
from ..platforms.wordpress.client import WordPressClient
from ..platforms.wordpress.media import Attachment, MediaRejected, WordPressMedia, is_default_title
from .media_fetch import FetchedImage, ImageRefused, fetch_image
from .media_html import external_image_url, find_images, render_img, replace_tags
from .media_locks import image_lock, url_lock

logger = logging.getLogger(__name__)

UPLOADED, REUSED, FAILED = "uploaded", "reused", "failed"
FIELD_NAMES = ("alt_text", "caption", "title")


@dataclass(frozen=True)
class MediaSettings:
    max_bytes: int = 20 * 1024 * 1024
    fetch_timeout: float = 60.0
    lock_wait: float = 30.0
    # Images of one post prepared at once (each fetch and upload still waits for its slot in
    # the site's and the image host's politeness limits).
    parallel: int = 4
    http: HttpSettings = field(default_factory=HttpSettings)  # for the image hosts

    @classmethod
    def for_client(cls, client: WordPressClient, config: Mapping[str, Any] | None = None) -> MediaSettings:
        """The app's ``MEDIA_*`` settings; image hosts get the site client's SSRF rules,
        timeouts, retries and politeness, with the image size cap."""
        if config is None:
            config = current_app.config if has_app_context() else {}
        max_bytes = int(config.get("MEDIA_MAX_BYTES", cls.max_bytes))
        fetch_timeout = float(config.get("MEDIA_FETCH_TIMEOUT_SECONDS", cls.fetch_timeout))
        base = client.settings
        http = HttpSettings(
            connect_timeout=base.connect_timeout,
            read_timeout=min(base.read_timeout, fetch_timeout),
            max_retries=base.max_retries,
            max_response_bytes=max_bytes,
            allow_private=base.allow_private,
            pool_size=base.pool_size,
            max_retry_wait=base.max_retry_wait,
            politeness=base.politeness,
            site_id=base.site_id,
        )
        lock_wait = float(config.get("MEDIA_LOCK_WAIT_SECONDS", cls.lock_wait))
        parallel = max(1, int(config.get("MEDIA_PARALLEL", base.politeness.concurrency)))
        return cls(max_bytes=max_bytes, fetch_timeout=fetch_timeout, lock_wait=lock_wait, parallel=parallel, http=http)


@dataclass
class MediaItem:
    """One entry of ``Content.media``."""

    source_url: str
    external_id: str | None
    external_url: str | None
    status: str  # uploaded | reused | failed
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_url": self.source_url,
            "external_id": self.external_id,
            "external_url": self.external_url,
            "status": self.status,
            "error": self.error,
        }


@dataclass
class PreparedMedia:
    content_html: str  # the HTML to send to WordPress (srcs rewritten)
    featured_media_id: int | None
    items: list[MediaItem]
    uploaded: int = 0
    reused: int = 0
    failed: int = 0

    @property
    def ok(self) -> bool:
        return self.failed == 0


@dataclass
class _Resolved:
    item: MediaItem
    attachment: Attachment | None = None


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


def upload_filename(source_url: str, sha256: str, ext: str) -> str:
    """``<name>-<sha12>.<ext>``: readable, and findable again by the hash digits it carries."""
    stem = unquote(urlsplit(source_url).path.rsplit("/", 1)[-1]).rsplit(".", 1)[0]
    stem = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:60].strip("-") or "image"
    return f"{stem}-{sha256[:12]}.{ext}"


def prepare_media(
    client: WordPressClient,
    site_id: int,
    content_html: str,
    featured_image: dict | None,
    *,
    settings: MediaSettings | None = None,
) -> PreparedMedia:
    """Upload (or reuse) every image of a post; see the module docstring."""
    settings = settings or MediaSettings.for_client(client)
    tags = [(tag, external_image_url(tag.src, client.site_url)) for tag in find_images(content_html or "")]
    wanted: dict[str, dict[str, str]] = {}  # source URL -> attachment fields it asks for, in order
    featured = featured_image or {}
    featured_url = str(featured.get("url") or "").strip() or None
    if featured_url:
        given = {"alt_text": featured.get("alt"), "caption": featured.get("caption"), "title": featured.get("title")}
        wanted[featured_url] = {key: v.strip() for key, v in given.items() if isinstance(v, str) and v.strip()}
    for tag, url in tags:
        if url is not None:
            fields = wanted.setdefault(url, {})
            if tag.alt and not fields.get("alt_text"):
                fields["alt_text"] = tag.alt
    with _Preparer(client, site_id, settings) as preparer:
        resolved = preparer.resolve_all(wanted)
    replacements = []
    for tag, url in tags:
        done = resolved.get(url) if url is not None else None
        if done is not None and done.attachment is not None:
            att = done.attachment
            replacements.append((tag, render_img(tag, att.url, att.id, att.width, att.height)))
    items = [entry.item for entry in resolved.values()]
    cover = resolved.get(featured_url) if featured_url else None
    return PreparedMedia(
        content_html=replace_tags(content_html or "", replacements),
        featured_media_id=cover.attachment.id if cover and cover.attachment else None,
        items=items,
        uploaded=sum(item.status == UPLOADED for item in items),
        reused=sum(item.status == REUSED for item in items),
        failed=sum(item.status == FAILED for item in items),
    )


class _Preparer:
    def __init__(self, client: WordPressClient, site_id: int, settings: MediaSettings) -> None:
        self.client = client
        self.media = WordPressMedia(client)
        self.site_id = site_id
        self.settings = settings
        # Its own session: image hosts never see the site's credentials (none are set on it).
        self.fetcher = HttpTransport(self.settings.http)

    def __enter__(self) -> _Preparer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.fetcher.close()

    def resolve_all(self, wanted: dict[str, dict[str, str]]) -> dict[str, _Resolved]:
        """Every image, ``settings.parallel`` at a time: each thread in its own app context
        (so its own database session). Images already known with every field this post gives
        are answered from one query first, with no thread and no request: the common case once
        a site's images are in (a re-push, a post reusing images)."""
        resolved = self._known(wanted)
        rest = {url: fields for url, fields in wanted.items() if url not in resolved}
        if len(rest) <= 1 or self.settings.parallel <= 1 or not has_app_context():
            resolved.update({url: self._resolve_in_context(url, fields, None) for url, fields in rest.items()})
        else:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            with ThreadPoolExecutor(min(len(rest), self.settings.parallel), thread_name_prefix="media") as pool:
                futures = {url: pool.submit(self._resolve_in_context, url, fields, app) for url, fields in rest.items()}
                # .result() re-raises the first failure (a transient error fails the whole post).
                resolved.update({url: future.result() for url, future in futures.items()})
        return {url: resolved[url] for url in wanted}  # in the post's order

    def _known(self, wanted: dict[str, dict[str, str]]) -> dict[str, _Resolved]:
        hashes = {url_hash(url): url for url in wanted}
        query = select(SiteMedia).where(
            SiteMedia.site_id == self.site_id, SiteMedia.url_hash.in_(hashes), SiteMedia.state == "done"
        )
        found: dict[str, _Resolved] = {}
        for row in db.session.scalars(query.execution_options(populate_existing=True)):
            url = hashes.get(row.url_hash)
            if url is None or row.source_url != url or not row.attachment_id:
                continue
            known = dict(row.attachment_fields or {})
            if all(_has_field(known, key, row.filename) for key, value in wanted[url].items() if value):
                attachment = Attachment(row.attachment_id, row.attachment_url or "", row.width, row.height, known)
                found[url] = self._ok(url, attachment, REUSED)
        return found

    def _resolve_in_context(self, url: str, fields: dict[str, str], app: Any) -> _Resolved:
        if app is None:
            return self.resolve(url, fields)
        with app.app_context():
            try:
                return self.resolve(url, fields)
            finally:
                db.session.remove()

    def resolve(self, url: str, fields: dict[str, str]) -> _Resolved:
        with url_lock(self.site_id, url, self.settings.lock_wait):
            return self._resolve(url, fields)

    def _resolve(self, url: str, fields: dict[str, str]) -> _Resolved:
        for _attempt in range(2):  # a second time only when a known attachment was deleted
            row = self._row_by_url(url)
            if row is not None and row.state == "done" and row.attachment_id:
                attachment = self._with_fields(row, fields)
                if attachment is not None:
                    return self._ok(url, attachment, REUSED)
                continue
            try:
                image = fetch_image(
                    self.fetcher, url, max_bytes=self.settings.max_bytes, timeout=self.settings.fetch_timeout
                )
            except ImageRefused as exc:
                return _Resolved(MediaItem(url, None, None, FAILED, exc.reason))
            try:
                with image_lock(self.site_id, image.sha256, self.settings.lock_wait):
                    outcome = self._store(url, image, fields)
            finally:
                image.close()
            if outcome is not None:
                return outcome
        raise PlatformError(f"The attachment for {url} keeps disappearing from WordPress.", transient=True)

    def _ok(self, url: str, attachment: Attachment, status: str) -> _Resolved:
        return _Resolved(MediaItem(url, str(attachment.id), attachment.url, status), attachment)

    # -- rows ----------------------------------------------------------------------------------

    def _row_by_url(self, url: str) -> SiteMedia | None:
        query = select(SiteMedia).where(SiteMedia.site_id == self.site_id, SiteMedia.url_hash == url_hash(url))
        row = db.session.scalars(query.execution_options(populate_existing=True)).first()
        return row if row is not None and row.source_url == url else None

    def _rows_by_sha(self, sha256: str) -> list[SiteMedia]:
        query = (
            select(SiteMedia)
            .where(SiteMedia.site_id == self.site_id, SiteMedia.sha256 == sha256)
            .order_by(SiteMedia.id)
            .execution_options(populate_existing=True)
        )
        return list(db.session.scalars(query))

    def _url_row(self, url: str, image: FetchedImage) -> SiteMedia:
        row = self._row_by_url(url)
        if row is None:
            row = SiteMedia(site_id=self.site_id, source_url=url, url_hash=url_hash(url))
            db.session.add(row)
        row.sha256, row.mime, row.width, row.height = image.sha256, image.mime, image.width, image.height
        row.filename = upload_filename(url, image.sha256, image.ext)
        return row

    def _commit(self) -> None:
        try:
            db.session.commit()
        except IntegrityError:
            # Another job stored the same URL at the same moment: its row wins, the job retries.
            db.session.rollback()
            raise PlatformError("Another job stored the same image at the same time.", transient=True) from None

    def _mark_done(self, rows: list[SiteMedia], attachment: Attachment) -> None:
        for row in rows:
            row.state, row.attachment_id, row.attachment_url = "done", attachment.id, attachment.url
            row.width = attachment.width or row.width
            row.height = attachment.height or row.height
            row.attachment_fields = dict(attachment.fields)
        self._commit()

    # -- the locked part: reuse by bytes, recover a pending upload, or upload --------------------

    def _store(self, url: str, image: FetchedImage, fields: dict[str, str]) -> _Resolved | None:
        same_bytes = self._rows_by_sha(image.sha256)
        done = next((row for row in same_bytes if row.state == "done" and row.attachment_id), None)
        if done is not None:
            row = self._url_row(url, image)
            row.filename = done.filename
            self._mark_done([row], Attachment(done.attachment_id or 0, done.attachment_url or "", done.width,
                                              done.height, dict(done.attachment_fields or {})))  # fmt: skip
            attachment = self._with_fields(row, fields)
            return None if attachment is None else self._ok(url, attachment, REUSED)
        row = self._url_row(url, image)
        pending = [candidate for candidate in same_bytes if candidate.state == "pending"]
        for candidate in pending:
            # Under the lock nobody else is uploading these bytes: a pending row is a dead upload.
            found = self.media.find_uploaded(image.sha256, candidate.filename, candidate.updated_at)
            if found is not None:
                logger.info("site %s: adopting attachment %s left by an interrupted upload", self.site_id, found.id)
                self._mark_done([*pending, row], found)
                attachment = self._with_fields(row, fields)
                return None if attachment is None else self._ok(url, attachment, REUSED)
        row.state = "pending"
        for candidate in pending:
            if candidate is not row:
                db.session.delete(candidate)  # nothing of it reached WordPress
        self._commit()  # durable before the upload: the next run knows an upload may have happened
        try:
            attachment = self.media.upload(
                image.file,
                filename=row.filename,
                mime=image.mime,
                sha256=image.sha256,
                source_url=url,
                alt_text=fields.get("alt_text"),
                caption=fields.get("caption"),
            )
        except MediaRejected as exc:
            db.session.delete(row)
            self._commit()
            return _Resolved(MediaItem(url, None, None, FAILED, exc.message))
        self._mark_done([row], attachment)
        final = self._with_fields(row, fields)
        return None if final is None else self._ok(url, final, UPLOADED)

    # -- attachment fields ---------------------------------------------------------------------

    def _with_fields(self, row: SiteMedia, fields: dict[str, str]) -> Attachment | None:
        """The row's attachment with the fields this post gives set where the attachment has
        none; None (and the rows of that attachment removed) when it no longer exists."""
        known = dict(row.attachment_fields or {})
        missing = {key: value for key, value in fields.items() if value and not _has_field(known, key, row.filename)}
        attachment = Attachment(row.attachment_id or 0, row.attachment_url or "", row.width, row.height, known)
        if not missing:
            return attachment
        current = self.media.get(attachment.id)
        if current is not None:
            missing = {key: v for key, v in missing.items() if not _has_field(current.fields, key, row.filename)}
            if missing:
                current = self.media.update_fields(attachment.id, missing)
        if current is None:
            logger.info("site %s: attachment %s is gone; uploading its image again", self.site_id, attachment.id)
            for stale in db.session.scalars(
                select(SiteMedia).where(SiteMedia.site_id == self.site_id, SiteMedia.attachment_id == attachment.id)
            ):
                db.session.delete(stale)
            self._commit()
            return None
        for same in db.session.scalars(
            select(SiteMedia).where(SiteMedia.site_id == self.site_id, SiteMedia.attachment_id == attachment.id)
        ):
            same.attachment_fields = dict(current.fields)
        self._commit()
        return Attachment(attachment.id, current.url or attachment.url, attachment.width, attachment.height,
                          current.fields)  # fmt: skip

    # -- the per-(site, bytes) lock --------------------------------------------------------------


def _has_field(fields: Mapping[str, str], key: str, filename: str) -> bool:
    value = (fields.get(key) or "").strip()
    return bool(value) and not (key == "title" and is_default_title(value, filename))
