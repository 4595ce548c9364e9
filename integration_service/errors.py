"""One error envelope for every error: HTTP errors, validation errors, domain exceptions and
uncaught exceptions all answer ``{"error": {"code", "message", "details"}, "request_id"}``."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from flask import Flask, g, jsonify
from marshmallow import Schema, ValidationError, fields
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from .extensions import limiter

logger = logging.getLogger(__name__)

HTTP_CODES = {
    400: "validation_error",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "throttled",
    501: "platform_not_supported",
    503: "service_unavailable",
}


class ApiErrorDetailSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Dict()


class ApiErrorSchema(Schema):
    """The contract's one error envelope (documents every error response)."""

    error = fields.Nested(ApiErrorDetailSchema, required=True)
    request_id = fields.String(allow_none=True)


class ServiceError(Exception):
    """A domain error with its HTTP status and contract code."""

    status_code = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details or {}
        self.headers = headers or {}
        # Top-level fields beside "error" that a contract names (e.g. the running job_id of a 409).
        self.extra = extra or {}


class InvalidInput(ServiceError):
    status_code = 400
    code = "validation_error"
    message = "The request is not valid."


class NotAuthenticated(ServiceError):
    status_code = 401
    code = "not_authenticated"
    message = "Authentication credentials were not provided or are not valid."


class PermissionDenied(ServiceError):
    status_code = 403
    code = "permission_denied"
    message = "You do not have permission to perform this action."


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"
    message = "Not found."


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class PlatformNotSupported(ServiceError):
    status_code = 501
    code = "platform_not_supported"
    message = "This platform does not support that action."


class ConnectionFailed(ServiceError):
    status_code = 400
    code = "connection_failed"
    message = "The connection test failed."


class QueueUnavailable(ServiceError):
    status_code = 503
    code = "queue_unavailable"
    message = "The job queue is unavailable; try again shortly."


class DatabaseUnavailable(ServiceError):
    status_code = 503
    code = "database_unavailable"
    message = "The database is unavailable; try again shortly."


# Seconds a 503 asks the client to wait (Retry-After): a broker or database restart takes a few.
RETRY_AFTER_UNAVAILABLE = 5


def is_database_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached or dropped the connection, as opposed to a statement the
    database refused: a connection refused or reset, a server shutting down or starting up
    (psycopg's OperationalError, SQLite's "database is locked"), a connection found dead (the
    pool invalidated it), no pooled connection free in time. A retry can succeed."""
    if isinstance(exc, (sa_exc.TimeoutError, sa_exc.DisconnectionError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError))
    return False


class _Throttled:
    """At most one WARNING every ``seconds`` for one recurring condition (an outage answers
    every request with it), saying how many were not logged in between."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._next = 0.0
        self._skipped = 0

    def warning(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now < self._next:
            self._skipped += 1
            return
        skipped, self._skipped, self._next = self._skipped, 0, now + self.seconds
        logger.warning(message + " (%d more since the last such warning)", *args, skipped)


_database_unavailable_log = _Throttled(5.0)


def error_body(
    code: str, message: str, details: dict[str, Any] | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        **(extra or {}),
        "error": {"code": code, "message": message, "details": details or {}},
        "request_id": getattr(g, "request_id", None),
    }


def error_response(status: int, code: str, message: str, details: dict | None = None, headers=None, extra=None):
    response = jsonify(error_body(code, message, details, extra))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _validation_details(messages: Any) -> dict[str, Any]:
    if isinstance(messages, dict):
        # webargs nests messages under the location ("json", "query"); clients want fields.
        if set(messages) <= {"json", "query", "form", "headers", "files", "view_args"}:
            merged: dict[str, Any] = {}
            for location_messages in messages.values():
                if isinstance(location_messages, dict):
                    merged.update(location_messages)
                else:
                    merged.setdefault("_schema", location_messages)
            return merged
        return messages
    return {"_schema": messages}


def handle_service_error(exc: ServiceError):
    headers = dict(exc.headers)
    if exc.status_code == 503:
        # Every 503 of ours is temporary (queue, database): say when to come back.
        headers.setdefault("Retry-After", str(RETRY_AFTER_UNAVAILABLE))
    if exc.status_code == 401:
        # RFC 9110: a 401 names the scheme the client should use.
        headers.setdefault("WWW-Authenticate", 'Bearer realm="integration-service"')
    return error_response(exc.status_code, exc.code, exc.message, exc.details, headers, exc.extra)


def handle_validation_error(exc: ValidationError):
    return error_response(400, "validation_error", "The request is not valid.", _validation_details(exc.messages))


def handle_http_exception(exc: HTTPException):
    status = exc.code or 500
    code = HTTP_CODES.get(status, "error")
    details: dict[str, Any] = {}
    headers: dict[str, str] = {}
    message = exc.description or exc.name
    if status in (400, 422):
        # flask-smorest/webargs put marshmallow messages on the exception.
        messages = getattr(exc, "data", {}).get("messages") if getattr(exc, "data", None) else None
        cause = getattr(exc, "exc", None)
        if messages is None and cause is not None:
            messages = getattr(cause, "messages", None)
        if messages:
            details = _validation_details(messages)
            message = "The request is not valid."
        status = 400
    valid_methods = getattr(exc, "valid_methods", None)  # MethodNotAllowed's
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
    if status == 429:
        message = "Too many requests; slow down."
        retry_after = _seconds_until_limit_resets()
        headers["Retry-After"] = str(retry_after)
        details = {"retry_after": retry_after}
    return error_response(status, code, message, details, headers)


def _seconds_until_limit_resets() -> int:
    """Seconds until the breached limit's window resets (at least 1)."""
    try:
        current = limiter.current_limit
    except Exception:  # noqa: BLE001 - no limiter state for this request
        current = None
    if current is None:
        return 60
    return max(1, math.ceil(current.reset_at - time.time()))


def handle_unexpected_error(exc: Exception):
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    if is_database_unavailable(exc):
        # The database is down or restarting, or a connection died (SQLAlchemy has invalidated
        # it, so a retry gets a fresh one): a retryable 503, never a 500.
        _database_unavailable_log.warning(
            "database unavailable (%s, request_id=%s): answered 503 database_unavailable",
            type(getattr(exc, "orig", None) or exc).__name__,
            getattr(g, "request_id", None),
        )
        from .extensions import db

        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection is gone; the session is reset anyway
            db.session.remove()
        # A connection found dead is replaced at once; a database that refuses takes longer.
        invalidated = isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
        return handle_service_error(DatabaseUnavailable(headers={"Retry-After": "1"} if invalidated else None))
    logger.exception("unhandled error (request_id=%s)", getattr(g, "request_id", None))
    return error_response(500, "internal_error", "An internal error occurred.")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ServiceError, handle_service_error)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected_error)
