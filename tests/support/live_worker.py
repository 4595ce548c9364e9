"""Real Celery processes for tests: a worker or beat started as ``celery -A celery_app`` in its own
process group on the test database and Redis, a test-side app whose Celery really sends to Redis,
and the check that those services are there (tests/integration, tests/e2e, tests/workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask

from config import celery_settings
from tests.support.side_app import side_app

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKER_READY_TIMEOUT = 60


def services_unavailable_reason() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "postgresql+psycopg://")):
        return "TEST_DATABASE_URL is not a PostgreSQL URL"
    if not os.environ.get("TEST_REDIS_URL"):
        return "TEST_REDIS_URL is not set"
    return None


def require_services(what: str) -> None:
    """Skip (fail under REQUIRE_E2E, as in CI) unless PostgreSQL and Redis are configured."""
    reason = services_unavailable_reason()
    if reason:
        if os.environ.get("REQUIRE_E2E"):
            pytest.fail(f"{what} need PostgreSQL and Redis: {reason}")
        pytest.skip(f"{what} skipped: {reason}")


class Worker:
    """One worker process (its own process group, so SIGKILL reaches the pool children too)."""

    def __init__(self, process: subprocess.Popen, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = WORKER_READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"the worker did not become ready in {timeout:.0f} s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children): no chance to clean up."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def spawn_celery(
    app: Flask, database_url: str, redis_url: str, tmp_path: Path, log_name: str, args: list[str], **extra_env: str
) -> Worker:
    """``celery -A celery_app <args>`` in its own process group, on the test database and Redis."""
    log_path = tmp_path / log_name
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": app.config["SECRET_KEY"],
        "ENCRYPTION_KEYS": app.config["ENCRYPTION_KEYS"],
        "ALLOW_PRIVATE_TARGETS": "1",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    command = [sys.executable, "-m", "celery", "-A", "celery_app", *args]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Worker(process, log_path)


def start_workers(
    app: Flask, database_url: str, redis_url: str, tmp_path: Path, name: str, **base_env: str
) -> tuple[list[Worker], Callable[..., Worker]]:
    """The list of started workers and ``start(**env)``: a real worker on the queues sync and
    short, ready when it returns (the fixtures stop or kill the list after the test)."""
    workers: list[Worker] = []

    def start(**extra_env: str) -> Worker:
        args = [
            "worker", "-Q", "sync,short", "--concurrency=2", "--loglevel=INFO",
            "-n", f"{name}-{uuid.uuid4().hex[:8]}@%h", "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        env = {**base_env, **extra_env}
        worker = spawn_celery(app, database_url, redis_url, tmp_path, f"worker-{len(workers)}.log", args, **env)
        workers.append(worker)
        worker.wait_ready()
        return worker

    return workers, start


@contextmanager
def live_celery_app(app: Flask, database_url: str, broker_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app like the test app ``app`` but whose Celery really sends to ``broker_url`` (not eager)."""
    celery_config = {**celery_settings(broker_url, tmp_path), "task_always_eager": False}
    with side_app(app, {"SQLALCHEMY_DATABASE_URI": database_url, "CELERY": celery_config}) as live:
        yield live
