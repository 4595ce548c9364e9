"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from flask import current_app, jsonify
from marshmallow import Schema, fields
from sqlalchemy import text

from ..extensions import db
from ..sync import queues
from .base import ApiBlueprint

logger = logging.getLogger(__name__)

blp = ApiBlueprint("health", __name__, description="Liveness and readiness probes")


class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadinessSchema(HealthSchema):
    checks = fields.Dict(keys=fields.String(), values=fields.Boolean(), required=True)
    # Informational (readiness is the database and the broker): per service queue, the messages
    # waiting and the workers consuming it (Redis broker only; absent when unknown), and a
    # warning for each queue where jobs wait that no worker reads.
    queues = fields.Dict(keys=fields.String(), values=fields.Dict())
    warnings = fields.List(fields.String())


@blp.route("/healthz", methods=["GET"])
@blp.response(200, HealthSchema)
def healthz():
    return jsonify(status="ok")


def _database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        # One line, not a traceback: probes ask every few seconds for as long as an outage lasts.
        logger.warning("readiness: database unreachable (%s)", type(getattr(exc, "orig", None) or exc).__name__)
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection is gone; the session is reset anyway
            db.session.remove()
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
@blp.response(200, ReadinessSchema)
@blp.alt_response(503, schema=ReadinessSchema, description="The database or the broker is unreachable.")
def readyz():
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    ready = all(checks.values())
    body: dict = {"status": "ready" if ready else "unavailable", "checks": checks}
    queue_report = queues.report(current_app.extensions["celery"]) if checks["broker"] else None
    if queue_report is not None:
        body.update(queue_report)
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    return response
