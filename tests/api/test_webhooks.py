"""The WordPress webhook endpoints: authentication, signatures, idempotency, ordering, matching,
bad input and the SyncEvent each delivery leaves."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integration_service.extensions import db
from integration_service.models import Content, SyncEvent, WebhookDelivery

BASE = "/api/v1/integration/webhooks/wordpress"
STATUS = f"{BASE}/status/"
METADATA = f"{BASE}/metadata/"


def sign_like_the_plugin(api_key: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The plugin's igny8_bridge_sign(): "v1," . base64(hash_hmac('sha256', "{id}.{ts}.{body}",
    $api_key, true)) -- the key's raw UTF-8 bytes are the HMAC key (no whsec_, no base64 decode)."""
    mac = hmac.new(api_key.encode(), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(
    api_key: str,
    body: bytes,
    *,
    webhook_id: str | None = None,
    timestamp: int | None = None,
    sign_key: str | None = None,
) -> dict[str, str]:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "X-API-Key": api_key,
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_like_the_plugin(sign_key or api_key, webhook_id, timestamp, body),
    }


def deliver(
    client,
    path: str,
    api_key: str,
    payload: Any = None,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    **sign_options: Any,
):
    """POST a delivery signed the way the plugin signs it; ``headers`` override or (None values) remove."""
    if body is None:
        body = json.dumps(payload, separators=(",", ":")).encode()
    all_headers = signed_headers(api_key, body, **sign_options)
    for name, value in (headers or {}).items():
        if value is None:
            all_headers.pop(name, None)
        else:
            all_headers[name] = value
    return client.post(path, data=body, headers=all_headers)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


T1 = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)
T2 = T1 + timedelta(minutes=5)


@pytest.fixture
def integration(factory, site):
    return factory.integration(site)


@pytest.fixture
def content(factory, site, integration):
    return factory.content(site, external_id="42", content_type="post", external_status="draft")


def status_payload(content: Content, post_status: str = "publish", modified: datetime = T1, **extra: Any) -> dict:
    return {
        "post_id": int(content.external_id),
        "content_id": content.id,
        "post_status": post_status,
        "post_url": f"https://blog.example.com/?p={content.external_id}",
        "post_type": "post",
        "modified_gmt": iso(modified),
        **extra,
    }


def events(event_type: str | None = None) -> list[SyncEvent]:
    query = db.select(SyncEvent).order_by(SyncEvent.id)
    if event_type:
        query = query.where(SyncEvent.event_type == event_type)
    return list(db.session.scalars(query))


def reload(content: Content) -> Content:
    db.session.expire_all()
    return db.session.get(Content, content.id)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["code"] == code
    assert body["request_id"]
    return body


# -- accepted deliveries ------------------------------------------------------------------------


def test_valid_status_delivery_updates_the_content_and_records_a_sync_event(client, site, integration, content):
    response = deliver(client, STATUS, site.plain_api_key, status_payload(content), webhook_id="msg_first")

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "applied"
    assert body["webhook_id"] == "msg_first"
    assert body["content_id"] == content.id
    stored = reload(content)
    assert stored.external_status == "publish"
    assert stored.external_url == "https://blog.example.com/?p=42"
    assert stored.webhook_modified_gmt == T1
    # The pull's mark is not moved: the next pull must still fetch the edit this reported.
    assert stored.external_modified_gmt is None
    assert stored.last_synced_at is not None
    [event] = events()
    assert body["sync_event_id"] == event.id
    assert (event.event_type, event.status, event.direction) == ("webhook_status", "success", "from_external")
    assert (event.webhook_id, event.content_id, event.integration_id) == ("msg_first", content.id, integration.id)
    assert event.details["outcome"] == "applied"
    assert event.details["post_status"] == "publish"
    assert event.details["previous_status"] == "draft"
    # No secret and no raw body in the event.
    recorded = json.dumps(event.details) + (event.error_message or "")
    assert site.plain_api_key not in recorded and "post_url" not in recorded
    db.session.refresh(integration)
    assert integration.last_webhook_at is not None


