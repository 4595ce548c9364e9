"""A second app beside the test app (another broker, the same database), for the paths where the
test app's eager Celery is not what is tested."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask

from config import TestingConfig
from integration_service import create_app
from integration_service.extensions import db


@contextmanager
def side_app(test_app: Flask, overrides: dict[str, Any]) -> Iterator[Flask]:
    """``create_app(TestingConfig, overrides)``; its engine is disposed afterwards."""
    app = create_app(TestingConfig, overrides=overrides)
    # Creating a Celery app makes it the default and current one: give that back to the test
    # app's, or shared-task proxies called by later tests would send to this one's broker.
    test_app.extensions["celery"].set_default()
    test_app.extensions["celery"].set_current()
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
