"""Configuration from the environment: embedded defaults, PostgreSQL/Redis switches, and a
production config that refuses the development secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from config import (
    DEV_ENCRYPTION_KEY,
    DEV_SECRET_KEY,
    ProductionConfig,
    TestingConfig,
    celery_settings,
    config_from_environment,
    normalize_database_url,
)
from integration_service import create_app

ROOT = Path(__file__).resolve().parent.parent
GOOD_SECRET = "k" * 48
OWN_VARIABLES = {"DATABASE_URL", "REDIS_URL", "APP_ENV", "SECRET_KEY", "ENCRYPTION_KEYS", "INSTANCE_PATH"}


def run_python(code: str, tmp_path: Path, **env_vars: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter: config.py reads the environment at import time."""
    env = {key: value for key, value in os.environ.items() if key not in OWN_VARIABLES}
    env.update(INSTANCE_PATH=str(tmp_path), **env_vars)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


SHOW_CONFIG = """
import json, config
c = config.config_from_environment()
print(json.dumps({"name": c.ENV_NAME, "db": c.SQLALCHEMY_DATABASE_URI, "broker": c.CELERY["broker_url"],
                  "backend": c.CELERY["result_backend"], "limits": c.RATELIMIT_STORAGE_URI,
                  "secret": c.SECRET_KEY, "keys": c.ENCRYPTION_KEYS}))
"""


def test_nothing_set_runs_embedded_under_the_instance_dir(tmp_path):
    result = run_python(SHOW_CONFIG, tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["name"] == "development"
    assert shown["db"] == f"sqlite:///{tmp_path / 'integration_service.sqlite'}"
    assert shown["broker"] == f"sqla+sqlite:///{tmp_path / 'celery-broker.sqlite'}"
    assert shown["backend"] == f"db+sqlite:///{tmp_path / 'celery-results.sqlite'}"
    assert shown["limits"] == "memory://"
    assert shown["secret"] == DEV_SECRET_KEY and shown["keys"] == DEV_ENCRYPTION_KEY


def test_database_url_and_redis_url_switch_to_postgres_and_redis(tmp_path):
    result = run_python(
        SHOW_CONFIG, tmp_path, DATABASE_URL="postgres://app@db.internal/service", REDIS_URL="redis://cache:6379/2"
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["db"] == "postgresql+psycopg://app@db.internal/service"
    assert shown["broker"] == shown["backend"] == shown["limits"] == "redis://cache:6379/2"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:///x.sqlite", "sqlite:///x.sqlite"),
    ],
)
def test_normalize_database_url(url, expected):
    assert normalize_database_url(url) == expected


def test_celery_settings_route_syncs_to_their_own_queue(tmp_path):
    settings = celery_settings(None, tmp_path)
    assert settings["task_routes"]["integration.sync"] == {"queue": "sync"}
    assert settings["task_default_queue"] == "short"
    assert settings["worker_send_task_events"] is True and settings["task_send_sent_event"] is True
    assert settings["accept_content"] == ["json"]
    assert celery_settings("redis://r:6379/0", tmp_path)["broker_url"] == "redis://r:6379/0"


def test_task_events_can_be_turned_off_where_nobody_watches_flower(tmp_path, monkeypatch):
    monkeypatch.setenv("CELERY_TASK_EVENTS", "0")
    settings = celery_settings("redis://r:6379/0", tmp_path)
    assert settings["worker_send_task_events"] is False and settings["task_send_sent_event"] is False


def test_redis_broker_sweeps_for_dead_workers_jobs_within_the_visibility_timeout(tmp_path, monkeypatch):
    options = celery_settings("redis://r:6379/0", tmp_path)["broker_transport_options"]
    assert options["visibility_timeout"] == 3600
    # Every sweep scans (kombu's default throttle scans on every 10th, 100 s apart).
    assert options["unacked_restore_throttle"] == 1 and options["unacked_restore_interval"] == 10
    monkeypatch.setenv("CELERY_VISIBILITY_TIMEOUT", "2")
    options = celery_settings("redis://r:6379/0", tmp_path)["broker_transport_options"]
    assert options["visibility_timeout"] == 2 and options["unacked_restore_interval"] == 2


