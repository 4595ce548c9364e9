"""Signature verification of WordPress webhooks, checked against the plugin's own PHP signer."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from integration_service.errors import NotAuthenticated
from integration_service.services.webhooks import sign, verify_signature
from tests.api.test_webhooks import sign_like_the_plugin

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGIN_CLIENT = REPO_ROOT / "wordpress-plugin" / "igny8-bridge" / "includes" / "client.php"
KEY = "k3y-with-ünïcode/+=and symbols"  # not base64: must be used as raw bytes
BODY = '{"post_id":12,"post_status":"publish","title":"Café ☕"}'.encode()


def headers(webhook_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_service_signer_matches_the_plugin_scheme():
    now = int(time.time())
    assert sign(KEY, "msg_1", now, BODY) == sign_like_the_plugin(KEY, "msg_1", now, BODY)


@pytest.mark.skipif(shutil.which("php") is None, reason="php is not installed")
def test_plugin_php_signature_verifies():
    """Run the plugin's igny8_bridge_sign() itself and verify its output here."""
    if not PLUGIN_CLIENT.is_file():
        pytest.skip("the plugin is not in the repository")
    now = int(time.time())
    code = (
        "define('ABSPATH', '/');"
        f"require {json.dumps(str(PLUGIN_CLIENT))};"
        "$in = json_decode(stream_get_contents(STDIN), true);"
        "echo igny8_bridge_sign($in['id'], (int) $in['ts'], $in['body'], $in['key']);"
    )
    stdin = json.dumps({"id": "msg_php", "ts": now, "body": BODY.decode(), "key": KEY})
    result = subprocess.run(["php", "-r", code], input=stdin, capture_output=True, text=True, timeout=30, check=True)
    signature = result.stdout.strip()

    assert signature == sign_like_the_plugin(KEY, "msg_php", now, BODY)
    delivery = verify_signature(KEY, headers("msg_php", now, signature), BODY)
    assert delivery.webhook_id == "msg_php"


def test_valid_signature_returns_the_delivery():
    now = int(time.time())
    delivery = verify_signature(KEY, headers("msg_ok", now, sign_like_the_plugin(KEY, "msg_ok", now, BODY)), BODY)
    assert delivery.webhook_id == "msg_ok"
    assert int(delivery.timestamp.timestamp()) == now


def test_key_that_looks_like_base64_is_still_raw_bytes():
    # A whsec_/base64-looking key must not be decoded: the plugin signs with the text itself.
    key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    now = int(time.time())
    signature = sign_like_the_plugin(key, "msg_b", now, BODY)
    assert verify_signature(key, headers("msg_b", now, signature), BODY).webhook_id == "msg_b"


def test_any_one_of_several_signatures_is_enough():
    now = int(time.time())
    good = sign_like_the_plugin(KEY, "msg_r", now, BODY)
    other = sign_like_the_plugin("previous-key", "msg_r", now, BODY)
    assert verify_signature(KEY, headers("msg_r", now, f"{other} {good}"), BODY)
    with pytest.raises(NotAuthenticated):
        verify_signature(KEY, headers("msg_r", now, other), BODY)


@pytest.mark.parametrize(
    ("webhook_id", "timestamp_offset", "mutate"),
    [
        ("msg_x", 0, lambda s: s[:-4] + "AAA="),  # wrong signature
        ("msg_x", -301 - 5, None),  # too old
        ("msg_x", 301 + 5, None),  # too new
    ],
)
def test_refused(webhook_id, timestamp_offset, mutate):
    ts = int(time.time()) + timestamp_offset
    signature = sign_like_the_plugin(KEY, webhook_id, ts, BODY)
    if mutate:
        signature = mutate(signature)
    with pytest.raises(NotAuthenticated):
        verify_signature(KEY, headers(webhook_id, ts, signature), BODY)


def test_signature_covers_id_and_timestamp():
    now = int(time.time())
    signature = sign_like_the_plugin(KEY, "msg_a", now, BODY)
    with pytest.raises(NotAuthenticated):
        verify_signature(KEY, headers("msg_b", now, signature), BODY)
    with pytest.raises(NotAuthenticated):
        verify_signature(KEY, headers("msg_a", now - 1, signature), BODY)


def test_prune_forgets_only_delivery_ids_past_the_retention(app, factory):
    from datetime import timedelta

    from integration_service.extensions import db
    from integration_service.models import WebhookDelivery, utcnow
    from integration_service.services.webhooks import prune_deliveries

    site = factory.site()
    now = utcnow()
    retention = timedelta(hours=app.config["WEBHOOK_DEDUPE_RETENTION_HOURS"])
    db.session.add_all(
        [
            WebhookDelivery(
                site_id=site.id, webhook_id="msg_old", kind="status", received_at=now - retention - timedelta(minutes=1)
            ),
            WebhookDelivery(
                site_id=site.id,
                webhook_id="msg_recent",
                kind="status",
                received_at=now - retention + timedelta(minutes=1),
            ),
        ]
    )
    db.session.commit()

    assert prune_deliveries(now=now) == 1
    assert db.session.scalars(db.select(WebhookDelivery.webhook_id)).all() == ["msg_recent"]
