"""One Alembic history that upgrades an empty PostgreSQL and an empty SQLite database to exactly
the models (the ``flask db check`` equivalent), and downgrades cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from config import normalize_database_url
from integration_service.extensions import db

ROOT = Path(__file__).resolve().parent.parent
OWN_VARIABLES = {"DATABASE_URL", "REDIS_URL", "APP_ENV", "SECRET_KEY", "ENCRYPTION_KEYS", "INSTANCE_PATH"}


def flask_db(database_url: str, instance: Path, *args: str) -> subprocess.CompletedProcess:
    """``flask --app wsgi db ...`` exactly as an operator runs it from the repository root."""
    env = {key: value for key, value in os.environ.items() if key not in OWN_VARIABLES}
    env.update(DATABASE_URL=database_url, INSTANCE_PATH=str(instance), APP_ENV="development")
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def schema_differences(database_url: str) -> list:
    engine = create_engine(normalize_database_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, db.metadata)
    finally:
        engine.dispose()


def table_names(database_url: str) -> set[str]:
    engine = create_engine(normalize_database_url(database_url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    """A throwaway, empty database on the PostgreSQL server the suite runs against."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql")):
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL to a postgresql:// URL")
    server = make_url(normalize_database_url(url))
    name = f"{server.database}_migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def empty_sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'migrations.sqlite'}"


def assert_upgrade_matches_the_models(database_url: str, instance: Path) -> None:
    upgraded = flask_db(database_url, instance, "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    expected_tables = {table.name for table in db.metadata.sorted_tables}
    assert expected_tables <= table_names(database_url)
    assert schema_differences(database_url) == []  # what `flask db check` compares


def assert_downgrade_and_upgrade_again(database_url: str, instance: Path) -> None:
    downgraded = flask_db(database_url, instance, "downgrade", "base")
    assert downgraded.returncode == 0, downgraded.stderr
    assert table_names(database_url) <= {"alembic_version"}
    upgraded = flask_db(database_url, instance, "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert schema_differences(database_url) == []


def test_one_migration_head():
    heads = ScriptDirectory(str(ROOT / "migrations")).get_heads()
    assert len(heads) == 1, f"several Alembic heads, merge them: {heads}"


def test_upgrade_an_empty_postgres_database(empty_postgres, tmp_path):
    assert table_names(empty_postgres) == set()
    assert_upgrade_matches_the_models(empty_postgres, tmp_path)
    assert_downgrade_and_upgrade_again(empty_postgres, tmp_path)


def test_upgrade_an_empty_sqlite_file(empty_sqlite, tmp_path):
    assert_upgrade_matches_the_models(empty_sqlite, tmp_path)
    assert_downgrade_and_upgrade_again(empty_sqlite, tmp_path)


def test_upgrade_with_nothing_set_creates_the_database_under_the_instance_dir(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in OWN_VARIABLES}
    env.update(INSTANCE_PATH=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    database = tmp_path / "integration_service.sqlite"
    assert database.exists()
    assert schema_differences(f"sqlite:///{database}") == []