def test_testing_config_runs_tasks_eagerly():
    assert TestingConfig.CELERY["task_always_eager"] is True
    assert TestingConfig.CELERY["broker_url"] == "memory://"


def test_unknown_app_env_is_refused(monkeypatch):
    monkeypatch.setenv("APP_ENV", "staging")
    with pytest.raises(RuntimeError, match="APP_ENV"):
        config_from_environment()
    monkeypatch.setenv("APP_ENV", "Production")
    assert config_from_environment() is ProductionConfig


# --- production refuses development secrets ----------------------------------------------------


def production(secret_key: str, encryption_keys: str) -> type[ProductionConfig]:
    return type("Prod", (ProductionConfig,), {"SECRET_KEY": secret_key, "ENCRYPTION_KEYS": encryption_keys})


@pytest.mark.parametrize(
    ("secret_key", "encryption_keys", "problem"),
    [
        (DEV_SECRET_KEY, None, "SECRET_KEY"),
        ("too-short", None, "SECRET_KEY"),
        ("", None, "SECRET_KEY"),
        (GOOD_SECRET, DEV_ENCRYPTION_KEY, "ENCRYPTION_KEYS"),
        (GOOD_SECRET, f"{{new}},{DEV_ENCRYPTION_KEY}", "ENCRYPTION_KEYS"),
        (GOOD_SECRET, "", "ENCRYPTION_KEYS"),
    ],
)
def test_production_validate_refuses_development_secrets(secret_key, encryption_keys, problem):
    new = Fernet.generate_key().decode()
    keys = new if encryption_keys is None else encryption_keys.replace("{new}", new)
    with pytest.raises(RuntimeError, match=problem):
        production(secret_key, keys).validate()


def test_production_validate_accepts_real_secrets():
    production(GOOD_SECRET, f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}").validate()


def test_create_app_refuses_production_with_development_secrets():
    with pytest.raises(RuntimeError, match="Refusing to start in production"):
        create_app(production(DEV_SECRET_KEY, DEV_ENCRYPTION_KEY))


def test_create_app_validates_the_effective_settings_overrides_included():
    good = production(GOOD_SECRET, Fernet.generate_key().decode())
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(good, overrides={"SECRET_KEY": DEV_SECRET_KEY})
    with pytest.raises(RuntimeError, match="ENCRYPTION_KEYS"):
        create_app(good, overrides={"ENCRYPTION_KEYS": DEV_ENCRYPTION_KEY})


START_APP = "from integration_service import create_app; print(create_app().config['ENV_NAME'])"


def test_production_process_refuses_to_start_without_its_secrets(tmp_path):
    result = run_python(START_APP, tmp_path, APP_ENV="production", DATABASE_URL=f"sqlite:///{tmp_path / 'p.sqlite'}")
    assert result.returncode != 0
    assert "Refusing to start in production" in result.stderr
    assert "SECRET_KEY" in result.stderr and "ENCRYPTION_KEYS" in result.stderr


def test_production_process_starts_with_its_secrets(tmp_path):
    result = run_python(
        START_APP,
        tmp_path,
        APP_ENV="production",
        DATABASE_URL=f"sqlite:///{tmp_path / 'p.sqlite'}",
        SECRET_KEY=GOOD_SECRET,
        ENCRYPTION_KEYS=Fernet.generate_key().decode(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "production"


def test_proxy_fix_trusts_the_configured_number_of_proxies():
    from config import TestingConfig
    from integration_service import create_app

    app = create_app(TestingConfig, overrides={"PROXY_FIX_HOPS": 1, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    seen = {}

    @app.get("/whoami")
    def whoami():
        from flask import request

        seen["remote"] = request.remote_addr
        seen["scheme"] = request.scheme
        return "ok"

    app.test_client().get("/whoami", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
    assert seen == {"remote": "203.0.113.9", "scheme": "https"}