def test_last_webhook_at_is_written_at_most_once_a_minute(client, site, integration, content):
    from datetime import timedelta

    from integration_service.services.webhooks import LAST_WEBHOOK_RESOLUTION

    deliver(client, STATUS, site.plain_api_key, status_payload(content), webhook_id="msg_a")
    db.session.refresh(integration)
    first = integration.last_webhook_at
    deliver(client, STATUS, site.plain_api_key, status_payload(content), webhook_id="msg_b")
    db.session.refresh(integration)
    assert integration.last_webhook_at == first  # within the resolution: the row is not locked again

    integration.last_webhook_at = first - LAST_WEBHOOK_RESOLUTION - timedelta(seconds=1)
    db.session.commit()
    deliver(client, STATUS, site.plain_api_key, status_payload(content), webhook_id="msg_c")
    db.session.refresh(integration)
    assert integration.last_webhook_at >= first


def test_bearer_key_and_missing_trailing_slash_are_accepted(client, site, integration, content):
    body = json.dumps(status_payload(content, "private")).encode()
    headers = signed_headers(site.plain_api_key, body)
    headers["Authorization"] = "Bearer " + headers.pop("X-API-Key")
    response = client.post(STATUS.rstrip("/"), data=body, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert reload(content).external_status == "private"


def test_match_by_post_id_when_no_content_id(client, site, integration, content):
    payload = status_payload(content, "trash")
    del payload["content_id"]
    response = deliver(client, STATUS, site.plain_api_key, payload)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["content_id"] == content.id
    assert reload(content).external_status == "trash"


def test_deleted_status_with_null_url_and_no_modified_time(client, site, integration, content):
    payload = status_payload(content, "deleted", post_url=None)
    payload["modified_gmt"] = None
    response = deliver(client, STATUS, site.plain_api_key, payload)
    assert response.status_code == 200, response.get_json()
    stored = reload(content)
    assert stored.external_status == "deleted" and stored.external_url is None


def test_unknown_fields_are_ignored(client, site, integration, content):
    response = deliver(client, STATUS, site.plain_api_key, status_payload(content, future_field={"x": 1}))
    assert response.status_code == 200, response.get_json()


def test_site_without_an_integration_still_applies_without_a_sync_event(client, factory, site):
    content = factory.content(site, external_id="7")
    response = deliver(client, STATUS, site.plain_api_key, status_payload(content))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["sync_event_id"] is None
    assert reload(content).external_status == "publish"
    assert events() == []


# -- signatures and keys ------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_signature_header_is_401(client, site, integration, content, missing):
    response = deliver(client, STATUS, site.plain_api_key, status_payload(content), headers={missing: None})
    assert_error(response, 401, "not_authenticated")
    assert reload(content).external_status == "draft"


@pytest.mark.parametrize(
    "signature",
    [
        "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # well-formed, wrong
        "v1,not-base64!!",
        "v1",
        "v1,a,b",
        "v2," + base64.b64encode(b"x" * 32).decode(),
        ",",
        "x" * 5000,
    ],
)
def test_bad_signature_is_401(client, site, integration, content, signature):
    response = deliver(
        client, STATUS, site.plain_api_key, status_payload(content), headers={"webhook-signature": signature}
    )
    assert_error(response, 401, "not_authenticated")
    assert reload(content).external_status == "draft"


def test_signature_by_another_key_is_401(client, factory, site, integration, content):
    response = deliver(client, STATUS, site.plain_api_key, status_payload(content), sign_key="some-other-secret-key")
    assert_error(response, 401, "not_authenticated")


def test_body_changed_after_signing_is_401(client, site, integration, content):
    body = json.dumps(status_payload(content)).encode()
    headers = signed_headers(site.plain_api_key, body)
    tampered = body.replace(b'"publish"', b'"trash"')
    response = client.post(STATUS, data=tampered, headers=headers)
    assert_error(response, 401, "not_authenticated")
    assert reload(content).external_status == "draft"


@pytest.mark.parametrize("offset", [-400, 400])
def test_timestamp_outside_five_minutes_is_401(client, site, integration, content, offset):
    response = deliver(client, STATUS, site.plain_api_key, status_payload(content), timestamp=int(time.time()) + offset)
    body = assert_error(response, 401, "not_authenticated")
    assert "tolerance" in body["error"]["message"]


@pytest.mark.parametrize("timestamp", ["soon", "1.5e9", "-1", "9" * 30])
def test_malformed_timestamp_is_401(client, site, integration, content, timestamp):
    response = deliver(
        client, STATUS, site.plain_api_key, status_payload(content), headers={"webhook-timestamp": timestamp}
    )
    assert_error(response, 401, "not_authenticated")


def test_timestamp_within_tolerance_is_accepted(client, site, integration, content):
    response = deliver(client, STATUS, site.plain_api_key, status_payload(content), timestamp=int(time.time()) - 240)
    assert response.status_code == 200, response.get_json()


def test_several_signatures_accepted_when_one_matches(client, site, integration, content):
    body = json.dumps(status_payload(content)).encode()
    headers = signed_headers(site.plain_api_key, body)
    old = sign_like_the_plugin("the-previous-key", headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    headers["webhook-signature"] = f"{old} v1a,ignored {headers['webhook-signature']}"
    response = client.post(STATUS, data=body, headers=headers)
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("webhook_id", ["has space", "x" * 256, "é"])
def test_malformed_webhook_id_is_401(client, site, integration, content, webhook_id):
    body = json.dumps(status_payload(content)).encode()
    headers = signed_headers(site.plain_api_key, body)
    headers["webhook-id"] = webhook_id
    response = client.post(STATUS, data=body, headers=headers)
    assert_error(response, 401, "not_authenticated")


def test_wrong_or_missing_api_key_is_401(client, site, integration, content):
    payload = status_payload(content)
    assert_error(
        deliver(client, STATUS, "not-the-key-0123456789", payload, sign_key=site.plain_api_key),
        401,
        "not_authenticated",
    )
    assert_error(
        deliver(client, STATUS, site.plain_api_key, payload, headers={"X-API-Key": None}), 401, "not_authenticated"
    )
    assert reload(content).external_status == "draft"


def test_user_token_is_not_accepted(client, factory, site, integration, content, editor):
    body = json.dumps(status_payload(content)).encode()
    headers = signed_headers(site.plain_api_key, body)
    del headers["X-API-Key"]
    headers["Authorization"] = f"Bearer {factory.token(editor)}"
    assert_error(client.post(STATUS, data=body, headers=headers), 401, "not_authenticated")


def test_suspended_account_key_is_401(client, site, integration, content, account):
    account.status = "suspended"
    db.session.commit()
    assert_error(deliver(client, STATUS, site.plain_api_key, status_payload(content)), 401, "not_authenticated")


# -- idempotency and ordering -------------------------------------------------------------------


def test_replayed_webhook_id_is_applied_once(client, site, integration, content):
    first = deliver(client, STATUS, site.plain_api_key, status_payload(content, "publish"), webhook_id="msg_same")
    assert first.get_json()["status"] == "applied"
    # Same id, different body (a replay must not apply anything, whatever it carries).
    replay = deliver(client, STATUS, site.plain_api_key, status_payload(content, "draft", T2), webhook_id="msg_same")

    assert replay.status_code == 200, replay.get_json()
    assert replay.get_json()["status"] == "duplicate"
    assert reload(content).external_status == "publish"
    assert db.session.scalar(db.select(db.func.count()).select_from(WebhookDelivery)) == 1
    assert [e.details["outcome"] for e in events()] == ["applied", "duplicate"]


def test_every_outcome_answers_exactly_what_the_result_schema_dumps(client, factory, site, integration, content):
    """The views write the answer out (``_answer``); it must stay the schema's JSON."""
    from integration_service.schemas import WebhookResultSchema

    schema = WebhookResultSchema()
    answers = [
        deliver(client, STATUS, site.plain_api_key, status_payload(content, "trash", T2), webhook_id="msg_a"),
        deliver(client, STATUS, site.plain_api_key, status_payload(content, "draft", T2), webhook_id="msg_a"),
        deliver(client, STATUS, site.plain_api_key, status_payload(content, "publish", T1), webhook_id="msg_b"),
        deliver(client, METADATA, site.plain_api_key, {"post_id": 42, "metadata": {"tags": ["x"]}}),
    ]
    bare = factory.site(factory.account())
    factory.content(bare, external_id="7")
    answers.append(deliver(client, STATUS, bare.plain_api_key, {"post_id": 7, "post_status": "publish"}))
    bodies = [answer.get_json() for answer in answers]
    assert [b["status"] for b in bodies] == ["applied", "duplicate", "ignored", "applied", "applied"]
    assert bodies[-1]["sync_event_id"] is None  # no integration, no event: null, not missing
    for answer, body in zip(answers, bodies, strict=True):
        assert answer.status_code == 200 and answer.mimetype == "application/json"
        assert body == schema.dump(body) and set(body) == set(schema.fields), body
        assert schema.validate(body) == {}, body


def test_applied_deliveries_log_at_debug_and_the_unusual_outcomes_at_info(client, site, integration, content, caplog):
    caplog.set_level("DEBUG", logger="integration_service.services.webhooks")

    def lines(level: str) -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "integration_service.services.webhooks" and r.levelname == level
        ]

    deliver(client, STATUS, site.plain_api_key, status_payload(content, "trash", T2), webhook_id="msg_new")
    assert lines("INFO") == [] and any("msg_new" in line and "applied" in line for line in lines("DEBUG"))
    deliver(client, STATUS, site.plain_api_key, status_payload(content, "publish", T1), webhook_id="msg_old")
    deliver(client, STATUS, site.plain_api_key, status_payload(content, "draft", T2), webhook_id="msg_new")
    info = lines("INFO")
    assert any("msg_old" in line and "ignored" in line for line in info), info
    assert any("msg_new" in line and "duplicate" in line for line in info), info


def test_same_webhook_id_on_another_site_is_not_a_duplicate(client, factory, account, site, integration, content):
    other_site = factory.site(account)
    other_content = factory.content(other_site, external_id="42")
    deliver(client, STATUS, site.plain_api_key, status_payload(content), webhook_id="msg_shared")
    response = deliver(client, STATUS, other_site.plain_api_key, status_payload(other_content), webhook_id="msg_shared")
    assert response.get_json()["status"] == "applied"


def test_older_event_is_acknowledged_and_ignored(client, site, integration, content):
    newer = deliver(client, STATUS, site.plain_api_key, status_payload(content, "trash", T2))
    assert newer.get_json()["status"] == "applied"
    older = deliver(client, STATUS, site.plain_api_key, status_payload(content, "publish", T1))

    assert older.status_code == 200
    assert older.get_json()["status"] == "ignored"
    stored = reload(content)
    assert stored.external_status == "trash" and stored.webhook_modified_gmt == T2
    assert events()[-1].details["outcome"] == "ignored"


def test_event_older_than_the_pulled_version_is_ignored(client, factory, site, integration):
    pulled = factory.content(site, external_id="42", external_status="trash", external_modified_gmt=T2)
    response = deliver(client, STATUS, site.plain_api_key, status_payload(pulled, "publish", T1))
    assert response.get_json()["status"] == "ignored"
    assert reload(pulled).external_status == "trash"


def test_newer_event_does_not_move_the_pull_mark(client, factory, site, integration):
    pulled = factory.content(site, external_id="42", external_status="draft", external_modified_gmt=T1)
    response = deliver(client, STATUS, site.plain_api_key, status_payload(pulled, "publish", T2))
    assert response.get_json()["status"] == "applied"
    stored = reload(pulled)
    assert (stored.external_status, stored.external_modified_gmt, stored.webhook_modified_gmt) == ("publish", T1, T2)


def test_event_with_the_same_modified_time_is_applied(client, site, integration, content):
    # modified_gmt has one-second resolution: publish then trash within a second ends as trash.
    deliver(client, STATUS, site.plain_api_key, status_payload(content, "publish", T1))
    response = deliver(client, STATUS, site.plain_api_key, status_payload(content, "trash", T1))
    assert response.get_json()["status"] == "applied"
    assert reload(content).external_status == "trash"


def test_wordpress_gmt_without_offset_is_utc(client, site, integration, content):
    deliver(client, STATUS, site.plain_api_key, status_payload(content, "trash", T2))
    payload = status_payload(content, "publish")
    payload["modified_gmt"] = T1.strftime("%Y-%m-%dT%H:%M:%S")  # WordPress REST style, no Z
    assert deliver(client, STATUS, site.plain_api_key, payload).get_json()["status"] == "ignored"


def test_concurrent_deliveries_of_the_same_id_apply_once(app, site, integration, content, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("concurrent transactions need PostgreSQL (set TEST_DATABASE_URL)")
    body = json.dumps(status_payload(content, "publish")).encode()
    headers = signed_headers(site.plain_api_key, body, webhook_id="msg_concurrent")
    rounds, barrier = 8, threading.Barrier(8)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def send() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(STATUS, data=body, headers=headers)
        with lock:
            results.append((response.status_code, (response.get_json() or {}).get("status")))

    threads = [threading.Thread(target=send) for _ in range(rounds)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == [(200, "applied")] + [(200, "duplicate")] * (rounds - 1)
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count()).select_from(WebhookDelivery)) == 1
    assert [e.details["outcome"] for e in events()].count("applied") == 1


def test_concurrent_newer_and_older_events_end_on_the_newer(app, site, integration, content, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("concurrent transactions need PostgreSQL (set TEST_DATABASE_URL)")
    # Several rounds: whichever of the two commits first, the stored status ends as the newer one.
    for round_number in range(5):
        content.external_modified_gmt = None
        content.external_status = "draft"
        db.session.commit()
        newer = json.dumps(status_payload(content, "trash", T2 + timedelta(seconds=round_number))).encode()
        older = json.dumps(status_payload(content, "publish", T1)).encode()
        barrier = threading.Barrier(2)

        def send(body: bytes, barrier: threading.Barrier = barrier) -> None:
            client = app.test_client()
            barrier.wait()
            client.post(STATUS, data=body, headers=signed_headers(site.plain_api_key, body))

        threads = [threading.Thread(target=send, args=(b,)) for b in (newer, older)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert reload(content).external_status == "trash"


# -- matching and tenancy -----------------------------------------------------------------------


def test_unknown_content_is_404_and_recorded_as_failed(client, site, integration, content):
    response = deliver(
        client,
        STATUS,
        site.plain_api_key,
        status_payload(content, content_id=content.id + 999),
        webhook_id="msg_unknown",
    )
    assert_error(response, 404, "not_found")
    [event] = events()
    assert (event.status, event.details["outcome"], event.webhook_id) == ("failed", "not_found", "msg_unknown")
    # The id was not consumed: nothing was applied under it.
    assert db.session.scalar(db.select(db.func.count()).select_from(WebhookDelivery)) == 0


def test_unknown_post_id_without_content_id_is_404(client, site, integration, content):
    payload = {"post_id": 999, "post_status": "publish"}
    assert_error(deliver(client, STATUS, site.plain_api_key, payload), 404, "not_found")


def test_content_of_another_tenant_is_404(client, factory, site, integration):
    other_site = factory.site(factory.account())
    foreign = factory.content(other_site, external_id="42", external_status="draft")
    response = deliver(client, STATUS, site.plain_api_key, status_payload(foreign, "trash"))
    assert_error(response, 404, "not_found")
    # By post id too: another site's post 42 is not this site's post 42.
    payload = status_payload(foreign, "trash")
    del payload["content_id"]
    assert_error(deliver(client, STATUS, site.plain_api_key, payload), 404, "not_found")
    assert reload(foreign).external_status == "draft"


def test_content_of_another_site_of_the_same_account_is_404(client, factory, account, site, integration):
    sibling = factory.content(factory.site(account), external_id="42")
    assert_error(deliver(client, STATUS, site.plain_api_key, status_payload(sibling)), 404, "not_found")


def test_content_linked_to_another_post_is_409(client, site, integration, content):
    # A post duplicated with its meta carries the original's content id.
    payload = status_payload(content, "trash", post_id=43)
    assert_error(deliver(client, STATUS, site.plain_api_key, payload), 409, "conflict")
    assert reload(content).external_status == "draft"


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b"[1, 2]", b'"text"', b"null"])
def test_malformed_json_is_400(client, site, integration, content, body):
    response = deliver(client, STATUS, site.plain_api_key, body=body)
    assert_error(response, 400, "validation_error")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"post_id": None}, "post_id"),
        ({"post_id": "42"}, "post_id"),
        ({"post_id": 0}, "post_id"),
        ({"post_id": True}, "post_id"),
        ({"content_id": "x"}, "content_id"),
        ({"post_status": "published!"}, "post_status"),
        ({"post_status": None}, "post_status"),
        ({"post_url": "javascript:alert(1)"}, "post_url"),
        ({"post_type": "Not A Slug"}, "post_type"),
        ({"modified_gmt": "yesterday"}, "modified_gmt"),
    ],
)
def test_invalid_status_body_is_400_with_field_details(client, site, integration, content, change, field):
    payload = {**status_payload(content), **change}
    body = assert_error(deliver(client, STATUS, site.plain_api_key, payload), 400, "validation_error")
    assert field in body["error"]["details"]


