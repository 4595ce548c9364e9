"""The floor of the HTTP benchmarks: the essential work of a webhook delivery and of a
``sync_status`` poll done directly (plain Flask, psycopg, no ORM, no marshmallow, no limiter).

Mounted under ``/floor`` next to the service in ``bench.wsgi_bench`` (werkzeug's
DispatcherMiddleware), so both run in the same gunicorn workers against the same PostgreSQL and
are measured in one interleaved run. It is a yardstick, not a second implementation: it checks
what a delivery or a poll must check (key digest, decryption of the stored key, the Standard
Webhooks signature, the token, tenancy) and writes what they must write, and nothing else.

* ``POST /floor/webhook``: the site by its key digest (with its account and WordPress
  integration), the signature, then one transaction: the content row ``FOR UPDATE``, the dedupe
  row (``ON CONFLICT DO NOTHING``), the content's status, the SyncEvent; commit.
* ``GET /floor/sync_status/<id>``: the JWT, the user and account, the integration within the
  account, the current job and the 10 latest events, as JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from datetime import UTC, datetime
from typing import Any

import jwt
import psycopg
from cryptography.fernet import Fernet, MultiFernet
from flask import Flask, Response, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from config import Config

RECENT_EVENTS = 10

app = Flask(__name__)
_fernet = MultiFernet([Fernet(k.strip().encode()) for k in Config.ENCRYPTION_KEYS.split(",") if k.strip()])
_state: dict[str, Any] = {}


def _conn() -> psycopg.Connection:
    """One connection per gunicorn worker, opened after the fork, reopened if it broke."""
    conn = _state.get("conn")
    if conn is None or conn.closed or conn.broken:
        conn = psycopg.connect(os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://"))
        _state["conn"] = conn
    return conn


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, default=_iso), status=status, mimetype="application/json")


def _iso(value: Any) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, code: str) -> Response:
    return _json({"error": {"code": code, "message": code}}, status)


@app.post("/webhook")
def webhook() -> Response:
    api_key = request.headers.get("X-API-Key", "")
    body = request.get_data()
    conn = _conn()
    row = conn.execute(
        """
        SELECT s.id, s.wp_api_key, a.status, i.id
        FROM sites s JOIN accounts a ON a.id = s.account_id
        LEFT JOIN site_integrations i ON i.site_id = s.id AND i.platform = 'wordpress'
        WHERE s.wp_api_key_digest = %s
        """,
        (hashlib.sha256(api_key.encode()).hexdigest(),),
    ).fetchone()
    if row is None:
        conn.rollback()
        return _error(401, "not_authenticated")
    site_id, token, account_status, integration_id = row
    key = _fernet.decrypt(token.encode()).decode()
    if not hmac.compare_digest(key.encode(), api_key.encode()) or account_status != "active":
        conn.rollback()
        return _error(401, "not_authenticated")
    webhook_id = request.headers.get("webhook-id", "")
    try:
        Webhook(key.encode()).verify(body, dict(request.headers), json_parse=False)
    except (WebhookVerificationError, ValueError):
        conn.rollback()
        return _error(401, "not_authenticated")
    payload = json.loads(body)
    post_id = str(payload["post_id"])
    content = conn.execute(
        "SELECT id FROM contents WHERE site_id = %s AND external_id = %s ORDER BY id LIMIT 1 FOR UPDATE",
        (site_id, post_id),
    ).fetchone()
    if content is None:
        conn.rollback()
        return _error(404, "not_found")
    now = datetime.now(UTC)
    fresh = conn.execute(
        "INSERT INTO webhook_deliveries (site_id, webhook_id, kind, received_at) VALUES (%s, %s, 'status', %s)"
        " ON CONFLICT DO NOTHING RETURNING id",
        (site_id, webhook_id, now),
    ).fetchone()
    outcome = "applied" if fresh else "duplicate"
    if fresh:
        conn.execute(
            "UPDATE contents SET external_status = %s, last_synced_at = %s, updated_at = %s WHERE id = %s",
            (payload["post_status"], now, now, content[0]),
        )
    event_id = conn.execute(
        """
        INSERT INTO sync_events (integration_id, site_id, event_type, action, direction, status, details,
                                 content_id, webhook_id, progress_done, created_at, started_at, finished_at)
        VALUES (%s, %s, 'webhook_status', 'status', 'from_external', 'success', %s, %s, %s, 0, %s, %s, %s)
        RETURNING id
        """,
        (
            integration_id,
            site_id,
            json.dumps({"outcome": outcome, "post_id": payload["post_id"], "post_status": payload["post_status"]}),
            content[0],
            webhook_id,
            now,
            now,
            now,
        ),
    ).fetchone()[0]
    conn.commit()
    return _json(
        {
            "status": outcome,
            "webhook_id": webhook_id,
            "content_id": content[0],
            "sync_event_id": event_id,
            "message": "",
        }
    )


_EVENT_COLUMNS = (
    "id, task_id, event_type, action, direction, status, details, error_message, content_id, started_at, "
    "finished_at, progress_done, progress_total, heartbeat_at"
)


def _event(row: tuple) -> dict[str, Any]:
    return {
        "id": row[0],
        "job_id": row[1],
        "event_type": row[2],
        "action": row[3],
        "direction": row[4],
        "status": row[5],
        "details": row[6],
        "error_message": row[7],
        "content_id": row[8],
        "started_at": row[9],
        "finished_at": row[10],
    }


@app.get("/sync_status/<int:integration_id>")
def sync_status(integration_id: int) -> Response:
    _scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        claims = jwt.decode(
            token,
            Config.SECRET_KEY,
            algorithms=["HS256"],
            issuer=Config.JWT_ISSUER,
            options={"require": ["exp", "sub"]},
        )
    except jwt.InvalidTokenError:
        return _error(401, "not_authenticated")
    conn = _conn()
    user = conn.execute(
        "SELECT u.account_id, u.is_active, a.status FROM users u JOIN accounts a ON a.id = u.account_id"
        " WHERE u.id = %s",
        (int(claims["sub"]),),
    ).fetchone()
    if user is None or not user[1] or user[2] != "active":
        conn.rollback()
        return _error(401, "not_authenticated")
    integration = conn.execute(
        "SELECT i.sync_status, i.last_sync_at, i.sync_error FROM site_integrations i JOIN sites s ON s.id = i.site_id"
        " WHERE i.id = %s AND s.account_id = %s",
        (integration_id, user[0]),
    ).fetchone()
    if integration is None:
        conn.rollback()
        return _error(404, "not_found")
    current = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM sync_events WHERE sync_lock = %s", (integration_id,)
    ).fetchone()
    recent = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM sync_events WHERE integration_id = %s ORDER BY id DESC LIMIT %s",
        (integration_id, RECENT_EVENTS),
    ).fetchall()
    conn.rollback()  # read only: end the transaction
    job = None
    if current is not None:
        job = {
            "job_id": current[1],
            "sync_event_id": current[0],
            "direction": current[4],
            "state": current[5],
            "progress": {"done": current[11], "total": current[12]},
            "started_at": current[9],
            "heartbeat_at": current[13],
        }
    return _json(
        {
            "sync_status": integration[0],
            "last_sync_at": integration[1],
            "sync_error": integration[2],
            "current_job": job,
            "recent_events": [_event(r) for r in recent],
        }
    )
