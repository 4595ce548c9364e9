"""Real WordPress sites on loopback for end-to-end tests: a thin wrapper of scripts/wordpress-e2e.sh.

    site = start_site()                      # http://127.0.0.1:8881, installed on first use
    requests.get(site.rest("wp/v2/users/me"), auth=site.app_password_auth)
    eval_php(site.name, "echo get_option('blogname');")
    seed_posts(site.name, 1000)              # {"created": 1000, "total": 1005, ...}

A new site holds 5 published posts (categories News/Guides/Reviews, tags alpha/beta/gamma),
2 pages and 1 draft post, an administrator ``admin`` and an Application Password for it.
Sites live under ``$WP_E2E_DIR`` (default /tmp/igny8-wp-e2e) and keep running between test runs;
``start_site`` on a running site only reads its JSON (~0.2 s).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "wordpress-e2e.sh"
WORDPRESS_SRC = Path("/usr/share/wordpress")

START_TIMEOUT = 900  # a first start may install Debian packages
SHORT_TIMEOUT = 60
EVAL_TIMEOUT = 300


@dataclass(frozen=True)
class WordPressSite:
    """One running (or installed) e2e WordPress site, as printed by ``wordpress-e2e.sh start``."""

    name: str
    url: str
    port: int
    admin_user: str
    admin_password: str
    app_password: str
    db_name: str
    root: str
    pid: int | None
    wp_version: str
    workers: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WordPressSite:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    @property
    def rest_url(self) -> str:
        """The REST API root, ``http://127.0.0.1:PORT/wp-json/``."""
        return f"{self.url.rstrip('/')}/wp-json/"

    def rest(self, path: str = "") -> str:
        """Absolute REST URL: ``rest("wp/v2/posts")`` -> ``http://127.0.0.1:PORT/wp-json/wp/v2/posts``."""
        path = path.lstrip("/")
        if path.startswith("wp-json/"):
            path = path[len("wp-json/") :]
        return self.rest_url + path

    @property
    def app_password_auth(self) -> tuple[str, str]:
        """HTTP Basic credentials for the REST API: ``(admin_user, app_password)``."""
        return (self.admin_user, self.app_password)


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _run(args: list[str], *, timeout: float, input_text: str | None = None, check: bool = True):
    """Run the script; on failure or timeout raise RuntimeError with the tail of its stderr."""
    cmd = ["bash", str(SCRIPT), *args]
    shown = "scripts/wordpress-e2e.sh " + " ".join(args)
    try:
        proc = subprocess.run(
            cmd,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO_ROOT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise RuntimeError(f"{shown} timed out after {timeout:.0f} s; stderr:\n{_tail(stderr)}") from None
    except OSError as exc:
        raise RuntimeError(f"{shown} could not run: {exc}") from None
    if check and proc.returncode != 0:
        raise RuntimeError(f"{shown} failed (exit {proc.returncode}); stderr:\n{_tail(proc.stderr)}")
    return proc


def _parse_json(proc, what: str) -> dict[str, Any]:
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(
            f"{what}: expected one JSON object on stdout, got {proc.stdout[-500:]!r}; stderr:\n{_tail(proc.stderr)}"
        ) from None
    if not isinstance(data, dict):
        raise RuntimeError(f"{what}: expected a JSON object, got {data!r}")
    return data


def start_site(
    name: str = "e2e",
    port: int = 8881,
    workers: int = 4,
    activate_plugin: bool = False,
    fresh: bool = False,
) -> WordPressSite:
    """Install (first time) and start the site, or just return it when it already runs."""
    args = ["start", "--name", name, "--port", str(port), "--workers", str(workers)]
    if activate_plugin:
        args.append("--activate-plugin")
    if fresh:
        args.append("--fresh")
    proc = _run(args, timeout=START_TIMEOUT)
    return WordPressSite.from_json(_parse_json(proc, "wordpress-e2e.sh start"))


def stop_site(name: str = "e2e", purge: bool = False) -> None:
    """Stop the site's php -S; ``purge`` also drops its database and files."""
    _run(["stop", "--name", name, *(["--purge"] if purge else [])], timeout=SHORT_TIMEOUT)


def site_status(name: str = "e2e") -> WordPressSite | None:
    """The site when it is installed and its server runs, else None."""
    proc = _run(["status", "--name", name], timeout=SHORT_TIMEOUT, check=False)
    if proc.returncode != 0:
        return None
    return WordPressSite.from_json(_parse_json(proc, "wordpress-e2e.sh status"))


def seed_posts(name: str, n: int, post_type: str = "post", hooks: bool = False) -> dict[str, Any]:
    """Create ``n`` more published posts (~3 s per 1,000): ``{"created", "total", ...}``.

    Post hooks are off while seeding (an active plugin sends no webhook per seeded post) unless
    ``hooks`` is true.
    """
    args = ["seed", "--name", name, "--posts", str(n), "--type", post_type, *(["--hooks"] if hooks else [])]
    proc = _run(args, timeout=SHORT_TIMEOUT + n * 0.1)
    return _parse_json(proc, "wordpress-e2e.sh seed")


def eval_php(name: str, code: str, timeout: float = EVAL_TIMEOUT) -> str:
    """Run PHP code (with or without ``<?php``) inside the site's WordPress, as user ``admin``;
    return what it printed. A PHP error raises RuntimeError with the message."""
    proc = _run(["eval", "--name", name, "-"], timeout=timeout, input_text=code)
    return proc.stdout


def wordpress_unavailable_reason() -> str | None:
    """Why scripts/wordpress-e2e.sh cannot start WordPress here, or None when it can.

    Cheap: looks at the machine, starts nothing. Missing Debian packages are fine when running as
    root with apt-get (the script installs them).
    """
    if os.environ.get("SKIP_WORDPRESS"):
        return "SKIP_WORDPRESS is set"
    if os.environ.get("SKIP_SERVICES"):  # TEST_BACKEND=sqlite: not even a WordPress left running
        return "SKIP_SERVICES is set (TEST_BACKEND=sqlite)"
    if not sys.platform.startswith("linux"):
        return f"needs Linux (Debian's wordpress package), this is {sys.platform}"
    if not SCRIPT.is_file():
        return f"{SCRIPT} is missing"
    if shutil.which("bash") is None:
        return "bash is not installed"
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    can_install = is_root and shutil.which("apt-get") is not None
    missing = [
        what
        for what, present in (
            ("php", shutil.which("php") is not None),
            ("Debian's wordpress package", (WORDPRESS_SRC / "wp-load.php").is_file()),
            ("the mysql client", shutil.which("mysql") is not None),
        )
        if not present
    ]
    if missing and not can_install:
        return f"{', '.join(missing)} missing and cannot install them (needs root and apt-get)"
    if not Path("/usr/sbin/mariadbd").exists() and not _mariadb_answers() and not can_install:
        return "no MariaDB on 127.0.0.1:3306 and no /usr/sbin/mariadbd to start"
    return None


def _mariadb_answers() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 3306), timeout=1):
            return True
    except OSError:
        return False
