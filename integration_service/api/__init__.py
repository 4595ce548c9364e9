"""HTTP API blueprints."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def register_blueprints(app: Flask, api: Api) -> None:
    from . import auth, health, integrations

    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    api.spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    for module in (health, auth, integrations):
        api.register_blueprint(module.blp)
    for extra in ("content", "webhooks"):
        try:
            module = __import__(f"{__name__}.{extra}", fromlist=["blp"])
        except ModuleNotFoundError:
            continue
        api.register_blueprint(module.blp)
