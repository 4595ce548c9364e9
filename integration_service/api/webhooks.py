"""WordPress webhooks: ``/api/v1/integration/webhooks/wordpress/status/`` and ``.../metadata/``.

The body is read raw (capped well below the global MAX_CONTENT_LENGTH), its Standard Webhooks
signature checked, and only then parsed and validated: an unsigned body is never interpreted.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g, jsonify, request
from marshmallow import Schema
from werkzeug.exceptions import RequestEntityTooLarge

from .. import metrics
from ..auth import authenticate
from ..errors import ApiErrorSchema, InvalidInput, NotAuthenticated
from ..extensions import limiter
from ..schemas import WebhookMetadataSchema, WebhookResultSchema, WebhookStatusSchema
from ..serialization import JSONTooDeep
from ..services.webhooks import VerifiedDelivery, WebhookService
from .base import ApiBlueprint

blp = ApiBlueprint(
    "webhooks",
    __name__,
    url_prefix="/api/v1/integration/webhooks/wordpress",
    description="Signed deliveries from the WordPress plugin (Standard Webhooks)",
)
# A generous per-site limit of its own: a bulk edit in WordPress sends one delivery per post,
# and the integration scope's limit must not be spent by them.
limiter.shared_limit(lambda: current_app.config["RATELIMIT_WEBHOOKS"], scope="webhooks")(blp)

# One instance each, reused: a marshmallow schema's construction (it deep-copies its declared
# fields) cost more than the load itself. Loading keeps no state on the instance.
STATUS_BODY = WebhookStatusSchema()
METADATA_BODY = WebhookMetadataSchema()

SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}]
SIGNATURE_HEADERS = [
    {"name": "webhook-id", "in": "header", "required": True, "schema": {"type": "string"}},
    {"name": "webhook-timestamp", "in": "header", "required": True, "schema": {"type": "integer"}},
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": 'Space-separated "v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>", key = the API key',
    },
]
ERRORS = {
    str(status): {"description": description, "content": {"application/json": {"schema": ApiErrorSchema}}}
    for status, description in (
        (400, "Malformed JSON or invalid body"),
        (401, "Bad key, signature or timestamp"),
        (404, "Unknown content (or content of another site)"),
        (409, "The content is linked to another WordPress post"),
        (413, "Body too large"),
    )
}


@blp.after_request
def count_delivery(response: Response) -> Response:
    """Webhook deliveries by outcome for /metrics: the applied/ignored/duplicate result of an
    accepted delivery, else the refusal's error code (bad signature, unknown content, ...)."""
    kind = (request.endpoint or "").rsplit(".", 1)[-1].removesuffix("_webhook")
    outcome = g.pop("webhook_outcome", None)  # popped: tests run requests in one app context
    if outcome is None:
        body = response.get_json(silent=True) if response.is_json else None
        error = (body or {}).get("error") or {}
        outcome = error.get("code") or f"http_{response.status_code}"
    metrics.record_webhook_delivery(kind, outcome)
    return response


def _site_service() -> WebhookService:
    principal = authenticate(allow_site_key=True)
    if not principal.is_site or principal.site_id is None:
        raise NotAuthenticated("Webhooks are authenticated by the site's API key, not a user token.")
    return WebhookService.for_principal(principal)


def _raw_body() -> bytes:
    limit = int(current_app.config["WEBHOOK_MAX_BODY_BYTES"])
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"The webhook body is larger than {limit} bytes.")
    # A chunked body has no Content-Length: read at most one byte past the cap (werkzeug stops
    # at max_content_length without an error) and refuse it if that byte arrived.
    request.max_content_length = limit + 1
    body = request.get_data(cache=True)
    if len(body) > limit:
        raise RequestEntityTooLarge(f"The webhook body is larger than {limit} bytes.")
    return body


def _load(schema: Schema, body: bytes) -> dict[str, Any]:
    try:
        data = current_app.json.loads(body)  # the app's provider bounds the nesting depth
    except JSONTooDeep as exc:
        raise InvalidInput(str(exc)) from exc
    except ValueError as exc:
        raise InvalidInput("The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object.")
    return schema.load(data)  # a ValidationError becomes the contract's 400


def _verified(schema: Schema) -> tuple[WebhookService, VerifiedDelivery, dict[str, Any]]:
    service = _site_service()
    body = _raw_body()
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        # JSON is UTF-8 (RFC 8259); the signature scheme signs text, so check this first.
        raise InvalidInput("The body is not valid JSON (it must be UTF-8).") from exc
    delivery = service.verify(request.headers, body)
    return service, delivery, _load(schema, body)


def _answer(result: dict[str, Any]) -> Response:
    """The WebhookResultSchema answer, written out: its five fields are plain strings and ints
    (or null) that the schema's dump returns unchanged, and a Response passes through
    @blp.response as it is (the schema still documents it)."""
    return jsonify(result)


@blp.route("/status/", methods=["POST"])
@blp.doc(
    security=SECURITY,
    parameters=SIGNATURE_HEADERS,
    requestBody={"required": True, "content": {"application/json": {"schema": WebhookStatusSchema}}},
    responses=ERRORS,
)
@blp.response(200, WebhookResultSchema)
def status_webhook():
    """A post's status changed in WordPress (published, trashed, deleted, ...)."""
    service, delivery, payload = _verified(STATUS_BODY)
    result = service.receive_status(delivery, payload)
    g.webhook_outcome = result["status"]
    return _answer(result)


@blp.route("/metadata/", methods=["POST"])
@blp.doc(
    security=SECURITY,
    parameters=SIGNATURE_HEADERS,
    requestBody={"required": True, "content": {"application/json": {"schema": WebhookMetadataSchema}}},
    responses=ERRORS,
)
@blp.response(200, WebhookResultSchema)
def metadata_webhook():
    """A post's terms or SEO fields changed in WordPress."""
    service, delivery, payload = _verified(METADATA_BODY)
    result = service.receive_metadata(delivery, payload)
    g.webhook_outcome = result["status"]
    return _answer(result)