def test_missing_post_status_is_400(client, site, integration, content):
    payload = status_payload(content)
    del payload["post_status"]
    body = assert_error(deliver(client, STATUS, site.plain_api_key, payload), 400, "validation_error")
    assert "post_status" in body["error"]["details"]


def test_oversized_body_is_413(client, site, integration, content):
    payload = status_payload(content, padding="x" * (70 * 1024))
    assert_error(deliver(client, STATUS, site.plain_api_key, payload), 413, "payload_too_large")
    assert reload(content).external_status == "draft"


def test_oversized_body_without_content_length_is_413(client, site, integration, content):
    import io

    body = json.dumps(status_payload(content, padding="x" * (70 * 1024))).encode()
    headers = signed_headers(site.plain_api_key, body)
    # A chunked upload: no Content-Length, the per-route cap must still hold.
    headers["Transfer-Encoding"] = "chunked"
    response = client.post(
        STATUS, input_stream=io.BytesIO(body), headers=headers, environ_overrides={"wsgi.input_terminated": True}
    )
    assert_error(response, 413, "payload_too_large")


def test_body_at_the_cap_is_read_whole(client, app, site, integration, content):
    payload = status_payload(content)
    raw = json.dumps(payload).encode()
    cap = app.config.get("WEBHOOK_MAX_BODY_BYTES", 64 * 1024)
    body = raw[:-1] + b" " * (cap - len(raw)) + b"}"  # valid JSON of exactly the cap
    assert len(body) == cap
    assert deliver(client, STATUS, site.plain_api_key, body=body).status_code == 200


