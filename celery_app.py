"""Celery worker entry point: ``celery -A celery_app worker``.

Without ``-Q`` a worker consumes every queue the service uses (``config.SERVICE_QUEUES``), on the
threads pool with WORKER_CONCURRENCY tasks at once (default 200 with Redis): syncs wait on
WordPress, not the CPU. ``--pool prefork`` and ``-Q`` remain for a split layout (README,
"Running workers").
"""

import os
import sys


def _concurrency_from_argv(argv: list[str]) -> str | None:
    """``-c N`` / ``--concurrency[=]N`` of a worker command line: the database pool is sized from
    the concurrency when the app is created, before Celery parses its options."""
    for index, arg in enumerate(argv):
        if arg in ("-c", "--concurrency") and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--concurrency="):
            return arg.split("=", 1)[1]
        if arg.startswith("-c") and arg[2:].isdigit():
            return arg[2:]
    return None


if "worker" in sys.argv and not os.environ.get("WORKER_CONCURRENCY"):
    _given = _concurrency_from_argv(sys.argv)
    if _given and _given.isdigit():
        os.environ["WORKER_CONCURRENCY"] = _given

from integration_service import create_app  # noqa: E402 - after the concurrency is known

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
app = celery_app
