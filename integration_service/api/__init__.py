"""HTTP API blueprints."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def register_blueprints(app: Flask, api: Api) -> None:
    from . import auth, health, integrations

    # Action modules add their routes to the integrations blueprint before it is registered.
    for action_module in ("connection", "sync"):
        _import_optional(action_module)

    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    api.spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    for module in (health, auth, integrations):
        api.register_blueprint(module.blp)
    for extra in ("content", "webhooks"):
        module = _import_optional(extra)
        if module is not None:
            api.register_blueprint(module.blp)


def _import_optional(name: str):
    import importlib

    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        return None
