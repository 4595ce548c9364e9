"""Celery wired the Flask way (Flask's examples/celery): every task runs inside an app context."""

from __future__ import annotations

from celery import Celery, Task
from flask import Flask, has_app_context


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            # Eager tests already run inside the caller's app context and session.
            if has_app_context():
                return self.run(*args, **kwargs)
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    # Importing the task modules registers their shared_tasks with this app.
    celery_app.autodiscover_tasks(["workers"], related_name="tasks", force=True)
    app.extensions["celery"] = celery_app
    celery_app.flask_app = app  # type: ignore[attr-defined]  # the worker's hooks read its config
    return celery_app
