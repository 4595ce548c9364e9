"""Secrets (the app password, its Basic token, the site key, SECRET_KEY, ENCRYPTION_KEYS) are
absent from every table, log line, response and broker message while a sync meets WordPress
faults and a webhook is delivered (issue 12, section 6)."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from celery.app.task import Task
from sqlalchemy import text

from integration_service.extensions import db
from tests.api.test_webhooks import deliver
from tests.workers.fakewp import APP_PASSWORD

INTEGRATIONS = "/api/v1/integration/integrations/"


@pytest.fixture
def broker_messages(monkeypatch):
    sent: list[str] = []
    original = Task.apply_async

    def recording(self, args=None, kwargs=None, **options):
        sent.append(json.dumps({"task": self.name, "args": args, "kwargs": kwargs}, default=str))
        return original(self, args, kwargs, **options)

    monkeypatch.setattr(Task, "apply_async", recording)
    return sent


def _all_rows_as_text() -> str:
    # Raw rows (encrypted columns stay ciphertext): what a database dump would show.
    dump = []
    for table in db.metadata.sorted_tables:
        dump += [str(tuple(row)) for row in db.session.execute(text(f"SELECT * FROM {table.name}"))]
    return "\n".join(dump)


@pytest.mark.parametrize("fault", ["auth", "server_error", None])
def test_no_secret_in_tables_logs_responses_or_broker_messages(
    app, client, editor_client, wp_integration, fake_wp, site, factory, broker_messages, caplog, fault
):
    caplog.set_level(logging.DEBUG)
    if fault == "auth":
        fake_wp.auth_status = 401
    elif fault == "server_error":
        fake_wp.auth_status = 500
    fake_wp.add_posts(2)
    content = factory.content(site, title="t", external_id="1")
    responses_text = []
    for method, path, body in [
        ("POST", f"{INTEGRATIONS}{wp_integration.id}/sync/", {"direction": "both"}),
        ("GET", f"{INTEGRATIONS}{wp_integration.id}/sync_status/", None),
        ("GET", f"{INTEGRATIONS}{wp_integration.id}/debug_status/", None),
        ("GET", f"{INTEGRATIONS}{wp_integration.id}/", None),
        ("POST", f"{INTEGRATIONS}{wp_integration.id}/test_connection/", None),
    ]:
        response = editor_client.open(method, path, json=body)
        assert response.status_code < 500, response.get_data(as_text=True)
        responses_text.append(response.get_data(as_text=True) + str(response.headers))
    webhook = deliver(
        client,
        "/api/v1/integration/webhooks/wordpress/status/",
        site.plain_api_key,
        {"post_id": 1, "post_status": "publish", "content_id": content.id},
    )
    assert webhook.status_code == 200, webhook.get_json()
    responses_text.append(webhook.get_data(as_text=True))

    basic = base64.b64encode(f"admin:{APP_PASSWORD}".encode()).decode()
    secrets = {
        "app password": APP_PASSWORD,
        "app password without spaces": APP_PASSWORD.replace(" ", ""),
        "basic token": basic,
        "site key": site.plain_api_key,
        "SECRET_KEY": app.config["SECRET_KEY"],
        **{f"encryption key {i}": key for i, key in enumerate(str(app.config["ENCRYPTION_KEYS"]).split(","))},
    }
    places = {
        "tables": _all_rows_as_text(),
        "logs": "\n".join(record.getMessage() + str(record.exc_info or "") for record in caplog.records),
        "responses": "\n".join(responses_text),
        "broker messages": "\n".join(broker_messages),
    }
    assert broker_messages, "the sync was never enqueued"
    assert all(places.values()), {place: len(haystack) for place, haystack in places.items()}
    assert "sync" in places["tables"] and "webhook" in places["tables"]  # the rows were written
    for place, haystack in places.items():
        for name, secret in secrets.items():
            assert secret not in haystack, f"the {name} is in the {place}"
