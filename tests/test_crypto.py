"""Secrets at rest: Fernet/MultiFernet boxes, encrypted columns, and key rotation with the
``keys rotate`` command."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import text

from integration_service.crypto import (
    API_KEY_PREFIX,
    SecretBox,
    api_key_digest,
    generate_api_key,
    mask_secret,
)
from integration_service.extensions import db
from integration_service.models import Site, SiteIntegration

URL = "/api/v1/integration/integrations/"


def new_key() -> str:
    return Fernet.generate_key().decode()


# --- SecretBox ---------------------------------------------------------------------------------


def test_secret_box_round_trip_and_fresh_tokens():
    box = SecretBox(new_key())
    first, second = box.encrypt("hunter2"), box.encrypt("hunter2")
    assert first != second  # random IVs: equal secrets are not recognisable in the table
    assert "hunter2" not in first
    assert box.decrypt(first) == box.decrypt(second) == "hunter2"


def test_secret_box_encrypts_with_the_first_key_and_decrypts_with_any():
    old, new = new_key(), new_key()
    old_token = SecretBox(old).encrypt("from before")
    both = SecretBox(f"{new}, {old}")  # spaces around commas are tolerated
    assert both.decrypt(old_token) == "from before"
    fresh = both.encrypt("from now on")
    assert Fernet(new.encode()).decrypt(fresh.encode()) == b"from now on"
    with pytest.raises(InvalidToken):
        Fernet(old.encode()).decrypt(fresh.encode())


def test_secret_box_rotate_moves_a_token_to_the_first_key():
    old, new = new_key(), new_key()
    token = SecretBox(old).encrypt("secret")
    rotated = SecretBox(f"{new},{old}").rotate(token)
    assert SecretBox(new).decrypt(rotated) == "secret"


def test_secret_box_with_the_wrong_key_fails_without_the_secret_in_the_message():
    token = SecretBox(new_key()).encrypt("hunter2")
    with pytest.raises(RuntimeError) as excinfo:
        SecretBox(new_key()).decrypt(token)
    assert "hunter2" not in str(excinfo.value)


@pytest.mark.parametrize("keys", ["", " , ", ","])
def test_secret_box_needs_a_key(keys):
    with pytest.raises(RuntimeError):
        SecretBox(keys)


def test_secret_box_rejects_a_malformed_key():
    with pytest.raises(ValueError):
        SecretBox("not-a-fernet-key")


# --- helpers -----------------------------------------------------------------------------------


def test_generated_api_keys_are_random_and_prefixed():
    keys = {generate_api_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(key.startswith(API_KEY_PREFIX) and len(key) >= 40 and "." not in key for key in keys)


def test_api_key_digest_is_stable_and_hides_the_key():
    key = generate_api_key()
    assert api_key_digest(key) == api_key_digest(key)
    assert api_key_digest(key) != api_key_digest(key + "x")
    assert key not in api_key_digest(key) and len(api_key_digest(key)) == 64


@pytest.mark.parametrize(
    ("value", "masked"),
    [(None, None), ("", None), ("short", "…"), ("exactly12chr", "…"), ("igk_0123456789abcdef", "igk_…cdef")],
)
def test_mask_secret(value, masked):
    assert mask_secret(value) == masked


# --- encrypted columns -------------------------------------------------------------------------


def test_encrypted_columns_store_tokens_only(app, factory, account):
    site = factory.site(account)
    factory.integration(site, credentials_json={"api_key": "plugin-key-abcdefgh", "app_password": "pw pw pw"})
    with db.engine.connect() as connection:
        site_row = connection.execute(text("SELECT wp_api_key, wp_api_key_digest FROM sites")).one()
        credentials = connection.execute(text("SELECT credentials_json FROM site_integrations")).scalar_one()
    assert site.plain_api_key not in repr(site_row)
    box = SecretBox(app.config["ENCRYPTION_KEYS"])
    assert box.decrypt(site_row[0]) == site.plain_api_key
    assert site_row[1] == api_key_digest(site.plain_api_key)
    assert "plugin-key" not in credentials and "app_password" not in credentials
    assert json.loads(box.decrypt(credentials)) == {"api_key": "plugin-key-abcdefgh", "app_password": "pw pw pw"}


# --- rotation ----------------------------------------------------------------------------------


def raw_tokens() -> dict[str, str]:
    with db.engine.connect() as connection:
        tokens = {f"site:{row[0]}": row[1] for row in connection.execute(text("SELECT id, wp_api_key FROM sites"))}
        tokens.update(
            {
                f"integration:{row[0]}": row[1]
                for row in connection.execute(text("SELECT id, credentials_json FROM site_integrations"))
            }
        )
    return tokens


def read_secrets() -> dict[str, object]:
    db.session.expire_all()
    secrets: dict[str, object] = {f"site:{s.id}": s.wp_api_key for s in db.session.scalars(db.select(Site))}
    for integration in db.session.scalars(db.select(SiteIntegration)):
        secrets[f"integration:{integration.id}"] = integration.credentials_json
    return secrets


def test_keys_rotate_reencrypts_everything_under_the_first_key(app, client, factory, account, monkeypatch):
    old_keys = app.config["ENCRYPTION_KEYS"]
    fresh = new_key()
    sites = [factory.site(account), factory.site(account)]
    factory.integration(sites[0], credentials_json={"api_key": "plugin-key-one-123456", "app_password": "a b c"})
    factory.integration(sites[1], "custom", credentials_json={"token": "custom-token-xyz"})
    before_secrets = read_secrets()
    before_tokens = raw_tokens()

    # The new key goes first; rows written under the old key stay readable.
    monkeypatch.setitem(app.extensions, "secret_box", SecretBox(f"{fresh},{old_keys}"))
    assert read_secrets() == before_secrets
    assert client.get(URL, headers={"X-API-Key": sites[0].plain_api_key}).status_code == 200

    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"reencrypted": 4}

    after_tokens = raw_tokens()
    assert after_tokens.keys() == before_tokens.keys()
    only_new, only_old = Fernet(fresh.encode()), SecretBox(old_keys)
    for name, token in after_tokens.items():
        assert token != before_tokens[name]
        only_new.decrypt(token.encode())  # raises if not under the new key
        with pytest.raises(RuntimeError):
            only_old.decrypt(token)

    # The old key can now be dropped.
    monkeypatch.setitem(app.extensions, "secret_box", SecretBox(fresh))
    assert read_secrets() == before_secrets
    assert client.get(URL, headers={"X-API-Key": sites[1].plain_api_key}).status_code == 200
    listed = client.get(URL, headers={"X-API-Key": sites[0].plain_api_key}).get_json()
    assert listed["results"][0]["api_key"] == mask_secret("plugin-key-one-123456")


def test_keys_rotate_twice_is_harmless(app, factory, account, monkeypatch):
    site = factory.site(account)
    monkeypatch.setitem(app.extensions, "secret_box", SecretBox(f"{new_key()},{app.config['ENCRYPTION_KEYS']}"))
    runner = app.test_cli_runner()
    assert json.loads(runner.invoke(args=["keys", "rotate"]).stdout) == {"reencrypted": 1}
    assert json.loads(runner.invoke(args=["keys", "rotate"]).stdout) == {"reencrypted": 1}
    db.session.expire_all()
    assert db.session.get(Site, site.id).wp_api_key == site.plain_api_key


def test_keys_rotate_on_an_empty_database(app):
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0 and json.loads(result.stdout) == {"reencrypted": 0}
