"""Extension singletons, bound to an app in ``create_app`` with ``init_app``."""

from __future__ import annotations

from typing import Any, cast

from flask import g, request
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import CursorResult, MetaData, Result

# Named constraints keep Alembic migrations identical on PostgreSQL and SQLite.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE run through ``db.session.execute`` changed (its result is a
    CursorResult; the session's signature only promises a Result)."""
    return cast("CursorResult[Any]", result).rowcount


def rate_limit_key() -> str:
    principal = getattr(g, "principal", None)
    if principal is not None:
        return principal.rate_limit_key
    return request.remote_addr or "unknown"


db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
limiter = Limiter(key_func=rate_limit_key)
