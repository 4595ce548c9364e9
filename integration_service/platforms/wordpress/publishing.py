"""The publishing fields of a post (contract "Publishing"): what a write sends beyond title,
body, status and terms (excerpt, slug, date_gmt and scheduling, author, format, sticky, comment
status, featured_media, and SEO through the companion plugin's ``igny8_seo`` field), and what a
read fills back, featured images resolved in one batched media request per page.

Per client (one job) it caches what it learns from the site: which fields each post type's REST
schema has (pages have no format or sticky, and WordPress would silently drop them) and the user
id of each author login.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from ...timeutil import parse_iso
from ..base import PlatformError, PostInput, RemotePost
from .mapping import CORE_NAMESPACE, PLUGIN_NAMESPACE, SEO_FIELD, format_wp_datetime, wordpress_status
from .structure import StructureMixin

logger = logging.getLogger(__name__)

# Fields sent only when the post type's schema has them.
OPTIONAL_FIELDS = ("excerpt", "slug", "date_gmt", "author", "format", "sticky", "comment_status", "featured_media")
# What a read asks for (``_fields``) beside the fields a pull always stores.
READ_FIELDS = (
    "slug", "date_gmt", "author", "format", "sticky", "comment_status", "featured_media", SEO_FIELD,
)  # fmt: skip
MAX_INCLUDE = 100
SEO_KEYS = ("title", "description", "focus_keyword", "canonical_url", "noindex")


class PublishingMixin(StructureMixin):
    """Publishing fields on writes and reads (see the module docstring)."""

    def _init_caches(self) -> None:
        super()._init_caches()
        self._type_fields: dict[str, frozenset[str] | None] = {}
        self._author_ids: dict[str, int] = {}

    def supports_seo(self) -> bool:
        """SEO fields reach WordPress only through the companion plugin's ``igny8_seo`` field."""
        return PLUGIN_NAMESPACE in self.root().namespaces

    def type_fields(self, content_type: str) -> frozenset[str] | None:
        """The fields the post type's REST schema has (None when the schema could not be read:
        everything is sent then, and WordPress ignores what it does not know). One request per
        type and client: ``GET <route>?_method=OPTIONS`` (the route's description; plain GET,
        so proxies that refuse OPTIONS do not matter)."""
        if content_type not in self._type_fields:
            route = self._type_route(content_type)
            response = self.call("GET", route, params={"_method": "OPTIONS"}, auth=self._default_auth())
            try:
                data = self._json(response, f"the {content_type} schema")
            except PlatformError as exc:
                if exc.transient:
                    raise
                logger.info("%s: no REST schema for %s (%s); sending every field", self.site_url, content_type, exc)
                data = None
            schema = data.get("schema") if isinstance(data, dict) else None
            properties = schema.get("properties") if isinstance(schema, dict) else None
            self._type_fields[content_type] = frozenset(properties) if isinstance(properties, dict) else None
        return self._type_fields[content_type]

    def author_id(self, author: str) -> int:
        """A user id for an id or a login; a login is looked up once per client. Raises a
        per-post PlatformError naming the author when WordPress has no such user."""
        text = author.strip()
        if text.isdigit():
            return int(text)
        key = text.lower()
        if key not in self._author_ids:
            self._author_ids[key] = self._find_author(text)
        return self._author_ids[key]

    def _find_author(self, login: str) -> int:
        params = {"search": login, "context": "edit", "per_page": 100, "_fields": "id,username,slug"}
        response = self.call("GET", f"{CORE_NAMESPACE}/users", params=params, auth="app")
        if response.status_code == 403:
            # The Application Password's user may not list users: that post cannot name an author
            # by login (an id works), but the job goes on.
            raise PlatformError(
                f"WordPress does not let this user look up the author {login!r} (HTTP 403: list_users is needed); "
                "give the author's user id instead.",
                stage="http",
                status_code=403,
            )
        users = self._json(response, f"the user search for {login!r}")
        candidates = [user for user in users if isinstance(user, dict)] if isinstance(users, list) else []
        for exact in (True, False):
            for user in candidates:
                name = user.get("username") if isinstance(user.get("username"), str) else user.get("slug")
                if not isinstance(name, str) or not isinstance(user.get("id"), int):
                    continue
                if name == login if exact else name.lower() == login.lower():
                    return int(user["id"])
        raise PlatformError(f"WordPress has no user with the login {login!r} (author).", stage="http")

    def _publishing_body(self, post: PostInput) -> dict[str, Any]:
        """The publishing part of a write's body, only the fields the post type has."""
        body: dict[str, Any] = {}
        if post.excerpt is not None:
            body["excerpt"] = post.excerpt
        if post.slug is not None:
            body["slug"] = post.slug
        if post.publish_at is not None:
            body["date_gmt"] = format_wp_datetime(post.publish_at).removesuffix("Z")
            if post.status == "published" and post.publish_at > datetime.now(UTC):
                # Scheduled. WordPress would infer it from the date too; saying it is clearer, and
                # WordPress still publishes at once a date less than a minute ahead.
                body["status"] = "future"
        if post.author is not None:
            body["author"] = self.author_id(post.author)
        for name in ("format", "sticky", "comment_status", "featured_media"):
            value = getattr(post, name)
            if value is not None:
                body[name] = value
        supported = self.type_fields(post.content_type) if any(key in body for key in OPTIONAL_FIELDS) else None
        if supported is not None:
            body = {key: value for key, value in body.items() if key not in OPTIONAL_FIELDS or key in supported}
        if body.get("status") == "future" and "date_gmt" not in body:
            body["status"] = wordpress_status(post.status)
        if post.seo is not None and self.supports_seo():
            seo = post.seo
            body[SEO_FIELD] = {
                key: (bool(seo.get(key)) if key == "noindex" else seo.get(key) or "") for key in SEO_KEYS
            }
        return body

    # -- reads ----------------------------------------------------------------------------------

    def resolve_featured_images(self, posts: list[RemotePost]) -> None:
        """Fill each post's ``featured_image`` ({"url", "alt"}) from its ``featured_media`` id:
        one ``GET /wp/v2/media?include=...`` for the whole page, not one per post."""
        wanted = sorted(
            {
                post.publishing["featured_media"]["id"]
                for post in posts
                if isinstance(post.publishing.get("featured_media"), dict)
            }
        )
        if not wanted:
            return
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(wanted), MAX_INCLUDE):
            chunk = wanted[start : start + MAX_INCLUDE]
            params = {
                "include": ",".join(str(value) for value in chunk),
                "per_page": MAX_INCLUDE,
                "context": "edit" if self.has_app_password else "view",
                "_fields": "id,source_url,alt_text",
            }
            response = self.call("GET", f"{CORE_NAMESPACE}/media", params=params, auth=self._default_auth())
            try:
                items = self._json(response, "the featured images")
            except PlatformError as exc:
                if exc.ends_job:
                    raise
                logger.info("%s: featured images not resolved (%s)", self.site_url, exc)
                items = []
            for item in items if isinstance(items, list) else []:
                if (
                    isinstance(item, dict)
                    and isinstance(item.get("id"), int)
                    and isinstance(item.get("source_url"), str)
                ):
                    found[item["id"]] = item
        for post in posts:
            media = post.publishing.get("featured_media")
            if not isinstance(media, dict) or (item := found.get(media["id"])) is None:
                continue
            media["url"] = item["source_url"]
            image: dict[str, Any] = {"url": item["source_url"]}
            if isinstance(item.get("alt_text"), str) and item["alt_text"]:
                image["alt"] = item["alt_text"]
            post.publishing["featured_image"] = image


