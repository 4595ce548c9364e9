"""The service under test as real processes, for end-to-end tests that a real WordPress calls.

    server = ServiceServer(database_url, redis_url, secret_key=..., encryption_keys=...)
    server.start()            # gunicorn on http://127.0.0.1:<free port> + a Celery worker
    server.stop_web()         # an outage: the web process stops, the worker keeps running
    server.start_web()        # back on the same port
    server.stop()

Both processes read the same database and Redis as the test process, with its SECRET_KEY and
ENCRYPTION_KEYS, so rows the tests create with factories (committed) are what the service sees,
and a token or API key the tests hold works against it. Their output goes to log files whose
tail is shown when a start fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ServiceServer:
    def __init__(
        self,
        database_url: str,
        redis_url: str,
        *,
        secret_key: str,
        encryption_keys: str,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
        threads: int = 4,
    ) -> None:
        self.port = port or free_port()
        # 1 runs gunicorn's sync worker, the one its `timeout` kills when a request outlives it.
        self.threads = threads
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = Path(tempfile.mkdtemp(prefix="igny8-e2e-service-"))
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self._log_files: list = []
        self.env = {
            **{key: value for key, value in os.environ.items() if not key.startswith(("TEST_", "PYTEST_"))},
            "APP_ENV": "development",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secret_key,
            "ENCRYPTION_KEYS": encryption_keys,
            "ALLOW_PRIVATE_TARGETS": "1",
            "INSTANCE_PATH": str(self.log_dir / "instance"),
            # Every onboarding of the suite comes from 127.0.0.1: the per-IP limit must not bite.
            "RATELIMIT_ONBOARDING_IP": "1000/minute",
            "RATELIMIT_ONBOARDING_SITE": "1000/minute",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "GUNICORN_GRACEFUL_TIMEOUT": "5",  # stop() should not wait 30 s for a stalled request
            **(extra_env or {}),
        }

    # -- processes ---------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._log_files.append(log)
        return subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends gunicorn's workers too
        )

    def start(self) -> ServiceServer:
        self.start_worker()
        self.start_web()
        return self

    def start_web(self) -> None:
        self.web = self._spawn(
            "web",
            [
                sys.executable, "-m", "gunicorn",
                # The repository's settings (timeouts, limits), as in production; the
                # environment (GUNICORN_TIMEOUT, ...) and the flags below adapt them.
                "--config", str(REPO_ROOT / "gunicorn.conf.py"),
                "--bind", f"127.0.0.1:{self.port}",
                "--workers", "2",
                "--threads", str(self.threads),
                "--access-logfile", "-",
                "wsgi:app",
            ],
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise RuntimeError(
                    f"the service exited (code {self.web.returncode}):\n{_tail(self.log_dir / 'web.log')}"
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(
            f"the service did not answer /healthz in {START_TIMEOUT:.0f} s:\n{_tail(self.log_dir / 'web.log')}"
        )

    def start_worker(self) -> None:
        log = self.log_dir / "worker.log"
        self.worker = self._spawn(
            "worker",
            [
                sys.executable, "-m", "celery", "-A", "celery_app", "worker",
                "--queues", "sync,short",
                "--pool", "threads",
                "--concurrency", "2",
                "--loglevel", "INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--hostname", f"e2e-{self.port}@%h",
            ],
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.worker.poll() is not None:
                raise RuntimeError(f"the worker exited (code {self.worker.returncode}):\n{_tail(log)}")
            if " ready." in log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the worker was not ready in {START_TIMEOUT:.0f} s:\n{_tail(log)}")

    @staticmethod
    def _terminate(process: subprocess.Popen | None) -> None:
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def stop_web(self) -> None:
        self._terminate(self.web)
        self.web = None

    def stop(self) -> None:
        self.stop_web()
        self._terminate(self.worker)
        self.worker = None
        for log in self._log_files:
            log.close()
        self._log_files.clear()

    def logs(self) -> str:
        return "\n".join(f"--- {name}.log ---\n{_tail(self.log_dir / f'{name}.log', 60)}" for name in ("web", "worker"))
