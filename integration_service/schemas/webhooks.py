"""Bodies of the WordPress webhooks (``/api/v1/integration/webhooks/wordpress/``) and their answer.

Unknown top-level fields are ignored rather than refused: a newer plugin that adds a field must
not have its deliveries rejected (the plugin drops a delivery answered 400 for good).
"""

from __future__ import annotations

import json
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates

from ..timeutil import as_utc
from .common import validate_http_url

__all__ = [
    "WORDPRESS_POST_STATUSES",
    "WebhookMetadataSchema",
    "WebhookResultSchema",
    "WebhookStatusSchema",
]

# Core WordPress statuses, plus "deleted" (the plugin reports a permanently deleted post).
WORDPRESS_POST_STATUSES = [
    "publish",
    "future",
    "draft",
    "pending",
    "private",
    "trash",
    "auto-draft",
    "inherit",
    "deleted",
]
WEBHOOK_OUTCOMES = ["applied", "ignored", "duplicate"]

# Size limits of the metadata object (the whole body is also capped, see api/webhooks.py).
METADATA_MAX_BYTES = 32 * 1024
METADATA_MAX_KEYS = 100
METADATA_MAX_DEPTH = 4
TERMS_MAX_ITEMS = 500
TERM_MAX_LENGTH = 200

_POST_ID = validate.Range(min=1, max=2**63 - 1)
_POST_TYPE = validate.Regexp(r"^[a-z0-9_-]{1,64}$", error="Enter a WordPress post type slug.")


def _depth(value: Any, level: int = 0) -> int:
    if isinstance(value, dict):
        return max([_depth(item, level + 1) for item in value.values()], default=level + 1)
    if isinstance(value, list):
        return max([_depth(item, level + 1) for item in value], default=level + 1)
    return level


class _WebhookBodySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    post_id = fields.Integer(required=True, strict=True, validate=_POST_ID)
    content_id = fields.Integer(strict=True, allow_none=True, load_default=None, validate=_POST_ID)
    modified_gmt = fields.DateTime(allow_none=True, load_default=None)

    @post_load
    def normalise_dates(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["modified_gmt"] = as_utc(data.get("modified_gmt"))
        return data


class WebhookStatusSchema(_WebhookBodySchema):
    """``POST status/``: a post's status changed (published, trashed, deleted, ...)."""

    post_status = fields.String(required=True, validate=validate.OneOf(WORDPRESS_POST_STATUSES))
    post_url = fields.String(allow_none=True, validate=validate_http_url)
    post_type = fields.String(allow_none=True, validate=_POST_TYPE)


class WebhookMetadataSchema(_WebhookBodySchema):
    """``POST metadata/``: a post's terms or SEO fields changed.

    ``metadata.categories`` and ``metadata.tags`` (lists of term names) and
    ``metadata.taxonomies`` (``{taxonomy: [terms]}``) are merged into the Content's
    ``metadata.terms``; every other key (such as ``seo``) into its ``metadata``.
    """

    metadata = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=100)), required=True)
    post_type = fields.String(allow_none=True, validate=_POST_TYPE)

    @validates("metadata")
    def validate_metadata(self, value: dict[str, Any], **kwargs: Any) -> None:
        if len(value) > METADATA_MAX_KEYS:
            raise ValidationError(f"At most {METADATA_MAX_KEYS} keys.")
        try:
            size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        except (TypeError, ValueError) as exc:  # pragma: no cover - parsed JSON always dumps
            raise ValidationError("The metadata must be plain JSON.") from exc
        if size > METADATA_MAX_BYTES:
            raise ValidationError(f"The metadata is too large ({METADATA_MAX_BYTES} bytes at most).")
        if _depth(value) > METADATA_MAX_DEPTH:
            raise ValidationError(f"The metadata is nested too deeply ({METADATA_MAX_DEPTH} levels at most).")
        errors: dict[str, Any] = {}
        for key in ("categories", "tags"):
            if key in value and not _is_term_list(value[key]):
                errors[key] = [f"Enter a list of at most {TERMS_MAX_ITEMS} term names or ids."]
        taxonomies = value.get("taxonomies", {})
        if not isinstance(taxonomies, dict) or not all(
            isinstance(name, str) and _is_term_list(terms) for name, terms in taxonomies.items()
        ):
            errors["taxonomies"] = ["Enter an object of taxonomy slug to a list of term names or ids."]
        if errors:
            raise ValidationError(errors)


def _is_term_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) <= TERMS_MAX_ITEMS
        and all(
            (isinstance(item, str) and len(item) <= TERM_MAX_LENGTH)
            or (isinstance(item, int) and not isinstance(item, bool))
            for item in value
        )
    )


class WebhookResultSchema(Schema):
    """The answer to an accepted delivery (also a duplicate or an ignored out-of-order one)."""

    status = fields.String(
        required=True,
        validate=validate.OneOf(WEBHOOK_OUTCOMES),
        metadata={"description": "applied; ignored (older than what is stored); duplicate (webhook-id seen before)"},
    )
    webhook_id = fields.String(required=True)
    content_id = fields.Integer(allow_none=True)
    sync_event_id = fields.Integer(allow_none=True)
    message = fields.String()
