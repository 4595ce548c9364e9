"""Content API: ``/api/v1/writer/content/`` (the platform-side copy of each post)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from ..auth import current_principal, login_required
from ..errors import ApiErrorSchema
from ..extensions import limiter
from ..schemas import ContentCreateSchema, ContentPageSchema, ContentQuerySchema, ContentSchema, ContentUpdateSchema
from ..services.content import ContentService
from .base import ApiBlueprint

blp = ApiBlueprint("content", __name__, url_prefix="/api/v1/writer/content", description="Platform-side content")
limiter.shared_limit(lambda: current_app.config["RATELIMIT_INTEGRATION"], scope="content")(blp)

SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKey": []}]


def service() -> ContentService:
    return ContentService(current_principal())


@blp.route("/")
class ContentCollection(MethodView):
    decorators = [login_required()]

    @blp.doc(security=SECURITY)
    @blp.arguments(ContentQuerySchema, location="query")
    @blp.response(200, ContentPageSchema)
    def get(self, query: dict[str, Any]):
        """List content, paginated; filters site_id, content_type, external_status, source."""
        page, page_size = query.pop("page"), query.pop("page_size")
        return service().list(page, page_size, **query)

    @blp.doc(security=SECURITY)
    @blp.arguments(ContentCreateSchema)
    @blp.response(201, ContentSchema)
    @blp.alt_response(400, schema=ApiErrorSchema)
    @blp.alt_response(404, schema=ApiErrorSchema)
    @blp.alt_response(409, schema=ApiErrorSchema)
    def post(self, data: dict[str, Any]):
        """Create content on one of the caller's sites."""
        return service().create(data)


@blp.route("/<int:content_id>/")
class ContentItem(MethodView):
    decorators = [login_required()]

    @blp.doc(security=SECURITY)
    @blp.response(200, ContentSchema)
    @blp.alt_response(404, schema=ApiErrorSchema)
    def get(self, content_id: int):
        """Retrieve content."""
        return service().get(content_id)

    @blp.doc(security=SECURITY)
    @blp.arguments(ContentUpdateSchema(partial=True))
    @blp.response(200, ContentSchema)
    @blp.alt_response(400, schema=ApiErrorSchema)
    @blp.alt_response(404, schema=ApiErrorSchema)
    @blp.alt_response(409, schema=ApiErrorSchema)
    def patch(self, data: dict[str, Any], content_id: int):
        """Partially update content."""
        return service().update(content_id, data)
