"""gunicorn settings of the service (``gunicorn -c gunicorn.conf.py wsgi:app``).

Command-line flags override these (scripts/dev.sh and the tests pass --bind and --workers).
Every value can also be set with the environment variable named beside it.
"""

from __future__ import annotations

import json
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = _int("WEB_WORKERS", 4)
accesslog = "-"

# -- timeouts ---------------------------------------------------------------------------------
# A worker silent for `timeout` seconds is killed and its client gets no answer from the app.
# The slowest synchronous request is the connection test (several WordPress round trips); its
# own deadline (CONNECTION_TEST_DEADLINE_SECONDS, 15 s by default) must stay well below this.
timeout = _int("GUNICORN_TIMEOUT", 30)
# On SIGTERM (a deploy), requests in flight get this long to finish before workers are killed.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# -- request limits -----------------------------------------------------------------------------
# Chosen so that every realistic request reaches the app, which answers it in the contract's
# envelope (a bad key is a 401, a bad query parameter a 400), and only absurd ones stop here:
# * request line (method + path + query): 8190 bytes, gunicorn's maximum short of unlimited.
#   Our longest legitimate URL is a list call with a few filters (< 300 bytes).
# * one header: 16 KiB. API keys are ~50 characters and access tokens ~300, but a client that
#   sends a 10 kB garbage X-API-Key must get the app's 401, not a 431 from here.
# * header count: 100 (gunicorn's default; browsers and proxies send ~20).
# The body is capped by the app (MAX_CONTENT_LENGTH, 413 in the envelope), not here.
limit_request_line = _int("GUNICORN_LIMIT_REQUEST_LINE", 8190)
limit_request_field_size = _int("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", 16 * 1024)
limit_request_fields = _int("GUNICORN_LIMIT_REQUEST_FIELDS", 100)

_ERROR_CODES = {400: "validation_error", 403: "permission_denied", 414: "uri_too_long", 431: "header_too_large"}


def _write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answers (past the limits above, or an unparsable request) in the
    contract's envelope instead of its HTML page. The request never reached the app, so it has
    no request id."""
    from gunicorn import util

    code = _ERROR_CODES.get(status_int, "internal_error" if status_int >= 500 else "bad_request")
    body = json.dumps({"error": {"code": code, "message": reason, "details": {}}, "request_id": None}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin1")
    util.write_nonblock(sock, head + body)


def post_worker_init(worker) -> None:
    # The workers write their parse errors through gunicorn.util.write_error.
    from gunicorn import util

    util.write_error = _write_json_error
