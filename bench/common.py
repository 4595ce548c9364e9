"""Shared plumbing for the benchmarks: processes, the bench database, tables and result files.

Every process a benchmark starts is registered here and stopped (its whole process group) when
the benchmark ends, when the run is interrupted and at interpreter exit, so a run never leaves a
gunicorn, Celery worker or load generator behind.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import requests

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
LOG_DIR = RESULTS_DIR / "logs"
VENV_BIN = Path(sys.executable).parent

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DB_NAME = os.environ.get("BENCH_DB_NAME", "bench_db")
BENCH_DATABASE_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + BENCH_DB_NAME
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "4"))
WORKER_CONCURRENCY = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "2"))
RUN_MODE = {"quick": None}  # set by bench.run; recorded in every result file


# ---------------------------------------------------------------------------------------------
# output


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    out = [f"\n{title}", line, "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |", line]
    for row in cells:
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    out.append(line)
    return "\n".join(out)


CPU_PER_REQUEST_HEADERS = ["route", "machine busy %", "CPU ms per request"]


def cpu_per_request_rows(runs: Sequence[tuple[str, dict[str, Any]]]) -> list[list[Any]]:
    """Rows of the "CPU milliseconds per answered request" table (sustained HTTP runs), by process."""
    return [
        [
            label,
            run.get("machine_busy_pct"),
            ", ".join(f"{k} {v:.2f}" for k, v in (run.get("cpu_ms_per_request") or {}).items() if v >= 0.01),
        ]
        for label, run in runs
    ]


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    print(render_table(title, headers, rows), flush=True)


def machine_info() -> dict[str, Any]:
    cpu_model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        # The machine may be shared: the load average says how busy it was around the run.
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "benchmark": name,
        "quick": RUN_MODE["quick"],
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": machine_info(),
        **data,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    log(f"wrote {path.relative_to(REPO_ROOT)}")
    return path


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


# ---------------------------------------------------------------------------------------------
# processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """TERM the process group (the process was started in its own session), then KILL."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        # Children that outlived their parent are still in the group (same pgid).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        _RUNNING.discard(self)

    def __hash__(self) -> int:
        return id(self)


_RUNNING: set[Proc] = set()


def stop_all() -> None:
    for proc in list(_RUNNING):
        proc.stop(timeout=5)


atexit.register(stop_all)


def _on_signal(signum: int, _frame: Any) -> None:
    stop_all()
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)


def start_process(name: str, cmd: Sequence[str], env: dict[str, str] | None = None) -> Proc:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{name}.log"
    handle = log_path.open("w")
    popen = subprocess.Popen(
        list(cmd),
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # own process group: stop() ends it and all its children
    )
    handle.close()
    proc = Proc(name, popen, log_path)
    _RUNNING.add(proc)
    return proc


@contextlib.contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    try:
        yield proc
    finally:
        proc.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.1, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited while waiting for {what}:\n{proc.tail()}")
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(interval)
    tail = f"\n{proc.tail()}" if proc is not None else ""
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")


def tree_rss(pid: int) -> tuple[int, int]:
    """(sum of RSS over the process and its descendants, largest RSS among the descendants), in
    bytes. For a Celery worker the descendants are the pool processes, one of which runs the job
    (the master, usually the largest process, only dispatches)."""
    try:
        root = psutil.Process(pid)
        children = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0
    total = biggest = 0
    for p in [root, *children]:
        with contextlib.suppress(psutil.Error):
            rss = p.memory_info().rss
            total += rss
            if p is not root:
                biggest = max(biggest, rss)
    return total, biggest


