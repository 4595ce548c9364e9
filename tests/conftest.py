"""Shared fixtures: ``app``, ``client``, ``db`` (a clean database per test), authenticated
clients and factories.

The database is SQLite in a temporary file unless ``TEST_DATABASE_URL`` names another one
(CI uses PostgreSQL).  ``TEST_REDIS_URL`` names a Redis database that is flushed between tests.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from integration_service import metrics
from integration_service.platforms.wordpress import site_cache

# Before config is imported: a developer's .env (scripts/dev.sh --redis writes one) must not
# leak into the tests or the service processes they start.
os.environ.setdefault("ENV_FILE", os.devnull)

from config import TestingConfig, normalize_database_url
from integration_service import create_app
from integration_service.extensions import db as _db
from integration_service.extensions import limiter
from integration_service.platforms.politeness import reset_local_state as reset_politeness
from tests.factories import Factory

# The faked WordPress (fake_wp, wp_integration) for sync tests in every test directory.
pytest_plugins = ["tests.workers.fakewp", "tests.workers.fakewp_publishing"]


def _test_database_url(tmp_dir: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_dir / 'test.sqlite'}"
    url = normalize_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            exists = connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database})
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
        admin.dispose()
    return url


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _test_database_url(tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    return os.environ.get("TEST_REDIS_URL") or None


@pytest.fixture(scope="session")
def app(database_url: str, redis_url: str | None) -> Iterator[Flask]:
    overrides: dict[str, Any] = {"SQLALCHEMY_DATABASE_URI": database_url}
    if database_url.startswith("sqlite"):
        overrides["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    app = create_app(TestingConfig, overrides=overrides)
    with app.app_context():
        _db.drop_all()
        _db.create_all()
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def _clean_database() -> None:
    # DELETE plus a sequence reset: on tables this small it is ~50x faster than TRUNCATE.
    _db.session.remove()
    tables = list(reversed(_db.metadata.sorted_tables))
    with _db.engine.begin() as connection:
        for table in tables:
            connection.execute(table.delete())
        if connection.dialect.name == "postgresql":
            for table in tables:
                connection.execute(text("SELECT setval(pg_get_serial_sequence(:t, 'id'), 1, false)"), {"t": table.name})


def _drop_metrics_stores() -> None:
    """Forget the metrics Redis stores earlier tests made: one whose Redis is gone (a test of an
    unreachable store) keeps its unsent counts and would try them again in every later flush."""
    for redis_store in list(metrics._redis_stores.values()):
        redis_store.forget_pending()
        redis_store.client.close()
    metrics._redis_stores.clear()


@pytest.fixture(autouse=True)
def db(app: Flask, redis_url: str | None) -> Iterator[Any]:
    """A clean database (and rate-limit store, and Redis) for every test, inside an app context."""
    with app.app_context():
        limiter.reset()
        reset_politeness()  # in-process site back-offs and slots
        site_cache.clear()  # the REST roots and structures remembered between syncs
        _drop_metrics_stores()
        if redis_url:
            import redis

            redis.Redis.from_url(redis_url).flushdb()
        yield _db
        _clean_database()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def factory(db: Any, app: Flask) -> Factory:
    return Factory(app)


class ApiClient:
    """A test client that sends the same headers (a token or an API key) on every request."""

    def __init__(self, client: FlaskClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def open(self, method: str, path: str, **kwargs: Any):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any):
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any):
        return self.open("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any):
        return self.open("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any):
        return self.open("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any):
        return self.open("DELETE", path, **kwargs)


@pytest.fixture
def api_client_for(client: FlaskClient, factory: Factory):
    """``api_client_for(user)`` or ``api_client_for(api_key="...")``."""

    def build(user: Any = None, api_key: str | None = None) -> ApiClient:
        if api_key is not None:
            return ApiClient(client, {"X-API-Key": api_key})
        return ApiClient(client, {"Authorization": f"Bearer {factory.token(user)}"})

    return build


@pytest.fixture
def account(factory: Factory):
    return factory.account()


@pytest.fixture
def editor(factory: Factory, account):
    return factory.user(account, role="editor")


@pytest.fixture
def site(factory: Factory, account):
    return factory.site(account)


@pytest.fixture
def editor_client(api_client_for, editor) -> ApiClient:
    return api_client_for(editor)


@pytest.fixture
def viewer_client(api_client_for, factory: Factory, account) -> ApiClient:
    return api_client_for(factory.user(account, role="viewer"))


@pytest.fixture
def tmp_instance() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)
