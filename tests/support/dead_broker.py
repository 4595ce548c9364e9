"""An app like the test app, on the same database, whose broker is gone: for the paths that must
answer (or move on) when a task cannot be sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask

from config import TestingConfig
from tests.support.side_app import side_app


@contextmanager
def dead_broker_app(test_app: Flask, database_url: str, **config: Any) -> Iterator[Flask]:
    overrides: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "CELERY": {
            **TestingConfig.CELERY,
            "broker_url": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "task_always_eager": False,
            "broker_connection_timeout": 1,
        },
        **config,
    }
    if database_url.startswith("sqlite"):
        overrides["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    with side_app(test_app, overrides) as broken:
        yield broken
