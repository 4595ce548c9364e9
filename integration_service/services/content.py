"""ContentService: the platform-side copy of each post (``/api/v1/writer/content/``)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import IntegrityError

from ..auth import Principal
from ..errors import Conflict, InvalidInput
from ..extensions import db
from ..models import Content
from ..timeutil import parse_iso
from . import access
from .pagination import paginate

logger = logging.getLogger(__name__)

FILTERS = ("site_id", "content_type", "external_status", "source")
UPDATABLE = (
    "title",
    "content_html",
    "status",
    "content_type",
    "external_id",
    "external_url",
    "external_status",
    "taxonomies",
    "meta",
    "source",
    # Publishing (schemas/publishing.py); ``media`` is read-only, written by the push.
    "excerpt",
    "slug",
    "publish_at",
    "author",
    "format",
    "sticky",
    "comment_status",
    "featured_image",
    "seo",
)


class ContentService:
    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    def list(self, page: int, page_size: int, **filters: Any) -> dict[str, Any]:
        query = access.contents_query(self.principal)
        for name in FILTERS:
            if filters.get(name) is not None:
                query = query.where(getattr(Content, name) == filters[name])
        return paginate(query, page, page_size, Content.id)

    def get(self, content_id: int) -> Content:
        return access.get_content(self.principal, content_id)

    def create(self, data: dict[str, Any]) -> Content:
        site_id = data.get("site_id") or self.principal.site_id
        if site_id is None:
            raise InvalidInput(details={"site_id": ["Missing data for required field."]})
        site = access.get_site(self.principal, site_id)
        content = Content(site_id=site.id, **{key: data[key] for key in UPDATABLE if key in data})
        db.session.add(content)
        self._commit(content)
        logger.info("content %s created on site %s", content.id, site.id)
        return content

    def update(self, content_id: int, data: dict[str, Any]) -> Content:
        content = self.get(content_id)
        if "site_id" in data and data["site_id"] != content.site_id:
            raise InvalidInput(details={"site_id": ["This field cannot be changed."]})
        for key in UPDATABLE:
            if key in data:
                setattr(content, key, data[key])
        if "conflict" in data and data["conflict"] is None and content.conflict:
            # Resolving a conflict keeps the platform copy: the WordPress edit is acknowledged,
            # so the next push overwrites it.
            remote_modified = parse_iso(content.conflict.get("remote_modified_gmt"))
            if remote_modified is not None:
                content.external_modified_gmt = remote_modified
            content.conflict = None
        self._commit(content)
        return content

    @staticmethod
    def _commit(content: Content) -> None:
        try:
            db.session.commit()
        except IntegrityError as exc:
            db.session.rollback()
            raise Conflict(
                "The site already has content of this type with this external_id.",
                details={"external_id": [f"{content.content_type} {content.external_id} is already linked."]},
            ) from exc
