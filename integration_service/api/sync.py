"""Sync actions on an integration (routes added to the integrations blueprint):
``sync``, ``sync_status``, ``update_site_structure``, ``content_types``, ``debug_status``,
``sync_wordpress_content`` and ``publish_content``. Jobs run in Celery workers; these views only
record and enqueue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import jsonify
from flask.views import MethodView

from ..auth import current_principal, login_required
from ..errors import ApiErrorSchema
from ..schemas import (
    ContentPullRequestSchema,
    DebugStatusSchema,
    JobReferenceSchema,
    PublishContentRequestSchema,
    SiteStructureSchema,
    SyncRequestSchema,
    SyncStatusSchema,
)
from ..schemas.sync import dump_sync_status
from ..sync.health import SyncHealthService
from ..sync.requests import SyncService
from .integrations import SECURITY, blp

F = TypeVar("F", bound=Callable[..., Any])


def service() -> SyncService:
    return SyncService(current_principal())


QUEUE_UNAVAILABLE = "The job queue is unavailable (queue_unavailable)."


def job_errors(conflict: str | None = None) -> Callable[[F], F]:
    """The error answers every endpoint that enqueues a job documents (409 only where it can lock)."""

    def decorate(view: F) -> F:
        view = blp.alt_response(503, schema=ApiErrorSchema, description=QUEUE_UNAVAILABLE)(view)
        view = blp.alt_response(501, schema=ApiErrorSchema)(view)
        if conflict:
            view = blp.alt_response(409, schema=ApiErrorSchema, description=conflict)(view)
        view = blp.alt_response(404, schema=ApiErrorSchema)(view)
        return blp.alt_response(400, schema=ApiErrorSchema)(view)

    return decorate


@blp.route("/<id:integration_id>/sync/")
class SyncAction(MethodView):
    decorators = [login_required()]

    @blp.doc(security=SECURITY)
    @blp.arguments(SyncRequestSchema)
    @blp.response(202, JobReferenceSchema)
    @job_errors(conflict="A sync is already queued or running (its job_id in details).")
    def post(self, data: dict[str, Any], integration_id: int):
        """Start a sync (metadata, from_external, to_external or both); poll sync_status for its progress."""
        return service().start_sync(integration_id, data["direction"], data["full"])


@blp.route("/<id:integration_id>/sync_status/")
class SyncStatus(MethodView):
    decorators = [login_required()]
    read_only = True  # its statements run in autocommit (integration_service/__init__.py)

    @blp.doc(security=SECURITY)
    @blp.response(200, SyncStatusSchema)
    @blp.alt_response(404, schema=ApiErrorSchema)
    def get(self, integration_id: int):
        """The integration's sync state, its current job with progress, and its latest events."""
        # Written out, not dumped by the schema (see schemas/sync.py ``dump_sync_status``): the
        # same JSON, a sixth less CPU per poll. A Response passes through @blp.response as it is.
        return jsonify(dump_sync_status(service().sync_status(integration_id)))


@blp.route("/<id:integration_id>/update_site_structure/")
class UpdateSiteStructure(MethodView):
    decorators = [login_required()]

    @blp.doc(security=SECURITY)
    @blp.arguments(SiteStructureSchema)
    @blp.response(202, JobReferenceSchema)
    @job_errors()
    def post(self, data: dict[str, Any], integration_id: int):
        """Store the post types and taxonomies the WordPress plugin reports (in a worker)."""
        return service().start_structure_update(integration_id, data)


@blp.route("/<id:integration_id>/content_types/")
class ContentTypes(MethodView):
    decorators = [login_required()]

    @blp.doc(security=SECURITY)
    @blp.response(200, description="config_json.content_types, or {} when never fetched")
    @blp.alt_response(404, schema=ApiErrorSchema)
    def get(self, integration_id: int):
        """The site structure last fetched or pushed."""
        return service().content_types(integration_id)


@blp.route("/<id:integration_id>/debug_status/")
class DebugStatus(MethodView):
    decorators = [login_required()]

    @blp.doc(security=SECURITY)
    @blp.response(200, DebugStatusSchema)
    @blp.alt_response(404, schema=ApiErrorSchema)
    def get(self, integration_id: int):
        """Health: connection test, last sync and counts, failures, stuck jobs, webhooks, content states."""
        return SyncHealthService(current_principal()).debug_status(integration_id)


@blp.route("/<id:integration_id>/sync_wordpress_content/")
class SyncWordPressContent(MethodView):
    decorators = [login_required()]

    @blp.doc(security=SECURITY)
    @blp.arguments(ContentPullRequestSchema)
    @blp.response(202, JobReferenceSchema)
    @job_errors()
    def post(self, data: dict[str, Any], integration_id: int):
        """Pull one content's WordPress post (title, body, status, taxonomies, modified time)."""
        return service().start_content_pull(integration_id, data["content_id"])


@blp.route("/<id:integration_id>/publish_content/")
class PublishContent(MethodView):
    decorators = [login_required()]

    @blp.doc(security=SECURITY)
    @blp.arguments(PublishContentRequestSchema)
    @blp.response(202, JobReferenceSchema)
    @job_errors(
        conflict="A sync or publish of this integration is queued or running (its job_id in details), "
        "or the content has an unresolved conflict."
    )
    def post(self, data: dict[str, Any], integration_id: int):
        """Publish one content now: its images into the site's media library, then its post."""
        return service().start_publish(integration_id, data["content_id"])
