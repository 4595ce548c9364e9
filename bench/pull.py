"""Benchmarks 1 (pull sync), 2 (incremental re-sync) and 3 (worker memory).

For each size N a WordPress site with N published posts (``scripts/wordpress-e2e.sh``, 4 PHP
workers, kept between runs) is read three ways, in one run:

(a) raw: plain ``requests`` fetching the very pages the service fetches (same route and query:
    per_page=100, context=edit, orderby=id, status=any, the same _fields, Application Password) with 4
    requests in flight, doing nothing with them; also one page after another, for reference;
(b) naive: one page after another, then one INSERT and one COMMIT per post into PostgreSQL;
(c) the service: POST sync (from_external, full) through gunicorn, a real Celery worker on
    Redis and PostgreSQL, polling sync_status until the job is over.

The worker is started fresh for each N and its process tree's RSS sampled during (c). For the
largest N, py-spy profiles the worker while it pulls (``bench/results/profile-pull.*``), and the
incremental re-syncs (nothing changed, then 1% of the posts changed) run on that site.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from . import common, wp
from .common import RESULTS_DIR, log, print_table, ratio, write_result
from .profile_summary import render, render_breakdown, summarise, sync_thread_breakdown
from .service import PySpy, RssSampler, create_integration, run_sync

CONCURRENCY = 4
PER_PAGE = 100
POST_TYPES = ["post"]
SITE_PORTS = {200: 8921, 1000: 8922, 10000: 8924}


_LIST_QUERY: dict[str, Any] = {}


def service_list_query(site: wp.Site) -> dict[str, Any]:
    """The query the service's own WordPress client sends for a page of a full pull (recorded
    from one real call), so the baselines always fetch exactly the same pages and fields."""
    if not _LIST_QUERY:
        from integration_service.platforms.http import HttpSettings, HttpTransport
        from integration_service.platforms.wordpress import WordPressClient

        calls: list[tuple[str, dict[str, Any]]] = []

        class Recorder(HttpTransport):
            def request(self, method: str, url: str, **kwargs: Any):  # type: ignore[override]
                calls.append((url, dict(kwargs.get("params") or {})))
                return super().request(method, url, **kwargs)

        settings = HttpSettings(allow_private=True)
        client = WordPressClient(
            site.url, {"username": site.user, "app_password": site.app_password}, settings, Recorder(settings)
        )
        try:
            client.list_posts("post", 1, per_page=PER_PAGE)
        finally:
            client.close()
        _url, params = next((u, q) for u, q in reversed(calls) if u.rstrip("/").endswith("/wp/v2/posts"))
        params.pop("page", None)
        _LIST_QUERY.update(params)
        log(f"the service lists posts with {_LIST_QUERY}")
    return dict(_LIST_QUERY)


def list_params(site: wp.Site, page: int) -> dict[str, Any]:
    return {**service_list_query(site), "page": page}


def _get_page(session: requests.Session, site: wp.Site, page: int) -> requests.Response:
    resp = session.get(f"{site.url}/wp-json/wp/v2/posts", params=list_params(site, page), timeout=120)
    resp.raise_for_status()
    return resp


def raw_fetch(site: wp.Site, concurrency: int) -> dict[str, Any]:
    """(a) Fetch every page, ``concurrency`` in flight, and throw the posts away."""
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "s"):
            local.s = requests.Session()
            local.s.auth = site.auth
        return local.s

    t0 = time.monotonic()
    first = _get_page(session(), site, 1)
    count = len(first.json())
    pages = int(first.headers["X-WP-TotalPages"])
    if pages > 1:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for resp in pool.map(lambda p: _get_page(session(), site, p), range(2, pages + 1)):
                count += len(resp.json())
    seconds = time.monotonic() - t0
    return {
        "posts": count,
        "pages": pages,
        "seconds": seconds,
        "posts_per_s": count / seconds,
        "concurrency": concurrency,
    }


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("raw") or value.get("rendered") or ""
    return value or ""


def naive_sync(site: wp.Site) -> dict[str, Any]:
    """(b) One page after another; each post one INSERT and one COMMIT."""
    with common.pg_connect() as conn:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS naive_posts (
                 id serial PRIMARY KEY, external_id text NOT NULL, title text, content_html text, status text,
                 url text, modified_gmt timestamptz, categories jsonb, tags jsonb)"""
        )
        conn.execute("TRUNCATE naive_posts")
        conn.commit()
        session = requests.Session()
        session.auth = site.auth
        t0 = time.monotonic()
        count, page, pages = 0, 1, 1
        while page <= pages:
            resp = _get_page(session, site, page)
            pages = int(resp.headers["X-WP-TotalPages"])
            for post in resp.json():
                conn.execute(
                    "INSERT INTO naive_posts (external_id, title, content_html, status, url, modified_gmt,"
                    " categories, tags) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        str(post["id"]),
                        _text(post.get("title")),
                        _text(post.get("content")),
                        post.get("status"),
                        post.get("link"),
                        post["modified_gmt"] + "Z" if post.get("modified_gmt") else None,
                        json.dumps(post.get("categories")),
                        json.dumps(post.get("tags")),
                    ),
                )
                conn.commit()
                count += 1
            page += 1
        seconds = time.monotonic() - t0
        stored = conn.execute("SELECT count(*) FROM naive_posts").fetchone()[0]
    return {"posts": count, "stored": stored, "seconds": seconds, "posts_per_s": count / seconds}


