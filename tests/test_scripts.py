"""The developer scripts as a new user runs them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.service_server import free_port
from tests.support import wordpress
from tests.support.dev_script import REPO_ROOT, start_dev_sh, stop_dev_sh, user_env, wait_for_url


def test_skip_services_means_no_wordpress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SKIP_WORDPRESS", raising=False)
    monkeypatch.setenv("SKIP_SERVICES", "1")
    assert "SKIP_SERVICES" in (wordpress.wordpress_unavailable_reason() or "")


def test_the_sqlite_run_touches_no_wordpress() -> None:
    """``TEST_BACKEND=sqlite scripts/test.sh``: every end-to-end test skips with a reason, even
    when a WordPress from an earlier full run (as in CI, where this test runs) still answers."""
    proc = subprocess.run(
        ["bash", "scripts/test.sh", "tests/e2e", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT,
        env=user_env(TEST_BACKEND="sqlite"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    summary = output.strip().splitlines()[-1]
    assert "skipped" in summary and "passed" not in summary and "failed" not in summary, output[-3000:]
    assert "SKIP_SERVICES is set" in output or "SKIP_WORDPRESS is set" in output


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_dev_sh_exits_at_once_when_its_port_is_taken(tmp_path: Path) -> None:
    """A second ``scripts/dev.sh``: a clear message and exit 1 before any worker joins the broker."""
    with _listening_socket() as taken:
        port = taken.getsockname()[1]
        env = user_env(PORT=str(port), INSTANCE_PATH=str(tmp_path / "instance"), ENV_FILE=str(tmp_path / ".env"))
        proc = subprocess.run(
            ["bash", "scripts/dev.sh"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"port {port} is already in use" in proc.stderr
    assert "celery" not in (proc.stdout + proc.stderr).lower()
    assert not (tmp_path / "instance").exists()  # nothing started: no database, no broker file


def test_dev_sh_flower_with_redis_shares_one_configuration(tmp_path: Path) -> None:
    """``scripts/dev.sh --flower`` (implies ``--redis``): web, worker, a beat process and Flower;
    the REDIS_URL it used is saved in .env, and a CLI with no exports at all reads the same .env,
    so a token it issues works against the running web app."""
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        if os.environ.get("REQUIRE_E2E"):
            pytest.fail("needs Redis: TEST_REDIS_URL is not set")
        pytest.skip("needs Redis: TEST_REDIS_URL is not set")
    port, flower_port = free_port(), free_port()
    env_file = tmp_path / ".env"
    env_file.write_text(f"DATABASE_URL=sqlite:///{tmp_path / 'dev.sqlite'}\nPORT={port}\n")
    base_env = user_env(ENV_FILE=str(env_file), INSTANCE_PATH=str(tmp_path / "instance"))
    log_path = tmp_path / "dev.log"
    env = {**base_env, "REDIS_URL": redis_url, "FLOWER_PORT": str(flower_port)}
    process = start_dev_sh(["--flower"], env, log_path)
    try:
        wait_for_url(f"http://127.0.0.1:{port}/healthz", process, log_path)
        wait_for_url(f"http://127.0.0.1:{flower_port}/healthcheck", process, log_path)
        assert f"REDIS_URL={redis_url}" in env_file.read_text()
        cli_env = {**base_env, "FLASK_SKIP_DOTENV": "1"}  # only config.py reads .env here
        account = _cli(cli_env, "accounts", "create", "--name", "Dev")["id"]
        _cli(cli_env, "users", "create", "--account", str(account), "--email", "dev@example.com",
             "--password", "dev-password-1", "--role", "owner")  # fmt: skip
        token = _cli(cli_env, "tokens", "issue", "--email", "dev@example.com")["access_token"]
        response = requests.get(
            f"http://127.0.0.1:{port}/api/v1/integration/integrations/",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + 30
        while "beat: Starting..." not in log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-3000:]
            time.sleep(0.3)
    finally:
        stop_dev_sh(process)
    assert process.returncode is not None


def _cli(env: dict[str, str], *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)
