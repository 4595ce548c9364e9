"""Connection tests (routes added to the integrations blueprint):

* ``POST /integrations/{id}/test_connection/`` tests a stored connection (editor or above);
* ``POST /integrations/test-connection/`` is the plugin's onboarding call, with no user auth,
  throttled per client IP and per site so that API keys cannot be brute-forced quickly.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from flask.views import MethodView

from ..auth import current_principal, login_required
from ..errors import ApiErrorSchema
from ..extensions import limiter
from ..schemas import ConnectionTestResultSchema, OnboardingRequestSchema, OnboardingResultSchema
from ..services.connection import check_stored_connection, onboard_site
from .integrations import SECURITY, blp


def onboarding_ip_key() -> str:
    return f"onboarding-ip:{request.remote_addr or 'unknown'}"


def onboarding_site_key() -> str:
    body = request.get_json(silent=True)
    site_id = body.get("site_id") if isinstance(body, dict) else None
    if isinstance(site_id, int) and not isinstance(site_id, bool) and site_id > 0:
        return f"onboarding-site:{site_id}"
    # No usable site id: count it per IP, so malformed calls cannot fill a shared bucket.
    return f"onboarding-site-unknown:{request.remote_addr or 'unknown'}"


@blp.route("/<int:integration_id>/test_connection/")
class ConnectionTestAction(MethodView):
    decorators = [login_required()]

    @blp.doc(security=SECURITY)
    @blp.response(200, ConnectionTestResultSchema)
    @blp.alt_response(400, schema=ApiErrorSchema, description="connection_failed, with details.stage.")
    @blp.alt_response(404, schema=ApiErrorSchema)
    @blp.alt_response(501, schema=ApiErrorSchema)
    def post(self, integration_id: int):
        """Test the stored connection now (diagnostic details for every check)."""
        return check_stored_connection(current_principal(), integration_id)


@blp.route("/test-connection/")
class OnboardingTestConnection(MethodView):
    decorators = [
        limiter.limit(lambda: current_app.config["RATELIMIT_ONBOARDING_IP"], key_func=onboarding_ip_key),
        limiter.limit(lambda: current_app.config["RATELIMIT_ONBOARDING_SITE"], key_func=onboarding_site_key),
    ]

    @blp.doc(security=[{}, {"bearerAuth": []}])
    @blp.arguments(OnboardingRequestSchema)
    @blp.response(200, OnboardingResultSchema)
    @blp.alt_response(400, schema=ApiErrorSchema, description="Missing fields, or connection_failed.")
    @blp.alt_response(403, schema=ApiErrorSchema)
    @blp.alt_response(404, schema=ApiErrorSchema)
    @blp.alt_response(429, schema=ApiErrorSchema)
    def post(self, data: dict[str, Any]):
        """Onboarding from the WordPress plugin: no user auth; the site's API key (or an editor's token).

        Creates the WordPress integration when missing, tests it, and deletes it again when it
        was created by this call and the test failed.
        """
        return onboard_site(getattr(g, "principal", None), data["site_id"], data["api_key"], data["site_url"])
