"""Swagger UI's assets, served by the service itself (from the pinned ``swagger-ui-bundle``
package) so ``/api/v1/docs`` works on a closed network; no CDN is involved."""

from __future__ import annotations

from flask import Blueprint
from swagger_ui_bundle import swagger_ui_path

# A plain Flask blueprint, not an API one: static files are not operations of the API spec.
# config.OPENAPI_SWAGGER_UI_URL points at this route.
blp = Blueprint("swagger_ui_assets", __name__, static_folder=swagger_ui_path, static_url_path="/assets")
URL_PREFIX = "/api/v1/docs"
