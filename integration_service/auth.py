"""Authentication (user bearer tokens, site API keys) and role checks."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

import jwt
from flask import current_app, g, request
from sqlalchemy import Row, bindparam
from werkzeug.security import check_password_hash, generate_password_hash

from .crypto import api_key_digest
from .errors import NotAuthenticated, PermissionDenied
from .extensions import db, execute_core
from .models import ACTIVE_ACCOUNT, Account, Role, Site, User

logger = logging.getLogger(__name__)

# A dummy hash so that a login for an unknown email costs the same as a wrong password.
_DUMMY_PASSWORD_HASH: str | None = None


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user of an account, or one site through its API key."""

    account_id: int
    role: Role
    user_id: int | None = None
    site_id: int | None = None

    @property
    def is_site(self) -> bool:
        return self.site_id is not None and self.user_id is None

    @property
    def rate_limit_key(self) -> str:
        return f"user:{self.user_id}" if self.user_id is not None else f"site:{self.site_id}"

    def can(self, role: Role) -> bool:
        return self.role >= role


# The two statements every authenticated request runs, built once (Core, on the tables) and
# executed with the id or digest as a bound parameter: building them per request, with their
# cache keys, cost more Python time than the rest of authentication. Plain rows: no ORM objects.
_users, _sites, _accounts = User.__table__, Site.__table__, Account.__table__
_USER_ROW = (
    db.select(_users.c.id, _users.c.account_id, _users.c.role, _users.c.is_active, _accounts.c.status)
    .join(_accounts, _accounts.c.id == _users.c.account_id)
    .where(_users.c.id == bindparam("user_id"))
)
_SITE_ROW = (
    db.select(_sites.c.id, _sites.c.account_id, _sites.c.wp_api_key, _accounts.c.status.label("account_status"))
    .join(_accounts, _accounts.c.id == _sites.c.account_id)
    .where(_sites.c.wp_api_key_digest == bindparam("digest"))
)


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def verify_user_password(email: str, password: str) -> User | None:
    global _DUMMY_PASSWORD_HASH
    user = db.session.scalar(db.select(User).where(User.email == email.strip().lower()))
    if user is None:
        if _DUMMY_PASSWORD_HASH is None:
            _DUMMY_PASSWORD_HASH = hash_password("not-a-real-password")
        check_password_hash(_DUMMY_PASSWORD_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    return user


def issue_access_token(user: User) -> tuple[str, int]:
    ttl = int(current_app.config["ACCESS_TOKEN_TTL_SECONDS"])
    now = datetime.now(UTC)
    claims = {
        "sub": str(user.id),
        "acc": user.account_id,
        "iat": now,
        "exp": now + timedelta(seconds=ttl),
        "iss": current_app.config["JWT_ISSUER"],
        "typ": "access",
    }
    token = jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm="HS256")
    return token, ttl


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def _user_principal(token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            current_app.config["SECRET_KEY"],
            algorithms=["HS256"],
            issuer=current_app.config["JWT_ISSUER"],
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("The access token has expired.") from exc
    except jwt.InvalidTokenError as exc:
        raise NotAuthenticated("The access token is not valid.") from exc
    if claims.get("typ") != "access" or not str(claims["sub"]).isdigit():
        raise NotAuthenticated("The access token is not valid.")
    # One row with the account's status: this runs on every authenticated request, so the
    # columns it checks are read as a plain row (no ORM objects for the user or the account).
    user = execute_core(_USER_ROW, {"user_id": int(claims["sub"])}).first()
    if user is None or not user.is_active:
        raise NotAuthenticated("The user is inactive or does not exist.")
    if user.status != ACTIVE_ACCOUNT:
        raise NotAuthenticated("The account is suspended.")
    return Principal(account_id=user.account_id, role=Role[user.role], user_id=user.id)


def site_for_api_key(api_key: str) -> Row | None:
    """(id, account_id, wp_api_key, account_status) of the site whose key this is: a plain row
    (the key column decrypts on read; it is compared here and signs webhooks)."""
    site = execute_core(_SITE_ROW, {"digest": api_key_digest(api_key)}).first()
    if site is None or not hmac.compare_digest(site.wp_api_key.encode(), api_key.encode()):
        return None
    return site


def _site_principal(api_key: str) -> Principal:
    site = site_for_api_key(api_key)
    if site is None:
        raise NotAuthenticated("The API key is not valid.")
    if site.account_status != ACTIVE_ACCOUNT:
        raise NotAuthenticated("The account is suspended.")
    # Kept for the request: the webhook views need the site's key (it signs the delivery);
    # reading it again would cost a SELECT and a decryption.
    g.authenticated_site = site
    return Principal(account_id=site.account_id, role=Role.editor, site_id=site.id)


def authenticated_site(principal: Principal) -> Row | None:
    """The site row read by ``_site_principal`` for this request's site key, if any."""
    site = g.get("authenticated_site")
    return site if site is not None and principal.is_site and site.id == principal.site_id else None


def credentials_from_request() -> tuple[str, str] | None:
    """Return ("bearer"|"api_key", value) from the request headers, if any."""
    api_key = request.headers.get("X-API-Key")
    if api_key:
        return "api_key", api_key.strip()
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return "bearer", value.strip()
    return None


def resolve_principal(allow_site_key: bool = True) -> Principal | None:
    credentials = credentials_from_request()
    if credentials is None:
        return None
    kind, value = credentials
    if kind == "bearer" and _looks_like_jwt(value):
        return _user_principal(value)
    if not allow_site_key:
        raise NotAuthenticated("A user access token is required.")
    return _site_principal(value)


def load_principal_leniently() -> None:
    """Resolve the caller before rate limiting (limits are per principal); an auth error is
    kept and raised by ``authenticate`` only on routes that need authentication."""
    g.principal = None
    g.auth_error = None
    g.authenticated_site = None
    try:
        g.principal = resolve_principal()
    except NotAuthenticated as exc:
        g.auth_error = exc


def authenticate(allow_site_key: bool = True) -> Principal:
    if getattr(g, "auth_error", None) is not None:
        raise g.auth_error
    principal = getattr(g, "principal", None)
    if principal is None:
        raise NotAuthenticated()
    if principal.is_site and not allow_site_key:
        raise NotAuthenticated("A user access token is required.")
    return principal


def current_principal() -> Principal:
    principal = getattr(g, "principal", None)
    if principal is None:
        raise NotAuthenticated()
    return principal


def require_role(minimum: Role) -> None:
    if not current_principal().can(minimum):
        raise PermissionDenied()


def login_required(allow_site_key: bool = True) -> Callable:
    """Authenticate before the view; GET-like methods need viewer, others editor."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            authenticate(allow_site_key)
            minimum = Role.viewer if request.method in ("GET", "HEAD", "OPTIONS") else Role.editor
            require_role(minimum)
            return view(*args, **kwargs)

        return wrapper

    return decorator
