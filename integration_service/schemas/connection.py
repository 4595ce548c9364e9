"""Schemas of the connection-test endpoints."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from .common import Id, InputSchema, validate_http_url

__all__ = ["ConnectionTestResultSchema", "OnboardingRequestSchema", "OnboardingResultSchema"]


class ConnectionTestResultSchema(Schema):
    success = fields.Boolean(required=True)
    message = fields.String(required=True)
    details = fields.Dict(
        required=True,
        metadata={"description": "Each check's outcome, site name, URL, WordPress version, namespaces, plugin."},
    )


class OnboardingRequestSchema(InputSchema):
    """Sent by the WordPress plugin; extra fields from newer plugins are ignored, not refused."""

    class Meta:
        unknown = EXCLUDE

    site_id = Id(required=True, strict=True)
    api_key = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))
    site_url = fields.String(required=True, validate=[validate.Length(max=2048), validate_http_url])


class OnboardingResultSchema(Schema):
    success = fields.Boolean(required=True)
    integration_id = fields.Integer(required=True)
    message = fields.String(required=True)
