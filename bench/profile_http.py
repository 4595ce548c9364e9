"""Profile one webhook delivery and one ``sync_status`` poll in-process (Flask test client,
PostgreSQL and Redis of the bench), with py-spy sampling this process:

    python -m bench.profile_http [--requests 500]

Prints, per route: wall and CPU milliseconds per request, SQL statements, Redis commands and
decryptions of stored secrets per request, then py-spy's summary (self time, inclusive time of
the project's functions and of each package). Writes ``bench/results/profile-http-<route>.txt``
(py-spy raw, collapsed stacks) and ``bench/results/profile_http.json``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from . import common
from .common import RESULTS_DIR, VENV_BIN, log, write_result
from .profile_summary import render, summarise


class Counters:
    """SQL statements (by first word), Redis commands and decryptions, while installed."""

    def __init__(self, app: Any) -> None:
        import redis
        from sqlalchemy import event

        from integration_service.crypto import SecretBox
        from integration_service.extensions import db

        self.sql: Counter[str] = Counter()
        self.redis = 0
        self.decrypts = 0
        with app.app_context():
            self.engine = db.engine
        event.listen(self.engine, "before_cursor_execute", self._sql)
        self._redis_original = redis.Redis.execute_command
        self._decrypt_original = SecretBox.decrypt
        counters = self

        def execute_command(client: Any, *args: Any, **kwargs: Any) -> Any:
            counters.redis += 1
            return counters._redis_original(client, *args, **kwargs)

        def decrypt(box: Any, token: str) -> str:
            counters.decrypts += 1
            return counters._decrypt_original(box, token)

        redis.Redis.execute_command = execute_command  # type: ignore[method-assign]
        SecretBox.decrypt = decrypt  # type: ignore[method-assign]

    def _sql(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.sql[statement.split(None, 1)[0].upper()] += 1

    def reset(self) -> None:
        self.sql.clear()
        self.redis = self.decrypts = 0

    def remove(self) -> None:
        import redis
        from sqlalchemy import event

        from integration_service.crypto import SecretBox

        event.remove(self.engine, "before_cursor_execute", self._sql)
        redis.Redis.execute_command = self._redis_original  # type: ignore[method-assign]
        SecretBox.decrypt = self._decrypt_original  # type: ignore[method-assign]


_RAW = ["--format", "raw", "-o"]


def _spy(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "py-spy"),
            "record",
            "--pid",
            str(os.getpid()),
            "--rate",
            "250",
            "--nonblocking",
            *_RAW,
            str(path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    time.sleep(1.0)  # attach before the loop starts
    return proc


def _measure(name: str, counters: Counters, send: Any, count: int) -> dict[str, Any]:
    for i in range(20):  # warm up: compiled statement caches, connections
        send(-1 - i)
    counters.reset()
    path = RESULTS_DIR / f"profile-http-{name}.txt"
    spy = _spy(path)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(count):
        status = send(i)
        if status != 200:
            raise RuntimeError(f"{name}: request {i} answered {status}")
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    spy.send_signal(signal.SIGINT)
    spy.communicate(timeout=60)
    summary = summarise(path, top=20) if path.exists() else None
    result = {
        "requests": count,
        "wall_ms_per_request": 1000 * wall / count,
        "cpu_ms_per_request": 1000 * cpu / count,
        "sql_per_request": {k: v / count for k, v in counters.sql.most_common()},
        "redis_commands_per_request": counters.redis / count,
        "decryptions_per_request": counters.decrypts / count,
        "profile": summary,
    }
    print(f"\n=== {name}: {count} requests in-process (py-spy sampling; the figures include its overhead)")
    sql = ", ".join(f"{k} {v:.1f}" for k, v in result["sql_per_request"].items())
    print(
        f"wall {result['wall_ms_per_request']:.2f} ms, CPU {result['cpu_ms_per_request']:.2f} ms per request; "
        f"SQL {sum(counters.sql.values()) / count:.1f} ({sql}); "
        f"Redis commands {result['redis_commands_per_request']:.1f}; "
        f"decryptions {result['decryptions_per_request']:.1f}"
    )
    if summary:
        print(render(summary))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_http", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args(argv)
    common.install_signal_handlers()

    from . import polling, webhooks

    results: dict[str, Any] = {}
    site = webhooks.setup_data()
    app = common.bench_app()
    client = app.test_client()
    counters = Counters(app)
    try:
        api_key = site["api_key"]
        reqs = webhooks.signed_requests(api_key, args.requests + 40, "profile", start=0)

        def send_webhook(i: int) -> int:
            r = reqs[i]
            return client.post(r.path, data=r.body, headers=r.headers).status_code

        results["webhook"] = _measure("webhook", counters, send_webhook, args.requests)
    finally:
        counters.remove()

    log("polling data")
    tenant, ids = polling.setup_data()
    app = common.bench_app()
    client = app.test_client()
    counters = Counters(app)
    try:

        def send_poll(i: int) -> int:
            path = polling.STATUS_PATH.format(id=ids[i % len(ids)])
            return client.get(path, headers=tenant.auth).status_code

        results["sync_status"] = _measure("sync_status", counters, send_poll, args.requests)
    finally:
        counters.remove()
    write_result("profile_http", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
