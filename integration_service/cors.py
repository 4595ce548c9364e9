"""CORS for browser frontends served from another origin (Flask-Cors).

Only ``/api/v1/*`` takes part, less the webhooks (the WordPress plugin calls those server to
server; a browser never should). Off unless ``CORS_ORIGINS`` names origins.
"""

from __future__ import annotations

from flask import Flask

from .extensions import cors

# Every API path but the webhooks.
API_PATHS = r"^/api/v1/(?!integration/webhooks(/|$)).*"
ALLOWED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"]
# What a browser script may read of a response: the throttling headers to back off by, and the
# request id to quote in a support ticket.
EXPOSED_HEADERS = [
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-Request-ID",
]


def init_cors(app: Flask) -> None:
    origins: list[str] = list(app.config.get("CORS_ORIGINS") or [])
    if not origins:
        return
    cors.init_app(
        app,
        resources={API_PATHS: {"origins": "*" if "*" in origins else origins}},
        send_wildcard="*" in origins,  # "*" itself rather than the caller's origin echoed
        methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        # Never credentials: with "*" that would let any site act as the signed-in user, and no
        # route reads a cookie anyway.
        supports_credentials=False,
        max_age=int(app.config.get("CORS_MAX_AGE_SECONDS", 600)),
        vary_header=True,
    )
