"""Translating between WordPress's REST JSON and the platform's types: dates, rendered
fields, post types and taxonomies, post statuses, the plugin's meta key, and the checks on raw
post JSON that decide whether a listed post can be stored."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from ...timeutil import iso_z, parse_iso
from ..base import RemotePost
from ..http_types import HttpResponse
from ..redact import safe_text, safe_wp_code

PLUGIN_NAMESPACE = "igny8/v1"
CORE_NAMESPACE = "wp/v2"
META_CONTENT_ID = "_igny8_content_id"  # the plugin's post meta naming the platform content
SEO_FIELD = (
    "igny8_seo"  # the plugin's REST field: {"title", "description", "focus_keyword", "canonical_url", "noindex"}
)

# WordPress post status -> platform Content.status, and back.
# A scheduled post (future) is a published content with a future publish_at.
WP_TO_PLATFORM_STATUS = {"publish": "published", "future": "published", "pending": "review"}
PLATFORM_TO_WP_STATUS = {"published": "publish", "review": "pending", "draft": "draft"}


def platform_status(wp_status: str | None) -> str:
    return WP_TO_PLATFORM_STATUS.get(wp_status or "", "draft")


def wordpress_status(status: str) -> str:
    """The WordPress status for a platform status (WordPress's own names pass through)."""
    return PLATFORM_TO_WP_STATUS.get(status, status)


def parse_wp_datetime(value: Any) -> datetime | None:
    """WordPress ``*_gmt`` fields: ``2024-05-01T10:00:00`` (UTC, no suffix)."""
    return parse_iso(value)


def format_wp_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with ``Z``, to the second; WordPress converts it to the site's timezone itself."""
    return iso_z(value, "seconds")


def _rendered_or_raw(value: Any, prefer_raw: bool = True) -> str:
    if isinstance(value, dict):
        if prefer_raw and isinstance(value.get("raw"), str):
            return value["raw"]
        rendered = value.get("rendered")
        return rendered if isinstance(rendered, str) else ""
    return value if isinstance(value, str) else ""


def structure_entry(slug: str, item: dict[str, Any], related: str) -> dict[str, Any]:
    """A post type or taxonomy as stored in content_types; ``related`` is the list that links
    the two (a type's ``taxonomies``, a taxonomy's ``types``)."""
    return {
        "name": item.get("name"),
        "slug": item.get("slug", slug),
        "rest_base": item.get("rest_base") or slug,
        "rest_namespace": item.get("rest_namespace") or CORE_NAMESPACE,
        "hierarchical": bool(item.get("hierarchical")),
        related: list(item.get(related) or []),
    }


def wp_error(response: HttpResponse) -> tuple[str | None, str | None]:
    data = response.json_or_none()
    if isinstance(data, dict):
        return safe_wp_code(data.get("code")), safe_text(data.get("message"))
    return None, None


def wp_error_detail(response: HttpResponse) -> tuple[str | None, str]:
    """WordPress's error code and a message suffix for it: `` (code: message)``, `` (code)`` or ``""``."""
    code, message = wp_error(response)
    detail = f" ({code}: {message})" if code and message else (f" ({code})" if code else "")
    return code, detail


def to_remote_post(data: dict[str, Any], content_type: str, taxonomy_keys: set[str]) -> RemotePost:
    """A post's REST JSON as a RemotePost; ``taxonomy_keys`` are the REST bases of its terms."""
    taxonomies: dict[str, list[Any]] = {}
    for key in taxonomy_keys:
        value = data.get(key)
        if isinstance(value, list):
            taxonomies[key] = [item for item in value if isinstance(item, int)]
    title = _rendered_or_raw(data.get("title"))
    if isinstance(data.get("title"), dict) and "raw" not in data["title"]:
        title = html.unescape(title)
    status = str(data.get("status") or "")
    return RemotePost(
        external_id=str(data.get("id")),
        content_type=str(data.get("type") or content_type),
        title=title,
        content_html=_rendered_or_raw(data.get("content")),
        status=status,
        url=data.get("link") if isinstance(data.get("link"), str) else None,
        modified_gmt=parse_wp_datetime(data.get("modified_gmt")),
        taxonomies=taxonomies,
        raw=data,
        content_status=platform_status(status),
    )


def safe_id(value: Any) -> str | None:
    return None if value is None else str(value)[:64]


def post_problem(post: RemotePost) -> str | None:
    """Why a listed post cannot be stored, or None. The JSON itself is checked too: the mapping
    is lenient (a broken field becomes empty), and an empty title or body must not silently
    overwrite a good copy."""
    external_id = getattr(post, "external_id", None)
    if external_id is None or str(external_id).strip() == "" or len(str(external_id)) > 64:
        return "it has no usable id"
    if not isinstance(post.title, str):
        return "the title is not text"
    if not isinstance(post.content_html, str):
        return "the content is not text"
    if post.status is not None and not isinstance(post.status, str):
        return "the status is not text"
    if post.modified_gmt is not None and not isinstance(post.modified_gmt, datetime):
        return "the modified time is not a date"
    if post.url is not None and (not isinstance(post.url, str) or len(post.url) > 2048):
        return "the link is not a URL"
    if post.taxonomies is not None and not isinstance(post.taxonomies, dict):
        return "the taxonomies are not an object"
    return _raw_problem(post.raw)


def _raw_problem(raw: Any) -> str | None:
    if not isinstance(raw, dict) or not raw:
        return None
    post_id = raw.get("id")
    if not isinstance(post_id, int) or isinstance(post_id, bool) or post_id <= 0:
        return "its id is not a positive integer"
    for name in ("title", "content"):
        if name in raw and not isinstance(raw[name], dict | str):
            return f"its {name} is neither text nor a rendered object"
    modified = raw.get("modified_gmt")
    if modified is not None:
        if not isinstance(modified, str):
            return "its modified_gmt is not a date"
        if parse_wp_datetime(modified) is None:
            return "its modified_gmt is not a date"
    return None
