"""Celery worker entry point: ``celery -A celery_app worker``."""

from integration_service import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
app = celery_app