def test_non_json_content_type_is_415(client, site, integration, content):
    body = json.dumps(status_payload(content)).encode()
    headers = {**signed_headers(site.plain_api_key, body), "Content-Type": "text/plain"}
    assert_error(client.post(STATUS, data=body, headers=headers), 415, "unsupported_media_type")


def test_get_is_405(client, site):
    assert_error(client.get(STATUS, headers={"X-API-Key": site.plain_api_key}), 405, "method_not_allowed")


# -- metadata -----------------------------------------------------------------------------------


def metadata_payload(content: Content, metadata: dict, modified: datetime | None = T1) -> dict:
    payload = {"post_id": int(content.external_id), "content_id": content.id, "metadata": metadata}
    if modified is not None:
        payload["modified_gmt"] = iso(modified)
    return payload


def test_metadata_merges_terms_and_the_rest_into_metadata(client, factory, site, integration):
    content = factory.content(
        site,
        external_id="42",
        taxonomies={"categories": [3], "tags": [7]},  # term ids, as pulls store them
        meta={"keep": 1, "seo": {"meta_title": "Old"}, "terms": {"categories": ["Old"], "genre": ["Jazz"]}},
    )
    metadata = {
        "categories": ["News"],
        "tags": ["alpha", "beta"],
        "taxonomies": {"region": ["EU"]},
        "seo": {"meta_title": "New title", "source": "yoast"},
        "modified_gmt": iso(T1),
    }
    response = deliver(client, METADATA, site.plain_api_key, metadata_payload(content, metadata), webhook_id="msg_meta")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "applied"
    stored = reload(content)
    assert stored.meta == {
        "keep": 1,
        "seo": {"meta_title": "New title", "source": "yoast"},
        "terms": {"categories": ["News"], "tags": ["alpha", "beta"], "genre": ["Jazz"], "region": ["EU"]},
    }
    # Term ids (what a push sends back to WordPress) are not replaced by names.
    assert stored.taxonomies == {"categories": [3], "tags": [7]}
    [event] = events()
    assert (event.event_type, event.webhook_id, event.details["outcome"]) == ("webhook_metadata", "msg_meta", "applied")
    assert event.details["metadata_keys"] == ["seo"]
    assert "New title" not in json.dumps(event.details)


