"""Schemas of the sync actions: sync requests, job references, sync_status, debug_status and the
site structure the WordPress plugin pushes."""

from __future__ import annotations

import json
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates, validates_schema

from ..models import JOB_STATUSES, SYNC_DIRECTIONS, SYNC_STATUSES
from ..timeutil import parse_iso
from .common import Id, InputSchema, StrictSchema

MAX_STRUCTURE_BYTES = 256 * 1024
MAX_STRUCTURE_ENTRIES = 200
# The SEO plugin the companion plugin found active (it writes the ``seo`` fields into its keys).
SEO_PLUGINS = ("yoast", "rank_math", "none")
__all__ = [
    "ContentPullRequestSchema",
    "CurrentJobSchema",
    "DebugStatusSchema",
    "JobReferenceSchema",
    "SiteStructureSchema",
    "SyncEventSchema",
    "SyncRequestSchema",
    "SyncStatusSchema",
]

SLUG = validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$", error="Use a slug of 1 to 64 letters, digits, - or _.")


class SyncRequestSchema(StrictSchema):
    direction = fields.String(load_default="both", validate=validate.OneOf(SYNC_DIRECTIONS))
    full = fields.Boolean(load_default=False)


class ContentPullRequestSchema(StrictSchema):
    content_id = Id(required=True, strict=True)


class JobReferenceSchema(Schema):
    job_id = fields.String(required=True)
    sync_event_id = fields.Integer(required=True)
    status = fields.String(validate=validate.OneOf(JOB_STATUSES))
    status_url = fields.String(required=True)


class ProgressSchema(Schema):
    done = fields.Integer()
    total = fields.Integer(allow_none=True)


class CurrentJobSchema(Schema):
    job_id = fields.String(allow_none=True)
    sync_event_id = fields.Integer()
    direction = fields.String(allow_none=True)
    state = fields.String(validate=validate.OneOf(JOB_STATUSES))
    progress = fields.Nested(ProgressSchema)
    started_at = fields.DateTime(allow_none=True)
    heartbeat_at = fields.DateTime(allow_none=True)
    stuck = fields.Boolean()
    attempt = fields.Integer()
    max_attempts = fields.Integer()
    next_retry_at = fields.DateTime(allow_none=True)
    waiting_for = fields.String(allow_none=True, validate=validate.OneOf(["retry", "next_slice", "resume"]))


class SyncEventSchema(Schema):
    id = fields.Integer()
    job_id = fields.String(attribute="task_id", allow_none=True)
    event_type = fields.String()
    action = fields.String(allow_none=True)
    direction = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(JOB_STATUSES))
    details = fields.Method("dump_details")
    error_message = fields.String(allow_none=True)
    content_id = fields.Integer(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)

    def dump_details(self, obj: Any) -> dict[str, Any]:
        return event_details(obj)


def event_details(event: Any) -> dict[str, Any]:
    """The ``details`` a SyncEvent shows (of an ORM object or a plain row)."""
    details = dict(event.details or {})
    if event.event_type == "sync" and event.direction:
        # Stored once, in the column; the details have always shown it too.
        details = {"direction": event.direction, **details}
    # A queued structure update carries the pushed payload; show its size, not the payload.
    if "structure" in details:
        structure = details.pop("structure") or {}
        details["post_types"] = len(structure.get("post_types") or {})
        details["taxonomies"] = len(structure.get("taxonomies") or {})
    return details


class SyncStatusSchema(Schema):
    sync_status = fields.String(validate=validate.OneOf(SYNC_STATUSES))
    last_sync_at = fields.DateTime(allow_none=True)
    sync_error = fields.String(allow_none=True)
    current_job = fields.Nested(CurrentJobSchema, allow_none=True)
    recent_events = fields.List(fields.Nested(SyncEventSchema))


# -- sync_status written out --------------------------------------------------------------------
# A dashboard polls sync_status every few seconds per integration; dumping its eleven events
# through marshmallow was a sixth of a poll's CPU (bench/profile_http.py). These functions give
# exactly ``SyncStatusSchema().dump(...)`` (the schema stays the documented contract, and
# tests/schemas/test_sync_status_dump.py holds the two equal) with the fields' own conversions:
# String -> str, Integer -> int, Boolean -> bool, DateTime -> isoformat(), None kept.


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _dump_current_job(job: dict[str, Any] | None) -> dict[str, Any] | None:
    if job is None:
        return None
    progress = job["progress"]
    return {
        "job_id": _text(job["job_id"]),
        "sync_event_id": _integer(job["sync_event_id"]),
        "direction": _text(job["direction"]),
        "state": _text(job["state"]),
        "progress": {"done": _integer(progress["done"]), "total": _integer(progress["total"])},
        "started_at": _iso(job["started_at"]),
        "heartbeat_at": _iso(job["heartbeat_at"]),
        "stuck": bool(job["stuck"]),
        "attempt": _integer(job["attempt"]),
        "max_attempts": _integer(job["max_attempts"]),
        "next_retry_at": _iso(job["next_retry_at"]),
        "waiting_for": _text(job["waiting_for"]),
    }


