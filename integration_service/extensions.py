"""Extension singletons, bound to an app in ``create_app`` with ``init_app``."""

from __future__ import annotations

from typing import Any, cast

from flask import g, request
from flask_cors import CORS
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import CursorResult, MetaData, Result
from sqlalchemy.sql import Executable

from . import ratelimit  # noqa: F401 - registers the limiter strategy named in config.py

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


Params = dict[str, Any] | list[dict[str, Any]] | None


def execute_core(statement: Executable, params: Params = None) -> CursorResult[Any]:
    """Run a Core statement on the session's connection, in the session's transaction.

    For the per-request hot paths (a webhook delivery, a status poll, authentication): the
    session's own ``execute`` adds ORM statement handling and an autoflush check to every
    statement, about 90 µs of Python each (bench/profile_http.py), which a Core statement on
    table columns does not use. Only for statements that read or write no ORM-mapped object
    pending in the session (nothing to flush first).
    """
    return db.session.connection().execute(statement, params)


def rate_limit_key() -> str:
    principal = getattr(g, "principal", None)
    if principal is not None:
        return principal.rate_limit_key
    return request.remote_addr or "unknown"


db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
limiter = Limiter(key_func=rate_limit_key)
cors = CORS()
