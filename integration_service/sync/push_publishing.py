"""The publishing part of a push (contract "Publishing"): before the one post write, the post's
images go into the site's media library (``media.prepare_media``; the body sent has their
``src``s rewritten, the featured image becomes ``featured_media``), SEO goes only where the
companion plugin takes it (else a per-post warning), and after the write the content keeps what
WordPress answered (its slug, the featured attachment, the images of this push in ``media``).

Images first, then a single write with the final status: nothing public ever misses an image. An
image that fails for good fails its post (a per-item error naming the image and the reason); a
transient failure raises, and the job is retried.
"""

from __future__ import annotations

import logging
from typing import Any

from ..extensions import db
from ..models import Content
from ..platforms.base import PlatformClient, RemotePost
from .common import SyncCounts
from .media import PreparedMedia, prepare_media

logger = logging.getLogger(__name__)

SEO_NEEDS_PLUGIN = "SEO fields need the IGNY8 Bridge plugin on the site; they were not sent (the post was)."


def prepare(client: PlatformClient, content: Content, counts: SyncCounts) -> dict[str, Any] | None:
    """The PostInput fields of the content's publishing part, its images uploaded first; None
    when an image failed (the post's error is counted and its images recorded)."""
    featured = content.featured_image or None
    known = content.featured_media or {}
    # A featured image read back from WordPress is that attachment already: not uploaded again.
    reuse = featured is not None and bool(known.get("url")) and featured.get("url") == known.get("url")
    prepared: PreparedMedia = prepare_media(
        client,  # type: ignore[arg-type]  # the WordPress client (the only platform that syncs)
        content.site_id,
        content.content_html or "",
        None if reuse else featured,
    )
    counts.media_uploaded += prepared.uploaded
    counts.media_reused += prepared.reused
    counts.media_failed += prepared.failed
    if not prepared.ok:
        content.media = [item.as_dict() for item in prepared.items]
        db.session.commit()
        failed = [item for item in prepared.items if item.status == "failed"]
        reasons = "; ".join(f"image {item.source_url}: {item.error}" for item in failed[:5])
        counts.error({"content_id": content.id, "external_id": content.external_id, "error": reasons})
        return None
    if featured is None:
        featured_media = 0 if known.get("id") else None  # removed on the platform: remove it there
    else:
        featured_media = int(known["id"]) if reuse else prepared.featured_media_id
    seo = content.seo or None
    if seo and not client.supports_seo():
        counts.warn({"content_id": content.id, "warning": SEO_NEEDS_PLUGIN})
        seo = None
    return {
        "content_html": prepared.content_html,
        "excerpt": content.excerpt,
        "slug": content.slug,
        "publish_at": content.publish_at,
        "author": content.author,
        "format": content.format,
        "sticky": content.sticky,
        "comment_status": content.comment_status,
        "featured_media": featured_media,
        "seo": seo,
        "_prepared": prepared,
        "_featured_url": featured.get("url") if featured else None,
    }


def store_result(content: Content, remote: RemotePost, extra: dict[str, Any]) -> None:
    """Keep what WordPress answered (not committed here)."""
    prepared: PreparedMedia = extra["_prepared"]
    slug = remote.publishing.get("slug") if remote.publishing else None
    if slug:
        content.slug = slug  # WordPress may have made it unique (-2)
    media_id = extra.get("featured_media")
    if media_id:
        content.featured_media = {"id": media_id, "url": extra.get("_featured_url")}
    elif media_id == 0:
        content.featured_media = None
    content.media = [item.as_dict() for item in prepared.items] or None
