"""Bootstrap commands.  Each prints one JSON object on stdout; failures exit non-zero with a
message on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup
from marshmallow import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from .auth import hash_password, issue_access_token
from .crypto import secret_box
from .extensions import db
from .models import Account, Site, SiteIntegration, User
from .schemas import AccountCreateSchema, SiteCreateSchema, UserCreateSchema
from .services import accounts

accounts_cli = AppGroup("accounts", help="Manage accounts.")
users_cli = AppGroup("users", help="Manage users.")
sites_cli = AppGroup("sites", help="Manage sites and their API keys.")
tokens_cli = AppGroup("tokens", help="Issue access tokens.")
keys_cli = AppGroup("keys", help="Manage encryption keys.")


def emit(payload: dict[str, Any]) -> None:
    click.echo(json.dumps(payload))


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def load_or_fail(schema_cls: type, data: dict[str, Any]) -> dict[str, Any]:
    try:
        return schema_cls().load(data)
    except ValidationError as exc:
        fail(json.dumps(exc.messages))
        raise  # unreachable; keeps type checkers calm


def get_or_fail(model: type, object_id: int, label: str) -> Any:
    obj = db.session.get(model, object_id)
    if obj is None:
        fail(f"{label} {object_id} does not exist")
    return obj


@accounts_cli.command("create")
@click.option("--name", required=True)
def create_account(name: str) -> None:
    data = load_or_fail(AccountCreateSchema, {"name": name})
    account = Account(name=data["name"])
    db.session.add(account)
    db.session.commit()
    emit({"id": account.id})


@accounts_cli.command("suspend")
@click.option("--id", "account_id", required=True, type=int)
def suspend_account(account_id: int) -> None:
    account = get_or_fail(Account, account_id, "account")
    account.status = "suspended"
    db.session.commit()
    emit({"id": account.id, "status": account.status})


@users_cli.command("create")
@click.option("--account", "account_id", required=True, type=int)
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", default="viewer", show_default=True)
def create_user(account_id: int, email: str, password: str, role: str) -> None:
    get_or_fail(Account, account_id, "account")
    data = load_or_fail(UserCreateSchema, {"email": email, "password": password, "role": role})
    user = User(
        account_id=account_id,
        email=data["email"].lower(),
        password_hash=hash_password(data["password"]),
        role=data["role"],
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        fail(f"a user with the email {data['email']} already exists")
    emit({"id": user.id})


@users_cli.command("deactivate")
@click.option("--id", "user_id", required=True, type=int)
def deactivate_user(user_id: int) -> None:
    user = get_or_fail(User, user_id, "user")
    user.is_active = False
    db.session.commit()
    emit({"id": user.id, "is_active": user.is_active})


@sites_cli.command("create")
@click.option("--account", "account_id", required=True, type=int)
@click.option("--name", required=True)
@click.option("--url", required=True)
def create_site(account_id: int, name: str, url: str) -> None:
    get_or_fail(Account, account_id, "account")
    data = load_or_fail(SiteCreateSchema, {"name": name, "url": url})
    site, api_key = accounts.create_site(account_id, data["name"], data["url"])
    db.session.commit()
    emit({"id": site.id, "wp_api_key": api_key})


@sites_cli.command("rotate-key")
@click.option("--id", "site_id", required=True, type=int)
def rotate_site_key(site_id: int) -> None:
    site = get_or_fail(Site, site_id, "site")
    api_key = accounts.assign_new_api_key(site)
    db.session.commit()
    emit({"id": site.id, "wp_api_key": api_key})


@tokens_cli.command("issue")
@click.option("--email", required=True)
def issue_token(email: str) -> None:
    user = db.session.scalar(db.select(User).where(User.email == email.strip().lower()))
    if user is None:
        fail(f"no user with the email {email}")
    if not user.is_active or user.account.is_suspended:
        fail("the user is inactive or the account is suspended")
    token, ttl = issue_access_token(user)
    emit({"access_token": token, "expires_in": ttl})


def _rotate_column(model: type[Any], column: str, rotate: Callable[[str], str]) -> int:
    """Re-encrypt one encrypted column in place, reading the raw tokens (no decryption to
    Python objects, so the plaintext never leaves this function)."""
    table = model.__tablename__
    count = 0
    # Plain SQL on purpose: the column types would decrypt on read and encrypt on write.
    rows = db.session.execute(text(f"SELECT id, {column} FROM {table}")).all()  # noqa: S608 - fixed names
    for row_id, token in rows:
        if token is None:
            continue
        db.session.execute(
            text(f"UPDATE {table} SET {column} = :token WHERE id = :id"),  # noqa: S608 - fixed names
            {"token": rotate(token), "id": row_id},
        )
        count += 1
    return count


def reencrypt_all_secrets() -> int:
    box = secret_box()
    count = _rotate_column(Site, "wp_api_key", box.rotate)
    count += _rotate_column(SiteIntegration, "credentials_json", box.rotate)
    db.session.commit()
    return count


@keys_cli.command("rotate")
def rotate_keys() -> None:
    emit({"reencrypted": reencrypt_all_secrets()})


def register_cli(app: Flask) -> None:
    for group in (accounts_cli, users_cli, sites_cli, tokens_cli, keys_cli):
        app.cli.add_command(group)