def test_older_metadata_is_ignored(client, site, integration, content):
    deliver(client, STATUS, site.plain_api_key, status_payload(content, "publish", T2))
    response = deliver(client, METADATA, site.plain_api_key, metadata_payload(content, {"tags": ["old"]}, T1))
    assert response.get_json()["status"] == "ignored"
    assert reload(content).meta == {}


def test_metadata_does_not_make_a_status_of_the_same_save_stale(client, site, integration, content):
    deliver(client, METADATA, site.plain_api_key, metadata_payload(content, {"tags": ["a"]}, T2))
    response = deliver(client, STATUS, site.plain_api_key, status_payload(content, "publish", T2))
    assert response.get_json()["status"] == "applied"


def test_metadata_replay_is_applied_once(client, site, integration, content):
    first = deliver(
        client, METADATA, site.plain_api_key, metadata_payload(content, {"tags": ["a"]}), webhook_id="msg_m"
    )
    again = deliver(
        client, METADATA, site.plain_api_key, metadata_payload(content, {"tags": ["b"]}), webhook_id="msg_m"
    )
    assert (first.get_json()["status"], again.get_json()["status"]) == ("applied", "duplicate")
    assert reload(content).meta == {"terms": {"tags": ["a"]}}


def test_metadata_of_unknown_content_is_404(client, site, integration, content):
    payload = metadata_payload(content, {"tags": ["a"]})
    payload["content_id"] += 100
    assert_error(deliver(client, METADATA, site.plain_api_key, payload), 404, "not_found")