class CpuMeter:
    """CPU seconds used during a phase, split by who used them: the WordPress PHP workers,
    MariaDB, the bench database's PostgreSQL backends, the Celery worker, gunicorn, this bench
    process (the raw and naive clients, the poller) and the rest of the machine (other work on
    a shared box). Sampled every ``interval`` seconds, so short-lived processes are counted up to
    their last sample."""

    def __init__(self, wp_port: int | None = None, roots: dict[str, int] | None = None, interval: float = 0.5):
        self.wp_port = wp_port
        self.roots = roots or {}
        self.interval = interval
        self._seen: dict[int, tuple[str, float, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _category(self, proc: psutil.Process, tree: dict[int, str]) -> str | None:
        if proc.pid in tree:
            return tree[proc.pid]
        if proc.pid == os.getpid():
            return "bench process"
        name = proc.info.get("name") or ""
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if name == "php" and self.wp_port and f"-S 127.0.0.1:{self.wp_port} " in cmdline + " ":
            return "wordpress (php -S)"
        if name in ("mariadbd", "mysqld"):
            return "mariadb"
        if name == "postgres" and BENCH_DB_NAME in cmdline:
            return "postgresql (bench_db)"
        if name == "postgres" and any(w in cmdline for w in ("walwriter", "checkpointer", "background writer")):
            return "postgresql (wal, checkpoints)"
        if name == "redis-server":
            return "redis"
        if name == "wrk":
            return "load generator (wrk)"
        return None

    def _tick(self, first: bool) -> None:
        tree: dict[int, str] = {}
        for label, pid in self.roots.items():
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(pid)
                for p in [root, *root.children(recursive=True)]:
                    tree[p.pid] = label
        for proc in psutil.process_iter(["name", "cmdline", "cpu_times"]):
            times = proc.info.get("cpu_times")
            if times is None:
                continue
            used = times.user + times.system
            known = self._seen.get(proc.pid)
            if known is not None:
                self._seen[proc.pid] = (known[0], known[1], used)
                continue
            category = self._category(proc, tree)
            if category is not None:
                # A process alive at the start counts from then; one born later counts from zero.
                self._seen[proc.pid] = (category, used if first else 0.0, used)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):
                self._tick(first=False)

    def __enter__(self) -> CpuMeter:
        self._machine0 = psutil.cpu_times()
        self._t0 = time.monotonic()
        self._tick(first=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with contextlib.suppress(Exception):
            self._tick(first=False)
        self.wall = time.monotonic() - self._t0
        machine1 = psutil.cpu_times()
        busy = (sum(machine1) - machine1.idle - getattr(machine1, "iowait", 0)) - (
            sum(self._machine0) - self._machine0.idle - getattr(self._machine0, "iowait", 0)
        )
        self.by_category: dict[str, float] = {}
        for category, start, last in self._seen.values():
            self.by_category[category] = self.by_category.get(category, 0.0) + max(0.0, last - start)
        self.by_category["rest of the machine"] = max(0.0, busy - sum(self.by_category.values()))
        self.machine_busy = busy

    def summary(self) -> dict[str, Any]:
        ncpu = os.cpu_count() or 1
        return {
            "wall_s": self.wall,
            "cpu_s": {k: round(v, 2) for k, v in sorted(self.by_category.items(), key=lambda kv: -kv[1])},
            "machine_busy_pct": round(100.0 * self.machine_busy / (self.wall * ncpu), 1) if self.wall else None,
        }


# ---------------------------------------------------------------------------------------------
# the service under test


def service_env(**extra: str) -> dict[str, str]:
    env = {
        "APP_ENV": "development",
        "DATABASE_URL": BENCH_DATABASE_URL,
        "REDIS_URL": BENCH_REDIS_URL,
        "ALLOW_PRIVATE_TARGETS": "1",
        # The limiter stays on (its cost is part of every request) with a ceiling the load
        # generators never reach: the benchmarks measure throughput, not the 300/minute policy.
        "RATELIMIT_INTEGRATION": "10000000/minute",
        "RATELIMIT_AUTH": "10000000/minute",
        "RATELIMIT_WEBHOOKS": "10000000/minute",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def _recreate_empty_database() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB_NAME}"')


def _missing_columns() -> list[str]:
    """Model columns that the migrated schema lacks (a model changed before its migration)."""
    from integration_service.extensions import db

    bench_app()  # imports the models into db.metadata
    with pg_connect() as conn:
        present = {
            (t, c)
            for t, c in conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
            ).fetchall()
        }
    return [
        f"{t.name}.{c.name}" for t in db.metadata.sorted_tables for c in t.columns if (t.name, c.name) not in present
    ]


def reset_database() -> None:
    """Drop and recreate bench_db and build the schema with the project's migrations; when the
    migrations lag behind the models (other work in progress), build it from the models."""
    _recreate_empty_database()
    result = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=REPO_ROOT,
        env={**os.environ, **service_env()},
        capture_output=True,
        text=True,
        check=False,
    )
    missing = _missing_columns() if result.returncode == 0 else ["(flask db upgrade failed)"]
    if missing:
        log(f"migrations lag behind the models ({', '.join(missing[:5])}): schema built with db.create_all()")
        from integration_service.extensions import db

        _recreate_empty_database()
        app = bench_app()
        with app.app_context():
            db.create_all()


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(BENCH_REDIS_URL).flushdb()