def publishing_values(data: dict[str, Any]) -> dict[str, Any]:
    """The publishing fields of a post's REST JSON, as ``Content`` columns (and
    ``featured_media``: {"id"} until ``resolve_featured_images`` adds its url); empty when the
    answer has none of them (a lean listing)."""
    if not any(name in data for name in READ_FIELDS):
        return {}
    excerpt = data.get("excerpt")
    raw_excerpt = excerpt.get("raw") if isinstance(excerpt, dict) else None
    status = data.get("status")
    media_id = data.get("featured_media")
    values: dict[str, Any] = {
        # Only the raw excerpt: the rendered one is made up from the body when none was written.
        "excerpt": raw_excerpt if isinstance(raw_excerpt, str) and raw_excerpt else None,
        "slug": data["slug"] if isinstance(data.get("slug"), str) and data["slug"] else None,
        # A draft's date moves with each save until it is published: only a fixed date is kept,
        # so publishing a pulled draft later does not back-date it.
        "publish_at": _date(data.get("date_gmt")) if status in ("publish", "future", "private") else None,
        "author": str(data["author"]) if _positive_int(data.get("author")) else None,
        "format": data["format"] if isinstance(data.get("format"), str) and data["format"] else None,
        "sticky": data["sticky"] if isinstance(data.get("sticky"), bool) else None,
        "comment_status": data["comment_status"] if data.get("comment_status") in ("open", "closed") else None,
        "featured_image": None,
        "featured_media": {"id": media_id} if _positive_int(media_id) else None,
        "seo": _seo(data.get(SEO_FIELD)),
    }
    return values


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _date(value: Any) -> datetime | None:
    parsed = parse_iso(value)
    return parsed.replace(microsecond=0) if parsed is not None else None


def _seo(value: Any) -> dict[str, Any] | None:
    """The plugin's ``igny8_seo`` as the content's ``seo``: empty values left out (the plugin
    reports every key), None when nothing is set."""
    if not isinstance(value, dict):
        return None
    seo: dict[str, Any] = {}
    for key in SEO_KEYS:
        item = value.get(key)
        if key == "noindex":
            if item is True:
                seo[key] = True
        elif isinstance(item, str) and item:
            seo[key] = item
    return seo or None
