"""The developer scripts as a new user runs them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import wordpress

REPO_ROOT = Path(__file__).resolve().parents[1]


def _user_env(**extra: str) -> dict[str, str]:
    """This environment as a developer's terminal has it: no CI switches, no test settings."""
    drop = ("TEST_", "PYTEST_", "REQUIRE_E2E", "SKIP_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, **extra}


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
        env=_user_env(TEST_BACKEND="sqlite"),
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