def _dump_event(event: Any) -> dict[str, Any]:
    return {
        "id": _integer(event.id),
        "job_id": _text(event.task_id),
        "event_type": _text(event.event_type),
        "action": _text(event.action),
        "direction": _text(event.direction),
        "status": _text(event.status),
        "details": event_details(event),
        "error_message": _text(event.error_message),
        "content_id": _integer(event.content_id),
        "started_at": _iso(event.started_at),
        "finished_at": _iso(event.finished_at),
    }


def dump_sync_status(status: dict[str, Any]) -> dict[str, Any]:
    """``SyncStatusSchema().dump(status)`` for the dict ``SyncService.sync_status`` returns."""
    return {
        "sync_status": _text(status["sync_status"]),
        "last_sync_at": _iso(status["last_sync_at"]),
        "sync_error": _text(status["sync_error"]),
        "current_job": _dump_current_job(status["current_job"]),
        "recent_events": [_dump_event(event) for event in status["recent_events"]],
    }


class ScheduleStatusSchema(Schema):
    """The integration's schedule (integration_service/sync/schedule.py ``schedule_status``)."""

    enabled = fields.Boolean()
    interval_minutes = fields.Integer(allow_none=True)
    next_sync_at = fields.DateTime(allow_none=True)
    overdue_seconds = fields.Float(allow_none=True)
    last_scheduled_sync_at = fields.DateTime(allow_none=True)
    next_reconcile_at = fields.DateTime(allow_none=True)
    consecutive_failures = fields.Integer()
    backoff = fields.Boolean()
    paused_reason = fields.String(allow_none=True)


class ConnectionTestSummarySchema(Schema):
    at = fields.DateTime(allow_none=True)
    success = fields.Boolean(allow_none=True)


class EventSummarySchema(Schema):
    id = fields.Integer()
    job_id = fields.String(allow_none=True)
    event_type = fields.String()
    direction = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(JOB_STATUSES))
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    error_message = fields.String(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class StuckJobSchema(Schema):
    detected = fields.Boolean()
    stuck_after_seconds = fields.Integer()
    heartbeat_age_seconds = fields.Float(allow_none=True)
    sync_event_id = fields.Integer(allow_none=True)


class DebugStatusSchema(Schema):
    """Health of one integration (see SyncHealthService)."""

    class Meta:
        unknown = EXCLUDE

    integration_id = fields.Integer()
    platform = fields.String()
    is_active = fields.Boolean()
    sync_enabled = fields.Boolean()
    sync_status = fields.String()
    sync_error = fields.String(allow_none=True)
    last_sync_at = fields.DateTime(allow_none=True)
    # Nested schemas, not Dicts: their dates are dumped as ISO 8601 like every other field.
    last_connection_test = fields.Nested(ConnectionTestSummarySchema)
    last_sync = fields.Nested(EventSummarySchema, allow_none=True)
    current_job = fields.Nested(CurrentJobSchema, allow_none=True)
    stuck_job = fields.Nested(StuckJobSchema)
    recent_failures = fields.List(fields.Nested(EventSummarySchema))
    schedule = fields.Nested(ScheduleStatusSchema)
    last_webhook_at = fields.DateTime(allow_none=True)
    last_pull_modified_gmt = fields.DateTime(allow_none=True)
    last_structure_fetch = fields.String(allow_none=True)
    content_counts = fields.Dict()


def _bounded_mapping(value: dict[str, Any], what: str) -> None:
    if len(value) > MAX_STRUCTURE_ENTRIES:
        raise ValidationError(f"At most {MAX_STRUCTURE_ENTRIES} {what}.")
    errors: dict[str, list[str]] = {}
    for key in value:
        try:
            SLUG(key)
        except ValidationError as exc:
            errors[key] = exc.messages  # type: ignore[assignment]
    if errors:
        raise ValidationError(errors)


class SiteStructureSchema(InputSchema):
    """What the plugin pushes. Fields it may add later are ignored rather than refused, so an
    updated plugin keeps working against this service."""

    class Meta:
        unknown = EXCLUDE

    post_types = fields.Dict(keys=fields.String(), values=fields.Dict(), required=True)
    taxonomies = fields.Dict(keys=fields.String(), values=fields.Dict(), required=True)
    plugin_connection_enabled = fields.Boolean()
    two_way_sync_enabled = fields.Boolean()
    seo_plugin = fields.String(validate=validate.OneOf(SEO_PLUGINS))
    timestamp = fields.String(validate=validate.Length(max=64))

    @validates("post_types")
    def validate_post_types(self, value: dict, **kwargs: Any) -> None:
        _bounded_mapping(value, "post types")

    @validates("taxonomies")
    def validate_taxonomies(self, value: dict, **kwargs: Any) -> None:
        _bounded_mapping(value, "taxonomies")

    @validates("timestamp")
    def validate_timestamp(self, value: str, **kwargs: Any) -> None:
        if parse_iso(value) is None:
            raise ValidationError("Send an ISO 8601 date and time.")

    @validates_schema
    def validate_size(self, data: dict, **kwargs: Any) -> None:
        size = len(json.dumps(data, default=str))
        if size > MAX_STRUCTURE_BYTES:
            raise ValidationError(f"The structure is too large ({size} bytes; at most {MAX_STRUCTURE_BYTES}).")
