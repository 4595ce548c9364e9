"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from flask import current_app, jsonify
from sqlalchemy import text

from ..extensions import db
from .base import ApiBlueprint

logger = logging.getLogger(__name__)

blp = ApiBlueprint("health", __name__, description="Liveness and readiness probes")


@blp.route("/healthz", methods=["GET"])
def healthz():
    return jsonify(status="ok")


def _database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception:
        logger.warning("readiness: database unreachable", exc_info=True)
        db.session.rollback()
        return False


def _broker_ok() -> bool:
    celery_app = current_app.extensions["celery"]
    if celery_app.conf.task_always_eager:
        return True
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:  # noqa: BLE001 - any failure means not ready
        logger.warning("readiness: broker unreachable")
        return False


@blp.route("/readyz", methods=["GET"])
def readyz():
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    ready = all(checks.values())
    response = jsonify(status="ready" if ready else "unavailable", checks=checks)
    response.status_code = 200 if ready else 503
    return response