def content_count(site_id: int, title_like: str | None = None) -> int:
    with common.pg_connect() as conn:
        if title_like:
            return conn.execute(
                "SELECT count(*) FROM contents WHERE site_id = %s AND title LIKE %s", (site_id, title_like)
            ).fetchone()[0]
        return conn.execute("SELECT count(*) FROM contents WHERE site_id = %s", (site_id,)).fetchone()[0]


def classify(lines: list[str]) -> dict[str, Any]:
    """WordPress requests by kind: list pages per post type, discovery, the rest."""
    kinds: dict[str, int] = {}
    for line in lines:
        _method, uri, _ms = wp.parse_request_line(line)
        path = uri.split("?", 1)[0]
        if path.startswith("/wp-json/wp/v2/posts"):
            kind = "list posts"
        elif path.startswith("/wp-json/wp/v2/pages"):
            kind = "list pages"
        elif path in ("/wp-json/", "/wp-json") or path.startswith(
            ("/wp-json/wp/v2/types", "/wp-json/wp/v2/taxonomies", "/wp-json/wp/v2/users/me")
        ):
            kind = "discovery"
        elif path.startswith("/wp-cron.php"):
            kind = "wp-cron (WordPress itself)"
        else:
            kind = "other"
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"total": len(lines), "by_kind": kinds, "lines": lines[:50]}


def service_pull(
    base: str, tenant: common.Tenant, site_index: int, site: wp.Site, n: int, profile: bool, gunicorn_pid: int
) -> dict[str, Any]:
    integration_id = create_integration(base, tenant, site_index, site.url, site.user, site.app_password, POST_TYPES)
    # Warm every gunicorn worker's sync_status path (first requests compile queries, import
    # lazily), so the polls during the measured job cost what they cost in a running service.
    for _ in range(4 * common.WEB_WORKERS):
        requests.get(
            f"{base}/api/v1/integration/integrations/{integration_id}/sync_status/", headers=tenant.auth, timeout=30
        ).raise_for_status()
    worker = common.start_worker(f"celery-worker-{n}" + ("-profiled" if profile else ""))
    try:
        time.sleep(1.0)  # let the pool children settle before the idle sample
        idle_tree, idle_largest = common.tree_rss(worker.pid)
        spy = None
        if profile:
            spy = PySpy(worker.pid, RESULTS_DIR / "profile-pull.txt", RESULTS_DIR / "profile.svg", idle=True)
        meter = common.CpuMeter(site.port, {"celery worker": worker.pid, "gunicorn": gunicorn_pid})
        with RssSampler(worker.pid) as sampler, meter:
            run = run_sync(base, tenant, integration_id, "from_external", full=True)
        profile_summary = None
        if spy is not None:
            spy.stop()
            raw = RESULTS_DIR / "profile-pull.txt"
            if raw.exists():
                profile_summary = summarise(raw, job_only=True, cpu_only=True)
                profile_summary["sync_thread"] = sync_thread_breakdown(raw)
                (RESULTS_DIR / "profile-pull-summary.txt").write_text(
                    render_breakdown(profile_summary["sync_thread"]) + "\n\n" + render(profile_summary) + "\n"
                )
        stored = content_count(tenant.sites[site_index]["id"])
        return {
            "integration_id": integration_id,
            "worker": worker,
            "seconds": run.seconds,
            "job_seconds": run.job_seconds,
            "queue_seconds": run.queue_seconds,
            "status": run.status,
            "details": run.details,
            "error": run.error,
            "stored": stored,
            "idle_tree_mb": idle_tree / 2**20,
            "idle_largest_mb": idle_largest / 2**20,
            "rss": sampler.summary(),
            "cpu": meter.summary(),
            "profile": profile_summary,
        }
    except BaseException:
        worker.stop()
        raise


