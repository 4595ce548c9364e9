"""Running the developer scripts (scripts/dev.sh, the README's commands) as a user's terminal would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]


def user_env(**extra: str) -> dict[str, str]:
    """This environment as a developer's terminal has it: no CI switches, no test settings, no
    database or broker exported (those come from the .env the caller names with ENV_FILE)."""
    drop = ("TEST_", "PYTEST_", "REQUIRE_E2E", "SKIP_", "DATABASE_URL", "REDIS_URL", "FLASK_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, **extra}


def start_dev_sh(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            ["bash", "scripts/dev.sh", *args], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def wait_for_url(url: str, process: subprocess.Popen, log_path: Path, timeout: float = 120) -> None:
    """Until ``url`` answers 2xx; fails with the log's tail when ``process`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).ok:
                return
        assert time.monotonic() < deadline, f"{url} did not answer:\n" + log_path.read_text(errors="replace")[-3000:]
        time.sleep(0.3)


def stop_dev_sh(process: subprocess.Popen) -> None:
    """SIGTERM to dev.sh, which stops the servers it started (each in its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
