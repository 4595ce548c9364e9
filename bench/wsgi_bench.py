"""The service's WSGI app plus one bench-only route, ``GET /bench/trivial``, and the floor app
(``bench/floor.py``) mounted under ``/floor``.

The trivial route is the baseline of the HTTP benchmarks: it runs through the same gunicorn, the
same Flask app and the same before/after-request hooks (request id, principal loading, limiter),
but does no database work. It lives here, not in the service, so production never exposes it.
The floor app does the essential database work of a webhook and a poll without the service's
stack; requests under ``/floor`` never reach the service's hooks.

    gunicorn bench.wsgi_bench:app
"""

from __future__ import annotations

import os

from flask import jsonify
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from bench import floor
from integration_service import create_app

# Rate limits that config.py does not read from the environment are passed in here, so the load
# generators measure throughput rather than a per-minute policy. The limiter itself stays on.
_OVERRIDES = {key: os.environ[key] for key in ("RATELIMIT_WEBHOOKS",) if os.environ.get(key)}

service_app = create_app(overrides=_OVERRIDES)


@service_app.get("/bench/trivial")
def trivial():
    return jsonify({"ok": True})


app = DispatcherMiddleware(service_app, {"/floor": floor.app})
