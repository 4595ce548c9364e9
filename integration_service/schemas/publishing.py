"""Fields of the contract's "Publishing" section, shared by the Content schemas: excerpt, slug,
schedule, author, format, sticky, comment status, featured image, SEO and the read-only media of
the last push; and the body of ``publish_content``."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from ..models import COMMENT_STATUSES, POST_FORMATS
from .common import Id, StrictSchema, validate_http_url

__all__ = [
    "FeaturedImageSchema",
    "MediaItemSchema",
    "PublishContentRequestSchema",
    "PublishingFieldsSchema",
    "SeoSchema",
]

MAX_EXCERPT = 5000
MAX_SLUG = 200
MAX_LOGIN = 60  # WordPress's user_login column
# No "/" (WordPress would take it as a path) and no whitespace; everything else is WordPress's to
# sanitize (it lowercases and may append "-2": the stored slug follows its answer).
_SLUG = re.compile(r"^[^/\s]+$")
MAX_AUTHOR_ID = 2**63 - 1


class AwareDateTime(fields.AwareDateTime):
    """ISO 8601 with an offset, kept to the second (WordPress stores dates to the second, so a
    finer value would look changed after every pull)."""

    default_error_messages = {
        "invalid_awareness": "Give the date-time with an offset (such as 2026-12-05T09:00:00+01:00 or ...Z): "
        "without one it is ambiguous.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        parsed = super()._deserialize(value, attr, data, **kwargs)
        return parsed.replace(microsecond=0)


class Author(fields.Field):
    """A WordPress user id (a positive integer, or its digits as a string) or a login."""

    default_error_messages = {
        "invalid": "Enter a WordPress user id (a positive integer) or a login (1 to 60 characters).",
    }

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        text = str(value)
        return int(text) if text.isdigit() else text

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, int):
            if not 1 <= value <= MAX_AUTHOR_ID:
                raise self.make_error("invalid")
            return str(value)
        if isinstance(value, str):
            text = value.strip()
            if text.isdigit() and not 1 <= int(text) <= MAX_AUTHOR_ID:
                raise self.make_error("invalid")
            if 1 <= len(text) <= MAX_LOGIN:
                return text
        raise self.make_error("invalid")


class FeaturedImageSchema(StrictSchema):
    url = fields.String(required=True, validate=validate_http_url)
    alt = fields.String(allow_none=True, validate=validate.Length(max=1000))
    caption = fields.String(allow_none=True, validate=validate.Length(max=5000))
    title = fields.String(allow_none=True, validate=validate.Length(max=1000))

    @validates_schema
    def require_url(self, data: dict[str, Any], **kwargs: Any) -> None:
        # A PATCH loads with partial=True, which marshmallow hands down to nested schemas: the
        # image is replaced whole, so its url is required there too.
        if "url" not in data:
            raise ValidationError({"url": ["Missing data for required field."]})

    @post_load
    def drop_nulls(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {key: value for key, value in data.items() if value is not None}


class SeoSchema(StrictSchema):
    title = fields.String(allow_none=True, validate=validate.Length(max=300))
    description = fields.String(allow_none=True, validate=validate.Length(max=1000))
    focus_keyword = fields.String(allow_none=True, validate=validate.Length(max=200))
    canonical_url = fields.String(allow_none=True, validate=validate_http_url)
    noindex = fields.Boolean(allow_none=True)

    @post_load
    def drop_nulls(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {key: value for key, value in data.items() if value is not None}


class MediaItemSchema(StrictSchema):
    source_url = fields.String()
    external_id = fields.String(allow_none=True)
    external_url = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(["uploaded", "reused", "failed"]))
    error = fields.String(allow_none=True)


class PublishingFieldsSchema(StrictSchema):
    """The Content resource's publishing fields (ContentSchema extends it)."""

    excerpt = fields.String(allow_none=True, validate=validate.Length(max=MAX_EXCERPT))
    slug = fields.String(
        allow_none=True,
        validate=[
            validate.Length(min=1, max=MAX_SLUG),
            validate.Regexp(_SLUG, error="A slug has no '/' and no whitespace."),
        ],
    )
    publish_at = AwareDateTime(
        allow_none=True,
        format="iso",
        metadata={"description": "ISO 8601 with an offset; a future date schedules the post (WordPress future)."},
    )
    author = Author(
        allow_none=True,
        metadata={
            "description": "WordPress user id or login (a login is resolved to its id).",
            "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1, "maxLength": 60}],
        },
    )
    format = fields.String(allow_none=True, validate=validate.OneOf(POST_FORMATS))
    sticky = fields.Boolean(allow_none=True)
    comment_status = fields.String(allow_none=True, validate=validate.OneOf(COMMENT_STATUSES))
    featured_image = fields.Nested(FeaturedImageSchema, allow_none=True)
    seo = fields.Nested(SeoSchema, allow_none=True)
    media = fields.List(
        fields.Nested(MediaItemSchema),
        dump_only=True,
        allow_none=True,
        metadata={"description": "The images of the last push (read-only)."},
    )


class PublishContentRequestSchema(StrictSchema):
    content_id = Id(required=True, strict=True)
