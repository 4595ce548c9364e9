"""Authentication: ``POST /api/v1/auth/token``, bearer tokens, site API keys, inactive and
suspended principals, and per-principal throttling."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from integration_service.extensions import db
from tests.factories import DEFAULT_PASSWORD

TOKEN_URL = "/api/v1/auth/token/"
URL = "/api/v1/integration/integrations/"


def assert_401(response) -> dict:
    assert response.status_code == 401, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["code"] == "not_authenticated"
    assert body["request_id"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body["error"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_token(app, user, secret: str | None = None, algorithm: str = "HS256", **claims) -> str:
    now = datetime.now(UTC)
    payload = {
        "sub": str(user.id),
        "acc": user.account_id,
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "iss": app.config["JWT_ISSUER"],
        "typ": "access",
    }
    payload.update(claims)
    payload = {key: value for key, value in payload.items() if value is not None}
    return jwt.encode(payload, secret or app.config["SECRET_KEY"], algorithm=algorithm)


# --- POST /auth/token --------------------------------------------------------------------------


@pytest.mark.parametrize("path", [TOKEN_URL, TOKEN_URL.rstrip("/")])
def test_token_happy_path(client, app, editor, path):
    response = client.post(path, json={"email": editor.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == app.config["ACCESS_TOKEN_TTL_SECONDS"]
    claims = jwt.decode(
        body["access_token"], app.config["SECRET_KEY"], algorithms=["HS256"], issuer="integration-service"
    )
    assert claims["sub"] == str(editor.id)
    assert claims["exp"] - claims["iat"] == app.config["ACCESS_TOKEN_TTL_SECONDS"]
    assert client.get(URL, headers=bearer(body["access_token"])).status_code == 200


def test_token_email_is_case_insensitive(client, editor):
    response = client.post(TOKEN_URL, json={"email": editor.email.upper(), "password": DEFAULT_PASSWORD})
    assert response.status_code == 200


def test_wrong_password_and_unknown_email_are_401_and_alike(client, editor):
    wrong = assert_401(client.post(TOKEN_URL, json={"email": editor.email, "password": "not the password"}))
    unknown = assert_401(client.post(TOKEN_URL, json={"email": "nobody@example.com", "password": DEFAULT_PASSWORD}))
    assert wrong == unknown  # no hint whether the email exists


def test_token_refused_for_inactive_user_and_suspended_account(client, factory):
    inactive = factory.user(is_active=False)
    assert_401(client.post(TOKEN_URL, json={"email": inactive.email, "password": DEFAULT_PASSWORD}))
    suspended_user = factory.user(factory.account(status="suspended"))
    assert_401(client.post(TOKEN_URL, json={"email": suspended_user.email, "password": DEFAULT_PASSWORD}))


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"email", "password"}),
        ({"email": "someone@example.com"}, {"password"}),
        ({"email": "not-an-email", "password": "x"}, {"email"}),
        ({"email": 5, "password": "x"}, {"email"}),
        ({"email": "someone@example.com", "password": ""}, {"password"}),
        ({"email": "someone@example.com", "password": ["x"]}, {"password"}),
        ({"email": "someone@example.com", "password": "x", "remember": True}, {"remember"}),
    ],
)
def test_token_bad_body_is_400(client, body, fields):
    response = client.post(TOKEN_URL, json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["details"]) == fields


def test_token_with_a_non_json_body_is_415(client, editor):
    response = client.post(TOKEN_URL, data={"email": editor.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"


def test_token_endpoint_is_throttled_per_ip(client, app, editor, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_AUTH", "3/minute")
    for _ in range(3):
        assert client.post(TOKEN_URL, json={"email": editor.email, "password": "wrong"}).status_code == 401
    response = client.post(TOKEN_URL, json={"email": editor.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "throttled"
    assert int(response.headers["Retry-After"]) >= 1
    other_ip = client.post(
        TOKEN_URL,
        json={"email": editor.email, "password": DEFAULT_PASSWORD},
        environ_overrides={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert other_ip.status_code == 200


# --- bearer tokens -----------------------------------------------------------------------------


def test_expired_token_is_401(client, app, editor):
    past = datetime.now(UTC) - timedelta(hours=2)
    token = make_token(app, editor, iat=past, exp=past + timedelta(hours=1))
    assert "expired" in assert_401(client.get(URL, headers=bearer(token)))["message"]


def test_tampered_token_is_401(client, app, factory, account, editor):
    other = factory.user(account, role="owner")
    token = make_token(app, editor)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(other.id)  # claim to be someone else, keep the old signature
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_401(client.get(URL, headers=bearer(f"{header}.{forged_payload}.{signature}")))
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    assert_401(client.get(URL, headers=bearer(f"{header}.{payload}.{flipped}")))
    assert client.get(URL, headers=bearer(token)).status_code == 200  # the untouched one works


def test_token_signed_with_another_key_is_401(client, app, editor):
    token = make_token(app, editor, secret="another-secret-key-0123456789abcdef0123")
    assert_401(client.get(URL, headers=bearer(token)))


def test_unsigned_token_is_401(client, app, editor):
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": str(editor.id), "iat": now, "exp": now + 300, "iss": "integration-service", "typ": "access"}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_401(client.get(URL, headers=bearer(f"{header}.{payload}.")))


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "someone-else"},
        {"typ": "refresh"},
        {"exp": None},
        {"sub": None},
        {"sub": "not-a-number"},
        {"sub": "999999"},
    ],
)
def test_tokens_with_wrong_claims_are_401(client, app, editor, claims):
    assert_401(client.get(URL, headers=bearer(make_token(app, editor, **claims))))


def test_garbage_and_unknown_schemes_are_401(client):
    assert_401(client.get(URL, headers=bearer("a.b.c")))
    assert_401(client.get(URL, headers={"Authorization": "Basic dXNlcjpwYXNz"}))
    assert_401(client.get(URL, headers={"Authorization": "Bearer "}))


def test_inactive_user_token_is_401(client, factory, editor):
    token = factory.token(editor)
    assert client.get(URL, headers=bearer(token)).status_code == 200
    editor.is_active = False
    db.session.commit()
    assert_401(client.get(URL, headers=bearer(token)))


def test_suspended_account_token_is_401(client, factory, account, editor):
    token = factory.token(editor)
    account.status = "suspended"
    db.session.commit()
    assert_401(client.get(URL, headers=bearer(token)))


def test_role_is_read_at_request_time(client, factory, account, site, editor):
    token = factory.token(editor)
    editor.role = "viewer"
    db.session.commit()
    response = client.post(URL, json={"site_id": site.id, "platform": "custom"}, headers=bearer(token))
    assert response.status_code == 403


# --- site API keys -----------------------------------------------------------------------------


def test_site_api_key_authenticates_in_either_header(client, site):
    assert client.get(URL, headers={"X-API-Key": site.plain_api_key}).status_code == 200
    assert client.get(URL, headers=bearer(site.plain_api_key)).status_code == 200


def test_unknown_api_key_is_401(client, site):
    assert_401(client.get(URL, headers={"X-API-Key": site.plain_api_key + "x"}))
    assert_401(client.get(URL, headers={"X-API-Key": "igk_not-a-key"}))
    assert_401(client.get(URL, headers=bearer("igk_not-a-key")))


def test_suspended_account_api_key_is_401(client, account, site):
    assert client.get(URL, headers={"X-API-Key": site.plain_api_key}).status_code == 200
    account.status = "suspended"
    db.session.commit()
    assert_401(client.get(URL, headers={"X-API-Key": site.plain_api_key}))
    assert_401(client.get(URL, headers=bearer(site.plain_api_key)))


def test_rotated_api_key_stops_working(client, site):
    from integration_service.services.accounts import assign_new_api_key

    old_key = site.plain_api_key
    new_key = assign_new_api_key(site)
    db.session.commit()
    assert_401(client.get(URL, headers={"X-API-Key": old_key}))
    assert client.get(URL, headers={"X-API-Key": new_key}).status_code == 200


# --- per-principal throttling ------------------------------------------------------------------


def test_each_principal_has_its_own_bucket(client, app, factory, account, site, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_INTEGRATION", "2/minute")
    first = bearer(factory.token(factory.user(account, role="viewer")))
    second = bearer(factory.token(factory.user(account, role="viewer")))
    site_key = {"X-API-Key": site.plain_api_key}

    assert [client.get(URL, headers=first).status_code for _ in range(3)] == [200, 200, 429]
    # Another user, the site key and an anonymous caller each still have their full allowance.
    assert [client.get(URL, headers=second).status_code for _ in range(3)] == [200, 200, 429]
    assert [client.get(URL, headers=site_key).status_code for _ in range(3)] == [200, 200, 429]
    assert [client.get(URL).status_code for _ in range(3)] == [401, 401, 429]
    assert client.get(URL, headers=first).status_code == 429


def test_the_limit_is_shared_by_every_integration_route(client, app, factory, editor, site, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_INTEGRATION", "3/minute")
    integration = factory.integration(site)
    headers = bearer(factory.token(editor))
    assert client.get(URL, headers=headers).status_code == 200
    assert client.get(f"{URL}{integration.id}/", headers=headers).status_code == 200
    assert client.patch(f"{URL}{integration.id}/", json={"is_active": True}, headers=headers).status_code == 200
    assert client.get(f"{URL}{integration.id}/", headers=headers).status_code == 429
