"""Bootstrap CLI (``flask --app wsgi ...``): every command prints one JSON object on stdout;
failures exit non-zero with a message on stderr and print nothing on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from sqlalchemy import text
from werkzeug.security import check_password_hash

from integration_service.extensions import db
from integration_service.models import Account, Site, User

ROOT = Path(__file__).resolve().parent.parent
URL = "/api/v1/integration/integrations/"


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(args=list(args))

    return invoke


def ok(result) -> dict:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout  # one JSON object, nothing else
    payload = json.loads(lines[0])
    assert isinstance(payload, dict)
    return payload


def failed(result, *fragments: str) -> str:
    assert result.exit_code != 0, result.stdout
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return result.stderr


# --- accounts ----------------------------------------------------------------------------------


def test_accounts_create(cli):
    payload = ok(cli("accounts", "create", "--name", "Acme Publishing"))
    assert set(payload) == {"id"}
    account = db.session.get(Account, payload["id"])
    assert account.name == "Acme Publishing" and account.status == "active"


@pytest.mark.parametrize("args", [(), ("--name", ""), ("--name", "x" * 201)])
def test_accounts_create_rejects_bad_names(cli, args):
    result = cli("accounts", "create", *args)
    assert result.exit_code != 0
    assert result.stdout == ""
    assert db.session.scalar(db.select(db.func.count()).select_from(Account)) == 0


def test_accounts_suspend(cli, account):
    payload = ok(cli("accounts", "suspend", "--id", str(account.id)))
    assert payload == {"id": account.id, "status": "suspended"}
    db.session.expire_all()
    assert db.session.get(Account, account.id).is_suspended


def test_accounts_suspend_unknown_id_fails(cli):
    failed(cli("accounts", "suspend", "--id", "424242"), "account 424242 does not exist")
    assert cli("accounts", "suspend", "--id", "abc").exit_code != 0


# --- users -------------------------------------------------------------------------------------


def test_users_create(cli, account):
    payload = ok(
        cli(
            "users", "create", "--account", str(account.id), "--email", "Ann@Example.com",
            "--password", "s3cret-passw0rd", "--role", "editor",
        )
    )  # fmt: skip
    assert set(payload) == {"id"}
    user = db.session.get(User, payload["id"])
    assert user.email == "ann@example.com"
    assert user.role == "editor" and user.is_active and user.account_id == account.id
    assert "s3cret-passw0rd" not in user.password_hash
    assert check_password_hash(user.password_hash, "s3cret-passw0rd")


def test_created_user_can_get_a_token(cli, client, account):
    ok(cli("users", "create", "--account", str(account.id), "--email", "b@example.com", "--password", "long-enough-1"))
    response = client.post("/api/v1/auth/token", json={"email": "b@example.com", "password": "long-enough-1"})
    assert response.status_code == 200


@pytest.mark.parametrize("role", ["viewer", "editor", "admin", "owner"])
def test_users_create_accepts_every_role(cli, account, role):
    payload = ok(
        cli("users", "create", "--account", str(account.id), "--email", f"{role}@example.com",
            "--password", "long-enough-1", "--role", role)
    )  # fmt: skip
    assert db.session.get(User, payload["id"]).role == role


def test_users_create_duplicate_email_fails(cli, account):
    args = ("users", "create", "--account", str(account.id), "--password", "long-enough-1")
    ok(cli(*args, "--email", "dup@example.com"))
    failed(cli(*args, "--email", "dup@example.com"), "already exists")
    failed(cli(*args, "--email", "DUP@example.com"), "already exists")
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 1


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"--role": "superuser"}, "role"),
        ({"--email": "not-an-email"}, "email"),
        ({"--password": "short"}, "password"),
        ({"--account": "424242"}, "account 424242 does not exist"),
    ],
)
def test_users_create_rejects_bad_input(cli, account, overrides, fragment):
    options = {"--account": str(account.id), "--email": "c@example.com", "--password": "long-enough-1"}
    options.update(overrides)
    args = [item for pair in options.items() for item in pair]
    failed(cli("users", "create", *args), fragment)
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0


def test_users_deactivate(cli, client, factory, editor):
    token = factory.token(editor)
    payload = ok(cli("users", "deactivate", "--id", str(editor.id)))
    assert payload == {"id": editor.id, "is_active": False}
    assert client.get(URL, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_users_deactivate_unknown_id_fails(cli):
    failed(cli("users", "deactivate", "--id", "424242"), "user 424242 does not exist")


# --- sites -------------------------------------------------------------------------------------


def test_sites_create_prints_a_working_key_once(cli, client, account):
    payload = ok(
        cli("sites", "create", "--account", str(account.id), "--name", "Blog", "--url", "https://blog.example")
    )
    assert set(payload) == {"id", "wp_api_key"}
    key = payload["wp_api_key"]
    site = db.session.get(Site, payload["id"])
    assert site.name == "Blog" and site.url == "https://blog.example" and site.account_id == account.id
    assert client.get(URL, headers={"X-API-Key": key}).status_code == 200
    with db.engine.connect() as connection:
        raw = repr(connection.execute(text("SELECT * FROM sites")).all())
    assert key not in raw


@pytest.mark.parametrize(
    ("url", "fragment"),
    [("blog.example.com", "url"), ("ftp://blog.example.com", "url"), ("https://u:p@blog.example.com", "credentials")],
)
def test_sites_create_rejects_bad_urls(cli, account, url, fragment):
    failed(cli("sites", "create", "--account", str(account.id), "--name", "Blog", "--url", url), fragment)
    assert db.session.scalar(db.select(db.func.count()).select_from(Site)) == 0


def test_sites_create_unknown_account_fails(cli):
    failed(cli("sites", "create", "--account", "424242", "--name", "B", "--url", "https://b.example"), "424242")


def test_sites_rotate_key(cli, client, site):
    payload = ok(cli("sites", "rotate-key", "--id", str(site.id)))
    assert payload["id"] == site.id
    assert payload["wp_api_key"] != site.plain_api_key
    assert client.get(URL, headers={"X-API-Key": site.plain_api_key}).status_code == 401
    assert client.get(URL, headers={"X-API-Key": payload["wp_api_key"]}).status_code == 200


def test_sites_rotate_key_unknown_id_fails(cli):
    failed(cli("sites", "rotate-key", "--id", "424242"), "site 424242 does not exist")


# --- tokens and keys ---------------------------------------------------------------------------


def test_tokens_issue(cli, client, app, editor):
    payload = ok(cli("tokens", "issue", "--email", editor.email.upper()))
    assert set(payload) == {"access_token", "expires_in"}
    assert payload["expires_in"] == app.config["ACCESS_TOKEN_TTL_SECONDS"]
    claims = jwt.decode(
        payload["access_token"], app.config["SECRET_KEY"], algorithms=["HS256"], issuer="integration-service"
    )
    assert claims["sub"] == str(editor.id)
    assert client.get(URL, headers={"Authorization": f"Bearer {payload['access_token']}"}).status_code == 200


def test_tokens_issue_fails_for_unknown_or_inactive_users(cli, factory, account):
    failed(cli("tokens", "issue", "--email", "nobody@example.com"), "no user")
    inactive = factory.user(account, is_active=False)
    failed(cli("tokens", "issue", "--email", inactive.email), "inactive")
    suspended = factory.user(factory.account(status="suspended"))
    failed(cli("tokens", "issue", "--email", suspended.email), "suspended")


def test_keys_rotate_reports_the_count(cli, factory, account):
    site = factory.site(account)
    factory.integration(site)
    factory.integration(site, "custom", credentials_json={})
    # One site key and two integration credential blobs.
    assert ok(cli("keys", "rotate")) == {"reencrypted": 3}


# --- the real command line ---------------------------------------------------------------------


def test_flask_command_line_from_the_repository_root(tmp_path):
    """The contract's commands as an operator types them, on a fresh SQLite database."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "APP_ENV", "SECRET_KEY", "ENCRYPTION_KEYS"}
    }
    env.update(INSTANCE_PATH=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite'}", APP_ENV="development")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*flask, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert run("db", "upgrade").returncode == 0
    created = run("accounts", "create", "--name", "Acme")
    assert created.returncode == 0, created.stderr
    account_id = json.loads(created.stdout)["id"]
    user = run("users", "create", "--account", str(account_id), "--email", "a@example.com", "--password", "pw-123456")
    assert user.returncode == 0 and set(json.loads(user.stdout)) == {"id"}
    bad = run("users", "create", "--account", "999", "--email", "b@example.com", "--password", "pw-123456")
    assert bad.returncode != 0 and bad.stdout == "" and "account 999 does not exist" in bad.stderr


@pytest.mark.parametrize("huge", [str(2**31), str(2**40), str(2**63), "99999999999999999999"])
@pytest.mark.parametrize(
    ("args", "label"),
    [
        (("accounts", "suspend", "--id"), "account"),
        (("users", "deactivate", "--id"), "user"),
        (("sites", "rotate-key", "--id"), "site"),
        (("users", "create", "--email", "a@example.com", "--password", "long enough pw", "--account"), "account"),
        (("sites", "create", "--name", "n", "--url", "https://example.com", "--account"), "account"),
    ],
)
def test_out_of_range_ids_do_not_exist(cli, args, label, huge):
    result = cli(*args, huge)
    assert result.exit_code == 1
    failed(result, f"error: {label} {huge} does not exist")
    assert "sqlalchemy" not in result.stderr.lower() and "Traceback" not in result.stderr