def pg_connect() -> Any:
    import psycopg

    return psycopg.connect(BENCH_DATABASE_URL)


def settle_database() -> None:
    """VACUUM, ANALYZE and CHECKPOINT the bench database after a phase that wrote many rows
    (loading the data, a sustained run of webhook deliveries), so that the autovacuum and the
    checkpoint that writing makes due do not land in the middle of the next measured phase (a
    table just given 100k rows is due within autovacuum's one-minute nap), and the planner has
    statistics, as on a live database."""
    import psycopg

    with psycopg.connect(BENCH_DATABASE_URL, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def start_gunicorn(name: str = "gunicorn", workers: int = WEB_WORKERS, port: int | None = None) -> tuple[Proc, str]:
    port = port or free_port()
    proc = start_process(
        name,
        [
            str(VENV_BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--backlog",
            "2048",
            "bench.wsgi_bench:app",
        ],
        env=service_env(),
    )
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(f"{base}/bench/trivial", timeout=2).status_code == 200, 60, "gunicorn", proc=proc)
    return proc, base


def start_worker(
    name: str = "celery-worker", concurrency: int = WORKER_CONCURRENCY, env: dict[str, str] | None = None
) -> Proc:
    proc = start_process(
        name,
        [
            str(VENV_BIN / "celery"),
            "-A",
            "celery_app",
            "worker",
            "-Q",
            "sync,short",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"bench-{name}@%h",
        ],
        env=service_env(**(env or {})),
    )
    wait_until(lambda: " ready." in proc.log_path.read_text(errors="replace"), 90, "the Celery worker", proc=proc)
    return proc


@dataclass
class Tenant:
    """An account with an owner token, and sites with their plain API keys."""

    account_id: int
    token: str
    sites: list[dict[str, Any]] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def bench_app() -> Any:
    """The service's Flask app bound to the bench database (in this process)."""
    saved = {k: os.environ.get(k) for k in service_env()}
    os.environ.update(service_env())
    try:
        from integration_service import create_app

        return create_app()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def create_tenant(app: Any, site_urls: Sequence[str], name: str = "bench") -> Tenant:
    from integration_service.auth import hash_password, issue_access_token
    from integration_service.extensions import db
    from integration_service.models import Account, User
    from integration_service.services.accounts import create_site

    with app.app_context():
        account = Account(name=name)
        db.session.add(account)
        db.session.flush()
        user = User(
            account_id=account.id,
            email=f"{name}-{account.id}@bench.invalid",
            password_hash=hash_password("bench-password-not-secret"),
            role="owner",
        )
        db.session.add(user)
        sites = []
        for i, url in enumerate(site_urls):
            sites.append(create_site(account.id, f"{name} site {i}", url))
        db.session.commit()
        token, _ttl = issue_access_token(user)
        return Tenant(
            account_id=account.id,
            token=token,
            sites=[{"id": s.id, "url": s.url, "api_key": k} for s, k in sites],
        )
