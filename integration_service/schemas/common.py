"""Marshmallow schemas: they validate requests, shape responses and generate the OpenAPI document."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates,
    validates_schema,
)

from ..crypto import mask_secret
from ..inputs import DB_ID_MAX, DB_INT_MAX, find_unstorable_text
from ..models import (
    PLATFORM_TYPES,
    ROLE_NAMES,
    SYNC_STATUSES,
)

MAX_PAGE_SIZE = 100
MIN_SYNC_INTERVAL_MINUTES = 1
MAX_SYNC_INTERVAL_MINUTES = 366 * 24 * 60  # a year; keeps the value far from integer overflow
DEFAULT_PAGE_SIZE = 20


def validate_http_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Enter an absolute http(s) URL, such as https://example.com.")
    if parts.username or parts.password:
        raise ValidationError("The URL must not contain credentials.")
    if len(value) > 2048:
        raise ValidationError("The URL is too long (2048 characters at most).")


class BoundedInteger(fields.Integer):
    """An integer within ``[minimum, DB_INT_MAX]`` (the database's INTEGER): a larger one is a
    400 validation error here rather than an out-of-range error from PostgreSQL."""

    def __init__(self, *, minimum: int = 0, maximum: int = DB_INT_MAX, **kwargs: Any) -> None:
        kwargs.setdefault("validate", [])
        if not isinstance(kwargs["validate"], list):
            kwargs["validate"] = [kwargs["validate"]]
        kwargs["validate"].insert(0, validate.Range(min=minimum, max=maximum))
        super().__init__(**kwargs)


class Id(BoundedInteger):
    """A row id in a body or a query: a positive integer that fits the id columns."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(minimum=1, maximum=DB_ID_MAX, **kwargs)


class InputSchema(Schema):
    """Base of every request schema: strings (at any depth, keys included) that PostgreSQL text
    or UTF-8 cannot hold, NUL and lone surrogates, are refused with the field named."""

    @pre_load
    def reject_unstorable_text(self, data: Any, **kwargs: Any) -> Any:
        if not hasattr(data, "keys"):
            return data
        errors: dict[str, list[str]] = {}
        for name, field in self.fields.items():
            key = field.data_key or name
            if key in data and not field.dump_only:
                problem = find_unstorable_text(data[key])
                if problem:
                    errors[key] = [problem]
        if errors:
            raise ValidationError(errors)
        return data


class StrictSchema(InputSchema):
    """Unknown fields are errors; read-only fields sent back by a client are ignored."""

    class Meta:
        unknown = RAISE

    @pre_load
    def drop_read_only_fields(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict):
            read_only = {name for name, field in self.fields.items() if field.dump_only}
            return {key: value for key, value in data.items() if key not in read_only}
        return data


class TokenRequestSchema(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=320))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024))


class TokenResponseSchema(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)


class PageQuerySchema(InputSchema):
    class Meta:
        unknown = EXCLUDE

    page = BoundedInteger(minimum=1, load_default=1)
    page_size = BoundedInteger(minimum=1, maximum=MAX_PAGE_SIZE, load_default=DEFAULT_PAGE_SIZE)


class IntegrationQuerySchema(PageQuerySchema):
    site_id = Id()
    platform = fields.String(validate=validate.OneOf(sorted(PLATFORM_TYPES)))
    is_active = fields.Boolean()


class PageSchema(Schema):
    count = fields.Integer(required=True)
    next = fields.String(allow_none=True)
    previous = fields.String(allow_none=True)


class IntegrationSchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    site_id = Id(required=True, strict=True)
    platform = fields.String(required=True, validate=validate.OneOf(sorted(PLATFORM_TYPES)))
    platform_type = fields.String(validate=validate.OneOf(sorted(set(PLATFORM_TYPES.values()))))
    config_json = fields.Dict(keys=fields.String())
    credentials_json = fields.Dict(keys=fields.String(), load_only=True)
    api_key = fields.Method(
        "dump_api_key",
        deserialize="load_api_key",
        metadata={
            "type": "string",
            "nullable": True,
            "description": "Write: the plugin API key. Read: derived from the credentials, masked.",
        },
    )
    is_active = fields.Boolean()
    sync_enabled = fields.Boolean()
    sync_status = fields.String(dump_only=True, validate=validate.OneOf(SYNC_STATUSES))
    last_sync_at = fields.DateTime(dump_only=True, allow_none=True)
    sync_error = fields.String(dump_only=True, allow_none=True)
    sync_interval_minutes = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=MIN_SYNC_INTERVAL_MINUTES, max=MAX_SYNC_INTERVAL_MINUTES),
        metadata={"description": "Minutes between scheduled syncs (default 15); null = manual syncs only."},
    )
    next_sync_at = fields.DateTime(dump_only=True, allow_none=True)
    paused_reason = fields.String(
        dump_only=True, allow_none=True, metadata={"description": "Why the schedule stopped, e.g. auth_failed."}
    )
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    def dump_api_key(self, obj: Any) -> str | None:
        credentials = obj.credentials_json or {}
        return mask_secret(credentials.get("api_key"))

    def load_api_key(self, value: Any) -> str:
        if not isinstance(value, str) or not 8 <= len(value) <= 256 or "…" in value:
            raise ValidationError("Enter the API key as a string of 8 to 256 characters.")
        return value

    @validates("config_json")
    def validate_config(self, value: dict, **kwargs: Any) -> None:
        if "site_url" in value:
            if not isinstance(value["site_url"], str):
                raise ValidationError({"site_url": ["Enter an absolute http(s) URL."]})
            try:
                validate_http_url(value["site_url"])
            except ValidationError as exc:
                raise ValidationError({"site_url": exc.messages}) from exc
        if len(repr(value)) > 64 * 1024:
            raise ValidationError("The configuration is too large.")

    @validates("sync_interval_minutes")
    def validate_interval(self, value: Any, **kwargs: Any) -> None:
        if isinstance(value, bool):  # strict Integer still takes True as 1
            raise ValidationError("Not a valid integer.")

    @validates("credentials_json")
    def validate_credentials(self, value: dict, **kwargs: Any) -> None:
        for key, item in value.items():
            if not isinstance(item, str) or len(item) > 1024:
                raise ValidationError({key: ["Each credential must be a string of 1024 characters at most."]})

    @validates_schema
    def validate_platform_type(self, data: dict, **kwargs: Any) -> None:
        platform = data.get("platform")
        platform_type = data.get("platform_type")
        if platform and platform_type and PLATFORM_TYPES[platform] != platform_type:
            raise ValidationError(
                {"platform_type": [f"The platform {platform} has the type {PLATFORM_TYPES[platform]}."]}
            )


class IntegrationUpdateSchema(IntegrationSchema):
    """PUT and PATCH bodies (PATCH loads it with partial=True)."""


class IntegrationPageSchema(PageSchema):
    results = fields.List(fields.Nested(IntegrationSchema), required=True)


class AccountCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))


class UserCreateSchema(StrictSchema):
    email = fields.Email(required=True)
    password = fields.String(required=True, validate=validate.Length(min=8, max=1024))
    role = fields.String(load_default="viewer", validate=validate.OneOf(ROLE_NAMES))


class SiteCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    url = fields.String(required=True, validate=validate_http_url)
