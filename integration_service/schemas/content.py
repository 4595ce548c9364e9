"""Schemas of the Content API (``/api/v1/writer/content/``)."""

from __future__ import annotations

import json
from typing import Any

from marshmallow import ValidationError, fields, validate, validates

from ..models import CONTENT_SOURCES, CONTENT_STATUSES
from .common import Id, PageQuerySchema, PageSchema, validate_http_url
from .publishing import PublishingFieldsSchema

__all__ = ["ContentCreateSchema", "ContentPageSchema", "ContentQuerySchema", "ContentSchema", "ContentUpdateSchema"]

MAX_OBJECT_BYTES = 64 * 1024


def _bounded_object(value: dict[str, Any], name: str) -> None:
    if len(json.dumps(value, default=str)) > MAX_OBJECT_BYTES:
        raise ValidationError(f"The {name} object is too large ({MAX_OBJECT_BYTES} bytes at most).")


class ContentSchema(PublishingFieldsSchema):
    """The Content resource; the publishing fields come from ``PublishingFieldsSchema``."""

    id = fields.Integer(dump_only=True)
    site_id = Id(strict=True)
    title = fields.String(validate=validate.Length(max=1000))
    content_html = fields.String()
    status = fields.String(validate=validate.OneOf(CONTENT_STATUSES))
    content_type = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$"))
    external_id = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))
    external_url = fields.String(allow_none=True, validate=validate_http_url)
    external_status = fields.String(allow_none=True, validate=validate.Length(max=40))
    taxonomies = fields.Dict(keys=fields.String())
    metadata = fields.Dict(keys=fields.String(), attribute="meta", data_key="metadata")
    source = fields.String(validate=validate.OneOf(CONTENT_SOURCES))
    conflict = fields.Dict(
        allow_none=True,
        metadata={
            "description": "Set when WordPress and the platform both changed the post; PATCH null to keep "
            "the platform version (the next push overwrites WordPress)."
        },
    )
    last_synced_at = fields.DateTime(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    @validates("taxonomies")
    def validate_taxonomies(self, value: dict, **kwargs: Any) -> None:
        _bounded_object(value, "taxonomies")

    @validates("metadata")
    def validate_metadata(self, value: dict, **kwargs: Any) -> None:
        _bounded_object(value, "metadata")

    @validates("conflict")
    def validate_conflict(self, value: Any, **kwargs: Any) -> None:
        if value is not None:
            raise ValidationError("Only null is accepted: it resolves the conflict in favour of the platform copy.")


class ContentCreateSchema(ContentSchema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class ContentUpdateSchema(ContentSchema):
    """PATCH bodies (loaded with partial=True)."""


class ContentQuerySchema(PageQuerySchema):
    site_id = Id()
    content_type = fields.String(validate=validate.Length(max=64))
    external_status = fields.String(validate=validate.Length(max=40))
    source = fields.String(validate=validate.OneOf(CONTENT_SOURCES))


class ContentPageSchema(PageSchema):
    results = fields.List(fields.Nested(ContentSchema), required=True)
