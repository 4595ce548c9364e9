"""Benchmark 4: push (``to_external``) of platform-side contents into WordPress.

Baseline: a raw loop of the same WordPress requests (``POST /wp/v2/posts?context=edit`` with the
same body: title, content, status, meta; Application Password), one after another as the
service sends them. The raw loop runs before and after the service, and the two are averaged.
Posts created by earlier runs are removed from the site first (SQL, on the bench's own site).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import requests

from . import common, wp
from .common import RESULTS_DIR, log, print_table, ratio, write_result
from .profile_summary import render, summarise
from .service import PySpy, create_integration, run_sync

SITE_NAME = "bench-push"
SITE_PORT = 8923
TITLE_PREFIX = "Bench push"
HTML = "<!-- wp:paragraph -->\n<p>Pushed by the bench suite, content number {i}.</p>\n<!-- /wp:paragraph -->"


def clear_pushed(site: wp.Site) -> int:
    return wp.eval_php(
        site,
        f"""<?php
global $wpdb;
$like = $wpdb->esc_like('{TITLE_PREFIX}') . '%';
$ids = $wpdb->get_col($wpdb->prepare("SELECT ID FROM $wpdb->posts WHERE post_title LIKE %s", $like));
if ($ids) {{
    $in = implode(',', array_map('intval', $ids));
    $wpdb->query("DELETE FROM $wpdb->postmeta WHERE post_id IN ($in)");
    $wpdb->query("DELETE FROM $wpdb->term_relationships WHERE object_id IN ($in)");
    $wpdb->query("DELETE FROM $wpdb->posts WHERE ID IN ($in) OR (post_parent IN ($in) AND post_type = 'revision')");
}}
wp_cache_flush();
echo json_encode(count($ids));
""",
    )


def raw_loop(site: wp.Site, count: int, label: str) -> dict[str, Any]:
    session = requests.Session()
    session.auth = site.auth
    t0 = time.monotonic()
    for i in range(count):
        resp = session.post(
            f"{site.url}/wp-json/wp/v2/posts",
            params={"context": "edit"},
            json={
                "title": f"{TITLE_PREFIX} raw {label} {i}",
                "content": HTML.format(i=i),
                "status": "publish",
                "meta": {"_igny8_content_id": i + 1},
            },
            timeout=60,
        )
        resp.raise_for_status()
    seconds = time.monotonic() - t0
    return {"posts": count, "seconds": seconds, "posts_per_s": count / seconds}


def run(quick: bool) -> dict[str, Any]:
    from integration_service.extensions import db
    from integration_service.models import Content

    count = 100 if quick else 500
    site = wp.ensure_site(SITE_NAME, SITE_PORT)
    removed = clear_pushed(site)
    log(f"push site ready ({removed} posts of earlier runs removed)")

    common.reset_database()
    common.flush_redis()
    app = common.bench_app()
    tenant = common.create_tenant(app, [site.url], name="push")
    site_id = tenant.sites[0]["id"]
    with app.app_context():
        db.session.execute(
            db.insert(Content),
            [
                {
                    "site_id": site_id,
                    "title": f"{TITLE_PREFIX} service {i}",
                    "content_html": HTML.format(i=i),
                    "status": "published",
                    "content_type": "post",
                    "source": "platform",
                }
                for i in range(count)
            ],
        )
        db.session.commit()

    gunicorn, base = common.start_gunicorn("gunicorn-push")
    try:
        integration_id = create_integration(base, tenant, 0, site.url, site.user, site.app_password, ["post"])
        for _ in range(4 * common.WEB_WORKERS):  # warm the gunicorn workers' sync_status path
            requests.get(
                f"{base}/api/v1/integration/integrations/{integration_id}/sync_status/", headers=tenant.auth, timeout=30
            ).raise_for_status()
        worker = common.start_worker("celery-worker-push")
        try:
            # Warm WordPress up first (opcache, MariaDB buffers): the first loop would pay for it.
            raw_loop(site, 20, "warm-up")
            roots = {"celery worker": worker.pid, "gunicorn": gunicorn.pid}
            cpu: dict[str, Any] = {}
            log(f"raw loop: {count} POSTs")
            offsets = [site.log_offset()]
            with common.CpuMeter(site.port, roots) as meter:
                raw1 = raw_loop(site, count, "1")
            cpu["raw 1"] = meter.summary()
            offsets.append(site.log_offset())
            log(f"service: to_external sync of {count} contents")
            with common.CpuMeter(site.port, roots) as meter:
                svc = run_sync(base, tenant, integration_id, "to_external", full=False, poll_interval=0.5)
            cpu["service"] = meter.summary()
            offsets.append(site.log_offset())
            log(f"raw loop again: {count} POSTs")
            with common.CpuMeter(site.port, roots) as meter:
                raw2 = raw_loop(site, count, "2")
            cpu["raw 2"] = meter.summary()
            time.sleep(0.5)
            offsets.append(site.log_offset())
            # Profile a further, smaller push separately, so py-spy's own CPU stays out of the table.
            extra = min(count, 100)
            with app.app_context():
                db.session.execute(
                    db.insert(Content),
                    [
                        {
                            "site_id": site_id,
                            "title": f"{TITLE_PREFIX} profiled {i}",
                            "content_html": HTML.format(i=i),
                            "status": "published",
                            "content_type": "post",
                            "source": "platform",
                        }
                        for i in range(extra)
                    ],
                )
                db.session.commit()
            log(f"service again under py-spy: {extra} new contents (not counted in the table)")
            spy = PySpy(worker.pid, RESULTS_DIR / "profile-push.txt", RESULTS_DIR / "profile-push.svg", idle=True)
            run_sync(base, tenant, integration_id, "to_external", full=False, poll_interval=0.5)
            spy.stop()
            raw_profile = RESULTS_DIR / "profile-push.txt"
            profile = summarise(raw_profile, job_only=True) if raw_profile.exists() else None
            if profile:
                (RESULTS_DIR / "profile-push-summary.txt").write_text(render(profile) + "\n")
        finally:
            worker.stop()
    finally:
        gunicorn.stop()

    # What WordPress itself spent on the POSTs of each phase (from the bench mu-plugin's log).
    phases = {}
    for label, (start, end) in zip(("raw 1", "service", "raw 2"), itertools.pairwise(offsets), strict=True):
        kept = site.requests_since(start, end)
        phases[label] = {
            "posts": wp.request_stats(kept, "POST", "/wp-json/wp/v2/posts"),
            "wp_cron": wp.request_stats(kept, "POST", "/wp-cron.php"),
            "all_requests": len(kept),
        }
    with common.pg_connect() as conn:
        linked = conn.execute(
            "SELECT count(*) FROM contents WHERE site_id = %s AND external_id IS NOT NULL", (site_id,)
        ).fetchone()[0]
    linked -= min(count, 100)  # the profiled extra push is not part of the figures
    pushed = int(svc.details.get("pushed") or 0)
    svc_rate = pushed / svc.seconds if svc.seconds else None
    raw_rate = (raw1["posts_per_s"] + raw2["posts_per_s"]) / 2
    print_table(
        "WordPress's own time per POST /wp/v2/posts in each phase (bench mu-plugin log)",
        ["phase", "POSTs", "WordPress ms/POST", "wp-cron runs", "client-side s/post"],
        [
            [label, p["posts"]["count"], p["posts"]["wp_ms_mean"], p["wp_cron"]["count"], seconds / count]
            for (label, p), seconds in zip(phases.items(), (raw1["seconds"], svc.seconds, raw2["seconds"]), strict=True)
        ],
    )
    print_table(
        f"CPU seconds per post by process during each phase ({count} posts)",
        ["phase", "wall s", "machine busy %", "CPU s per post"],
        [
            [
                label,
                c["wall_s"],
                c["machine_busy_pct"],
                ", ".join(f"{k} {v / count:.3f}" for k, v in c["cpu_s"].items() if v / count >= 0.001),
            ]
            for label, c in cpu.items()
        ],
    )
    print_table(
        f"Push sync to WordPress (to_external, {count} contents; posts/s)",
        ["raw loop (mean of 2)", "service", "service / raw", "pushed", "linked (external_id set)", "job status"],
        [[raw_rate, svc_rate, ratio(svc_rate, raw_rate), pushed, linked, svc.status]],
    )
    result = {
        "contents": count,
        "raw_runs": [raw1, raw2],
        "raw_posts_per_s": raw_rate,
        "service": {
            "seconds": svc.seconds,
            "job_seconds": svc.job_seconds,
            "queue_seconds": svc.queue_seconds,
            "status": svc.status,
            "details": svc.details,
            "error": svc.error,
            "posts_per_s": svc_rate,
            "linked": linked,
        },
        "profile": profile,
        "wordpress_side": phases,
        "cpu": cpu,
        "ratio": ratio(svc_rate, raw_rate),
        "targets": {"push_ge_0_8_of_raw": (ratio(svc_rate, raw_rate) or 0) >= 0.8 and pushed == count},
    }
    write_result("push", result)
    return result