def incremental(
    base: str, tenant: common.Tenant, site_index: int, site: wp.Site, integration_id: int, quick: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, fraction in (("nothing changed", 0.0), ("1% changed", 0.01)):
        changed: list[int] = []
        tag = f"{int(time.time())}"
        if fraction:
            changed = wp.touch_posts(site, fraction, tag)
        offset = site.log_offset()
        run = run_sync(base, tenant, integration_id, "from_external", full=False, poll_interval=0.05)
        time.sleep(0.2)  # the log line of the last request is written as it starts; nothing pending
        reqs = classify(site.requests_since(offset))
        applied = content_count(tenant.sites[site_index]["id"], f"Changed {tag} %") if fraction else 0
        out[label] = {
            "changed_posts": len(changed),
            "changed_posts_stored": applied,
            "seconds": run.seconds,
            "job_seconds": run.job_seconds,
            "queue_seconds": run.queue_seconds,
            "status": run.status,
            "details": run.details,
            "wordpress_requests": reqs,
        }
    return out


def run(quick: bool, profile: bool | None = None) -> dict[str, Any]:
    sizes = [200] if quick else [1000, 10000]
    profile_size = sizes[-1] if profile is None or profile else None
    sites = {}
    for n in sizes:
        log(f"WordPress site with {n} posts")
        sites[n] = wp.ensure_site(f"bench-{n}", SITE_PORTS[n], n)

    common.reset_database()
    common.flush_redis()
    app = common.bench_app()
    # One platform site per size, plus one more for the profiled pull of the largest size (same
    # WordPress, fresh platform site: the profiled run creates every post, like the measured one).
    tenant = common.create_tenant(app, [*(sites[n].url for n in sizes), sites[sizes[-1]].url], name="pull")
    gunicorn, base = common.start_gunicorn("gunicorn-pull")
    results: dict[int, dict[str, Any]] = {}
    incr: dict[str, Any] = {}
    profiled: dict[str, Any] | None = None
    try:
        for index, n in enumerate(sizes):
            site = sites[n]
            log(f"N={n}: (a) raw, 4 in flight")
            with common.CpuMeter(site.port) as meter:
                raw = raw_fetch(site, CONCURRENCY)
            raw["cpu"] = meter.summary()
            log(f"N={n}: (a') raw, one page after another")
            raw_seq = raw_fetch(site, 1)
            log(f"N={n}: (b) naive")
            with common.CpuMeter(site.port) as meter:
                naive = naive_sync(site)
            naive["cpu"] = meter.summary()
            log(f"N={n}: (c) the service")
            svc = service_pull(base, tenant, index, site, n, profile=False, gunicorn_pid=gunicorn.pid)
            worker = svc.pop("worker")
            # Posts per second over what WordPress lists (N published plus the site's own drafts).
            svc["posts_per_s"] = raw["posts"] / svc["seconds"]
            try:
                log(f"N={n}: (a) raw again")
                raw2 = raw_fetch(site, CONCURRENCY)
                if n == sizes[-1]:
                    log(f"N={n}: incremental re-syncs")
                    incr = incremental(base, tenant, index, site, svc["integration_id"], quick)
            finally:
                worker.stop()
            results[n] = {"raw": raw, "raw_after": raw2, "raw_sequential": raw_seq, "naive": naive, "service": svc}
        if profile_size is not None:
            # A separate run under py-spy, so the profiler's own CPU does not count in (c).
            log(f"N={profile_size}: the service again, under py-spy (not counted in the table)")
            profiled = service_pull(
                base, tenant, len(sizes), sites[profile_size], profile_size, profile=True, gunicorn_pid=gunicorn.pid
            )
            profiled.pop("worker").stop()
            profiled["posts_per_s"] = results[profile_size]["raw"]["posts"] / profiled["seconds"]
    finally:
        gunicorn.stop()

    rows = []
    for n, r in results.items():
        raw_rate = (r["raw"]["posts_per_s"] + r["raw_after"]["posts_per_s"]) / 2
        r["raw_mean_posts_per_s"] = raw_rate
        svc = r["service"]
        r["c_over_a"] = ratio(svc["posts_per_s"], raw_rate)
        r["c_over_b"] = ratio(svc["posts_per_s"], r["naive"]["posts_per_s"])
        rows.append(
            [
                n,
                raw_rate,
                r["raw_sequential"]["posts_per_s"],
                r["naive"]["posts_per_s"],
                svc["posts_per_s"],
                r["c_over_a"],
                r["c_over_b"],
                f"{svc['status']} ({svc['stored']} stored)",
            ]
        )
    print_table(
        "Pull sync from WordPress (from_external, full; php -S with 4 workers; posts/s)",
        ["N", "(a) raw, 4 in flight", "raw, sequential", "(b) naive", "(c) service", "c/a", "c/b", "service job"],
        rows,
    )
    mem_rows = [
        [
            n,
            r["service"]["idle_tree_mb"],
            r["service"]["rss"].get("peak_tree_mb"),
            r["service"]["idle_largest_mb"],
            r["service"]["rss"].get("peak_largest_process_mb"),
        ]
        for n, r in results.items()
    ]
    print_table(
        "Celery worker RSS during the pull (MB; tree = master + 2 pool processes; the job runs in a pool process)",
        ["N", "idle tree", "peak tree", "idle largest pool process", "peak largest pool process"],
        mem_rows,
    )
    cpu_rows = []
    for n, r in results.items():
        for label, phase in (("(a) raw", r["raw"]), ("(b) naive", r["naive"]), ("(c) service", r["service"])):
            cpu = phase.get("cpu") or {}
            per_k = {k: 1000 * v / max(1, r["raw"]["posts"]) for k, v in (cpu.get("cpu_s") or {}).items()}
            cpu_rows.append(
                [
                    n,
                    label,
                    cpu.get("wall_s"),
                    cpu.get("machine_busy_pct"),
                    ", ".join(f"{k} {v:.2f}" for k, v in per_k.items() if v >= 0.01),
                ]
            )
    print_table(
        "CPU seconds per 1,000 posts by process during each pull (and how busy the whole machine was)",
        ["N", "phase", "wall s", "machine busy %", "CPU s per 1,000 posts"],
        cpu_rows,
    )
    growth = None
    if len(results) > 1:
        lo, hi = results[sizes[0]]["service"]["rss"], results[sizes[-1]]["service"]["rss"]
        growth = {
            "tree_mb": hi["peak_tree_mb"] - lo["peak_tree_mb"],
            "largest_process_mb": hi["peak_largest_process_mb"] - lo["peak_largest_process_mb"],
        }
        print(
            f"peak RSS growth N={sizes[0]} -> N={sizes[-1]}: tree {growth['tree_mb']:+.1f} MB, "
            f"largest pool process {growth['largest_process_mb']:+.1f} MB"
        )
    if incr:
        print_table(
            f"Incremental re-sync (N={sizes[-1]}, from_external, full=false)",
            ["case", "wall s (POST→done seen)", "job s", "WordPress requests", "by kind", "changed", "stored"],
            [
                [
                    k,
                    v["seconds"],
                    v["job_seconds"],
                    v["wordpress_requests"]["total"],
                    ", ".join(f"{kk}: {vv}" for kk, vv in v["wordpress_requests"]["by_kind"].items()),
                    v["changed_posts"],
                    v["changed_posts_stored"],
                ]
                for k, v in incr.items()
            ],
        )
    top = results[sizes[-1]]
    nothing = incr.get("nothing changed", {})
    by_kind = nothing.get("wordpress_requests", {}).get("by_kind", {})
    result = {
        "sizes": sizes,
        "post_types": POST_TYPES,
        "php_workers": wp.WP_WORKERS,
        "worker_concurrency": common.WORKER_CONCURRENCY,
        "results": {str(n): r for n, r in results.items()},
        "memory_growth": growth,
        "incremental": incr,
        "profiled_run": profiled,
        "targets": {
            f"c_over_a_ge_0_85_at_{sizes[-1]}": (top["c_over_a"] or 0) >= 0.85,
            f"c_over_b_ge_3_at_{sizes[-1]}": (top["c_over_b"] or 0) >= 3,
            "incremental_nothing_changed_le_1_list_request_per_type": (
                sum(v for k, v in by_kind.items() if k.startswith("list")) <= len(POST_TYPES) if incr else None
            ),
            "incremental_nothing_changed_under_1s": (nothing.get("seconds", 1e9) < 1.0) if incr else None,
            "rss_growth_lt_25mb": (growth["largest_process_mb"] < 25 and growth["tree_mb"] < 25) if growth else None,
        },
    }
    write_result("pull", result)
    return result