@pytest.mark.parametrize(
    "metadata",
    [
        "not an object",
        {f"k{i}": i for i in range(101)},
        {"blob": "x" * (33 * 1024)},
        {"a": {"b": {"c": {"d": {"e": 1}}}}},
        {"tags": "alpha"},
        {"tags": [{"name": "alpha"}]},
        {"categories": ["x" * 201]},
        {"taxonomies": ["region"]},
        {"taxonomies": {"region": "EU"}},
    ],
)
def test_invalid_metadata_is_400(client, site, integration, content, metadata):
    body = assert_error(
        deliver(client, METADATA, site.plain_api_key, metadata_payload(content, metadata)), 400, "validation_error"
    )
    assert "metadata" in body["error"]["details"]


def test_metadata_missing_is_400(client, site, integration, content):
    payload = {"post_id": 42, "content_id": content.id}
    body = assert_error(deliver(client, METADATA, site.plain_api_key, payload), 400, "validation_error")
    assert "metadata" in body["error"]["details"]


def test_metadata_needs_a_valid_signature(client, site, integration, content):
    response = deliver(
        client,
        METADATA,
        site.plain_api_key,
        metadata_payload(content, {"tags": ["a"]}),
        headers={"webhook-signature": None},
    )
    assert_error(response, 401, "not_authenticated")
    assert reload(content).meta == {}


# -- rate limit ---------------------------------------------------------------------------------


def test_webhooks_have_their_own_rate_limit(client, app, site, integration, content, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_WEBHOOKS", "3/minute")
    monkeypatch.setitem(app.config, "RATELIMIT_INTEGRATION", "1/minute")
    for second in range(3):
        payload = status_payload(content, "publish", T1 + timedelta(seconds=second))
        assert deliver(client, STATUS, site.plain_api_key, payload).status_code == 200
    throttled = deliver(client, STATUS, site.plain_api_key, status_payload(content, "trash", T2))
    assert_error(throttled, 429, "throttled")
    assert throttled.headers["Retry-After"]
    # The deliveries did not spend the integration API's budget.
    listed = client.get("/api/v1/integration/integrations/", headers={"X-API-Key": site.plain_api_key})
    assert listed.status_code == 200
