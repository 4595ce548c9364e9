"""HTTP API blueprints."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def register_blueprints(app: Flask, api: Api) -> None:
    # connection and sync add their routes to the integrations blueprint, so they are imported
    # before it is registered.
    from . import auth, connection, content, docs, health, integrations, metrics, sync, webhooks  # noqa: F401

    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    api.spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    for module in (health, metrics, auth, integrations, content, webhooks):
        api.register_blueprint(module.blp)
    app.register_blueprint(docs.blp, url_prefix=docs.URL_PREFIX)
