"""Integration Service: connects customers' WordPress sites to the content platform."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from flask import Flask, g, request
from flask.sessions import SessionInterface

from .api.base import rest_api
from .crypto import SecretBox
from .extensions import db, limiter, migrate
from .inputs import IdConverter

logger = logging.getLogger(__name__)

_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class CookielessSessions(SessionInterface):
    """``flask.session`` is a NullSession (reads give nothing, writes raise); no cookie is read
    or set."""

    def open_session(self, app: Flask, request: Any) -> None:
        return None  # Flask then uses make_null_session

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        return None


def create_app(config: type | str | None = None, overrides: dict[str, Any] | None = None) -> Flask:
    from config import CONFIGS, config_from_environment

    if config is None:
        config = config_from_environment()
    elif isinstance(config, str):
        config = CONFIGS[config]
    app = Flask(__name__, instance_relative_config=False)
    from .serialization import ServiceJSONProvider

    # ISO 8601 dates in every response (never RFC 1123); JSON bodies nested too deep are a 400.
    app.json = ServiceJSONProvider(app)
    app.config.from_object(config)
    if overrides:
        app.config.update(overrides)
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate(app.config)  # the effective settings, overrides included
    # No cookie sessions: callers authenticate every request with a token or a site key. The
    # default cookie session built a signing serializer on every request to find no cookie.
    app.session_interface = CookielessSessions()
    app.url_map.strict_slashes = False
    app.url_map.converters["id"] = IdConverter
    hops = int(app.config["PROXY_FIX_HOPS"])
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    _configure_logging(app)
    _ensure_instance_dir(app)
    app.extensions["secret_box"] = SecretBox(app.config["ENCRYPTION_KEYS"])

    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()), render_as_batch=True, compare_type=True)
    _register_request_hooks(app)  # before the limiter: limits are keyed by the caller
    limiter.init_app(app)
    _register_retry_after_guard(app)  # after the limiter, so it runs before its header injection
    rest_api.init_app(app)

    from .errors import register_error_handlers

    register_error_handlers(app)

    from .api import register_blueprints

    register_blueprints(app, rest_api)

    from .cors import init_cors

    init_cors(app)

    from .celery_setup import celery_init_app

    celery_init_app(app)

    from .cli import register_cli

    register_cli(app)
    return app


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


def _ensure_instance_dir(app: Flask) -> None:
    from config import INSTANCE_DIR

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") or not app.config.get("REDIS_URL"):
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.request_id = getattr(g, "request_id", "-")
        except RuntimeError:  # outside a request/app context
            record.request_id = "-"
        return True


def _configure_logging(app: Flask) -> None:
    root = logging.getLogger()
    if not any(isinstance(f, _RequestIdFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
        handler.addFilter(_RequestIdFilter())
        root.addHandler(handler)
    root.setLevel(app.config["LOG_LEVEL"])


def _register_request_hooks(app: Flask) -> None:
    from .auth import load_principal_leniently
    from .errors import error_response

    @app.before_request
    def assign_request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID_PATTERN.match(incoming) else uuid.uuid4().hex

    @app.before_request
    def require_json_body():
        if request.method in ("POST", "PUT", "PATCH") and request.content_length and not request.is_json:
            return error_response(415, "unsupported_media_type", "Send the request body as application/json.")
        return None

    @app.before_request
    def read_only_without_transaction():
        # A view class that only reads (``read_only = True``: the sync_status poll) runs its
        # statements in autocommit: no BEGIN before the first and no ROLLBACK when the session
        # closes, two of a poll's five round trips. Each statement still sees what was committed
        # before it, as under READ COMMITTED in one transaction. Must run before the first
        # statement of the request (authentication, next).
        view = app.view_functions.get(request.endpoint or "")
        if getattr(getattr(view, "view_class", None), "read_only", False):
            db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})

    app.before_request(load_principal_leniently)

    @app.after_request
    def add_request_id(response):
        response.headers["X-Request-ID"] = getattr(g, "request_id", "")
        # Flask-Limiter stamps Retry-After on every limited response; outside a 429 that would
        # tell clients (urllib3 retries 413 and 503 on it) to wait and retry a request that a
        # retry cannot fix.  Keep the Retry-After the response set itself (the 429 handler sets
        # one that matches its body), else drop it.
        own = g.get("own_retry_after")
        if own is not None:
            response.headers["Retry-After"] = own
        elif response.status_code != 429:
            response.headers.pop("Retry-After", None)
        return response


def _register_retry_after_guard(app: Flask) -> None:
    # after_request functions run in reverse order: this one runs before the limiter's.
    @app.after_request
    def remember_own_retry_after(response):
        g.own_retry_after = response.headers.get("Retry-After")
        return response
