"""The real WordPress sites the benchmarks run against (through ``scripts/wordpress-e2e.sh``).

Each benchmark site is kept between runs (seeding 10,000 posts takes minutes): ``ensure_site``
starts it and tops its published posts up to the wanted count. A bench-only mu-plugin logs every
web request WordPress receives, so request counts are exact.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .common import REPO_ROOT, log

SCRIPT = REPO_ROOT / "scripts" / "wordpress-e2e.sh"
STATE_ROOT = Path(os.environ.get("WP_E2E_DIR", "/tmp/igny8-wp-e2e"))
MU_PLUGIN = Path(__file__).resolve().parent / "wordpress" / "bench-request-log.php"
WP_WORKERS = 4
# Sites this run found stopped and started: ``stop_started_sites`` stops them again at the end
# (their files and databases stay, so the next run starts them in a second or two).
STARTED: list[str] = []


@dataclass
class Site:
    name: str
    url: str
    user: str
    app_password: str
    pid: int | None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.app_password)

    @property
    def request_log(self) -> Path:
        return STATE_ROOT / self.name / "logs" / "bench-requests.log"

    def log_offset(self) -> int:
        try:
            return self.request_log.stat().st_size
        except FileNotFoundError:
            return 0

    def requests_since(self, offset: int, end: int | None = None) -> list[str]:
        """The "METHOD URI MS" lines WordPress logged after ``offset`` (from ``log_offset``),
        up to the offset ``end`` when given."""
        try:
            with self.request_log.open("rb") as handle:
                handle.seek(offset)
                data = handle.read() if end is None else handle.read(max(0, end - offset))
                return data.decode(errors="replace").splitlines()
        except FileNotFoundError:
            return []


def parse_request_line(line: str) -> tuple[str, str, float | None]:
    """("METHOD", "URI", WordPress milliseconds or None) from one request-log line."""
    parts = line.split(" ")
    method = parts[0]
    uri = parts[1] if len(parts) > 1 else ""
    try:
        ms = float(parts[2]) if len(parts) > 2 else None
    except ValueError:
        ms = None
    return method, uri, ms


def request_stats(lines: list[str], method: str, path_prefix: str) -> dict[str, Any]:
    """Count and WordPress-side time of the logged requests matching METHOD and a path prefix."""
    times = [ms for m, uri, ms in map(parse_request_line, lines) if m == method and uri.startswith(path_prefix)]
    known = [t for t in times if t is not None]
    return {
        "count": len(times),
        "wp_ms_mean": sum(known) / len(known) if known else None,
        "wp_ms_total": sum(known) if known else None,
    }


def _script(*args: str, stdin: str | None = None, timeout: float = 1800) -> str:
    result = subprocess.run(
        [str(SCRIPT), *args],
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"wordpress-e2e.sh {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def published_count(site: Site, post_type: str = "posts") -> int:
    resp = requests.get(
        f"{site.url}/wp-json/wp/v2/{post_type}", params={"per_page": 1, "_fields": "id"}, auth=site.auth, timeout=60
    )
    resp.raise_for_status()
    return int(resp.headers["X-WP-Total"])


def ensure_site(name: str, port: int, posts: int | None = None) -> Site:
    """Start (installing when new) the site NAME on PORT with 4 PHP workers; with ``posts``,
    seed published posts until there are exactly that many or more (seeding only adds)."""
    was_running = (
        subprocess.run(
            [str(SCRIPT), "status", "--name", name], cwd=REPO_ROOT, capture_output=True, check=False
        ).returncode
        == 0
    )
    info = json.loads(_script("start", "--name", name, "--port", str(port), "--workers", str(WP_WORKERS)))
    if not was_running and name not in STARTED:
        STARTED.append(name)
    mu_dir = Path(info["root"]) / "wp-content" / "mu-plugins"
    if mu_dir.is_dir():
        shutil.copyfile(MU_PLUGIN, mu_dir / MU_PLUGIN.name)
    site = Site(
        name=name, url=info["url"], user=info["admin_user"], app_password=info["app_password"], pid=info.get("pid")
    )
    if posts is not None:
        have = published_count(site)
        if have < posts:
            log(f"seeding {posts - have} posts into WordPress site '{name}' (has {have})")
            _script("seed", "--name", name, "--posts", str(posts - have))
        elif have > posts:
            raise RuntimeError(
                f"site '{name}' has {have} posts, more than the {posts} wanted: "
                f"run scripts/wordpress-e2e.sh stop --name {name} --purge"
            )
        age_posts(site)
    return site


def age_posts(site: Site) -> None:
    """Spread the posts' modification times over the past (one hour apart, newest an hour ago),
    as on a real site. Seeding writes them all within a few minutes, and the service re-reads
    the last minutes before its high-water mark on every incremental pull (its overlap window):
    without this, "nothing changed" would re-read most of a freshly seeded site."""
    eval_php(
        site,
        """<?php
global $wpdb;
$wpdb->query("SET @r := 0");
$n = $wpdb->query("UPDATE $wpdb->posts p JOIN (SELECT ID, (@r := @r + 1) AS rnk FROM $wpdb->posts
    WHERE post_type IN ('post','page') ORDER BY ID DESC) o ON o.ID = p.ID
    SET p.post_modified_gmt = UTC_TIMESTAMP() - INTERVAL o.rnk HOUR,
        p.post_modified = UTC_TIMESTAMP() - INTERVAL o.rnk HOUR");
wp_cache_flush();
echo json_encode($n);
""",
    )


def stop_started_sites() -> None:
    while STARTED:
        name = STARTED.pop()
        try:
            _script("stop", "--name", name, timeout=120)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            log(f"could not stop WordPress site '{name}': {exc}")


atexit.register(stop_started_sites)  # also after Ctrl-C or SIGTERM (bench.run turns those into exits)


def eval_php(site: Site, code: str) -> Any:
    """Run PHP code inside the site; the code must print one JSON value."""
    return json.loads(_script("eval", "--name", site.name, "-", stdin=code, timeout=600))


def touch_posts(site: Site, fraction: float, tag: str) -> list[int]:
    """Change the title of every k-th published post (``fraction`` of them), as an editor would:
    through wp_update_post, so modified_gmt moves. Returns the changed post ids."""
    step = max(1, round(1 / fraction))
    code = f"""<?php
global $wpdb;
$ids = $wpdb->get_col("SELECT ID FROM $wpdb->posts WHERE post_type='post' AND post_status='publish' ORDER BY ID");
$changed = [];
foreach ($ids as $i => $id) {{
    if ($i % {step} !== 0) continue;
    $r = wp_update_post(['ID' => (int) $id, 'post_title' => 'Changed {tag} ' . $id], true);
    if (is_wp_error($r)) {{ fwrite(STDERR, $r->get_error_message()); exit(1); }}
    $changed[] = (int) $id;
}}
echo json_encode($changed);
"""
    return eval_php(site, code)


def delete_posts_by_title_prefix(site: Site, prefix: str) -> int:
    code = f"""<?php
global $wpdb;
$ids = $wpdb->get_col($wpdb->prepare("SELECT ID FROM $wpdb->posts WHERE post_title LIKE %s",
    $wpdb->esc_like({json.dumps(prefix)}) . '%'));
foreach ($ids as $id) {{ wp_delete_post((int) $id, true); }}
echo json_encode(count($ids));
"""
    return eval_php(site, code)
