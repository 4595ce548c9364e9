"""gunicorn settings of the service (``gunicorn -c gunicorn.conf.py wsgi:app``).

Command-line flags override these (scripts/dev.sh and the tests pass --bind and --workers).
Every value can also be set with the environment variable named beside it.
"""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = _int("WEB_WORKERS", 4)
accesslog = "-"

# A worker silent for `timeout` seconds is killed and its client gets no answer from the app.
# The slowest synchronous request is the connection test (several WordPress round trips); its
# own deadline (CONNECTION_TEST_DEADLINE_SECONDS, 15 s by default) must stay well below this.
timeout = _int("GUNICORN_TIMEOUT", 30)
# On SIGTERM (a deploy), requests in flight get this long to finish before workers are killed.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
