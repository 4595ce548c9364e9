"""The API docs page in a real headless browser (Debian's chromium): Swagger UI's assets come
from the service itself, so the page renders the operations list on a closed network.

scripts/test.sh installs chromium (scripts/chromium.sh). Without it the test is skipped with the
reason, except with REQUIRE_E2E=1 (CI), where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

BROWSER_TIMEOUT = 120


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        reason = "chromium is not installed (scripts/chromium.sh installs it)"
        if os.environ.get("REQUIRE_E2E"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture
def served(app) -> Iterator[str]:
    """The test app on a free loopback port, in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def dump_dom(chromium: str, url: str, profile: str) -> str:
    """The page's DOM after its scripts ran (virtual time lets the spec fetch and render finish)."""
    args = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom", url,
    ]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_the_docs_page_lists_the_operations_without_a_cdn(app, served, tmp_path) -> None:
    chromium = _chromium()
    assert "://" not in app.config["OPENAPI_SWAGGER_UI_URL"]  # served here, not from a CDN

    dom = dump_dom(chromium, f"{served}/api/v1/docs", str(tmp_path / "profile"))

    paths = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    assert {"/healthz", "/api/v1/auth/token/", "/api/v1/integration/integrations/"} <= paths, dom[-3000:]
    assert "/api/v1/integration/integrations/{integration_id}/sync/" in paths
