"""``GET /metrics``: Prometheus text format (see ``integration_service/metrics.py``).

Access: with METRICS_TOKEN set, scrapers send ``Authorization: Bearer <token>``; without it the
endpoint is open in development and testing and answers 404 in production, so an unconfigured
deployment never publishes its figures.
"""

from __future__ import annotations

import hmac

from flask import Response, current_app, request

from .. import metrics
from ..errors import NotAuthenticated, NotFound
from .base import ApiBlueprint

blp = ApiBlueprint("metrics", __name__, description="Prometheus metrics")


def _authorize() -> None:
    token = current_app.config.get("METRICS_TOKEN") or ""
    if not token:
        if current_app.config.get("ENV_NAME") == "production":
            raise NotFound("Not found.")
        return
    sent = request.headers.get("Authorization", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        raise NotAuthenticated("Send the metrics token as Authorization: Bearer <METRICS_TOKEN>.")


@blp.route("/metrics", methods=["GET"])
@blp.doc(security=[{"bearerAuth": []}], responses={"200": {"description": "Prometheus text format"}})
def prometheus_metrics():
    """Jobs by state, job durations, scheduler lag, per-site 429s, webhook deliveries by outcome."""
    _authorize()
    body, content_type = metrics.render(request.headers.get("Accept"))
    return Response(body, content_type=content_type)
