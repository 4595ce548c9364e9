"""Integration CRUD and actions: ``/api/v1/integration/integrations/``."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from ..auth import current_principal, login_required
from ..errors import ApiErrorSchema
from ..extensions import limiter
from ..schemas import (
    IntegrationPageSchema,
    IntegrationQuerySchema,
    IntegrationSchema,
    IntegrationUpdateSchema,
)
from ..services.integrations import IntegrationService
from .base import ApiBlueprint

blp = ApiBlueprint(
    "integrations",
    __name__,
    url_prefix="/api/v1/integration/integrations",
    description="Integrations between a site and a platform",
)
limiter.shared_limit(lambda: current_app.config["RATELIMIT_INTEGRATION"], scope="integration")(blp)

SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKey": []}]


def service() -> IntegrationService:
    return IntegrationService(current_principal())


@blp.route("/")
class IntegrationCollection(MethodView):
    decorators = [login_required()]

    @blp.doc(security=SECURITY)
    @blp.arguments(IntegrationQuerySchema, location="query")
    @blp.response(200, IntegrationPageSchema)
    def get(self, query: dict):
        """List the caller's integrations, paginated."""
        page, page_size = query.pop("page"), query.pop("page_size")
        return service().list(page, page_size, **query)

    @blp.doc(security=SECURITY)
    @blp.arguments(IntegrationSchema)
    @blp.response(201, IntegrationSchema)
    @blp.alt_response(400, schema=ApiErrorSchema)
    @blp.alt_response(409, schema=ApiErrorSchema)
    def post(self, data: dict):
        """Create an integration (one per site and platform)."""
        return service().create(data)


@blp.route("/<int:integration_id>/")
class IntegrationItem(MethodView):
    decorators = [login_required()]

    @blp.doc(security=SECURITY)
    @blp.response(200, IntegrationSchema)
    @blp.alt_response(404, schema=ApiErrorSchema)
    def get(self, integration_id: int):
        """Retrieve an integration."""
        return service().get(integration_id)

    @blp.doc(security=SECURITY)
    @blp.arguments(IntegrationSchema)
    @blp.response(200, IntegrationSchema)
    def put(self, data: dict, integration_id: int):
        """Update an integration."""
        return service().update(integration_id, data, partial=False)

    @blp.doc(security=SECURITY)
    @blp.arguments(IntegrationUpdateSchema(partial=True))
    @blp.response(200, IntegrationSchema)
    def patch(self, data: dict, integration_id: int):
        """Partially update an integration."""
        return service().update(integration_id, data, partial=True)

    @blp.doc(security=SECURITY)
    @blp.response(204)
    def delete(self, integration_id: int):
        """Delete an integration."""
        service().delete(integration_id)
