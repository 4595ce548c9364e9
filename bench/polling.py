"""Benchmark 6: ``GET .../sync_status/`` with 1,000 integrations and 100,000 SyncEvents.

One account owns 1,000 sites, each with a WordPress integration; 100 SyncEvents per integration
are bulk-inserted with one SQL statement (a mix of finished syncs and webhook events, like a
site's history), and every tenth integration has a running job. The owner's access token polls
the integrations in turn, as a dashboard does. Baselines, in the same gunicorn and the same
interleaved run: the trivial route, and the polling floor (``bench/floor.py``: the same token,
integration, current job and recent events read with psycopg and dumped with ``json``).
"""

from __future__ import annotations

from typing import Any

from . import common
from .common import CPU_PER_REQUEST_HEADERS, cpu_per_request_rows, log, print_table, ratio, write_result
from .loadgen import (
    LATENCY_ROUNDS,
    THREE_WAY_HEADERS,
    Req,
    interleaved_open_loop,
    interleaved_wrk,
    p99_per_round_line,
    run_open_loop,
    three_way_rows,
)

INTEGRATIONS = 1000
EVENTS_PER_INTEGRATION = 100
STATUS_PATH = "/api/v1/integration/integrations/{id}/sync_status/"
FLOOR_PATH = "/floor/sync_status/{id}"


def setup_data() -> tuple[common.Tenant, list[int]]:
    from integration_service.extensions import db
    from integration_service.models import SiteIntegration

    common.reset_database()
    common.flush_redis()
    app = common.bench_app()
    tenant = common.create_tenant(app, [f"http://127.0.0.1:9/poll-{i}" for i in range(INTEGRATIONS)], name="polling")
    with app.app_context():
        db.session.execute(
            db.insert(SiteIntegration),
            [
                {
                    "site_id": s["id"],
                    "platform": "wordpress",
                    "platform_type": "cms",
                    "config_json": {"site_url": s["url"]},
                    "credentials_json": {"api_key": s["api_key"], "username": "admin", "app_password": "unused"},
                    "sync_status": "success",
                }
                for s in tenant.sites
            ],
        )
        db.session.commit()
    with common.pg_connect() as conn:
        conn.execute(
            """
            INSERT INTO sync_events (integration_id, site_id, event_type, action, direction, status, details,
                                     error_message, task_id, progress_done, progress_total, created_at, started_at,
                                     finished_at, webhook_id)
            SELECT i.id, i.site_id,
                   CASE WHEN g %% 4 = 0 THEN 'sync' ELSE 'webhook_status' END,
                   CASE WHEN g %% 4 = 0 THEN 'sync' ELSE 'status' END,
                   CASE WHEN g %% 4 = 0 THEN 'both' ELSE 'from_external' END,
                   CASE WHEN g %% 37 = 0 THEN 'failed' ELSE 'success' END,
                   CASE WHEN g %% 4 = 0
                        THEN json_build_object('direction', 'both', 'full', false, 'created', g, 'updated', 3,
                                               'unchanged', 900, 'errors', 0)
                        ELSE json_build_object('outcome', 'applied', 'post_id', 1000 + g, 'post_status', 'publish')
                   END,
                   CASE WHEN g %% 37 = 0 THEN 'http: WordPress answered 502' END,
                   md5(i.id::text || '-' || g::text),
                   g, g,
                   now() - make_interval(mins => 101 - g), now() - make_interval(mins => 101 - g),
                   now() - make_interval(mins => 101 - g) + interval '20 seconds',
                   CASE WHEN g %% 4 = 0 THEN NULL ELSE 'msg_' || i.id || '_' || g END
            FROM site_integrations i CROSS JOIN generate_series(1, %s) AS g
            """,
            (EVENTS_PER_INTEGRATION,),
        )
        # Every tenth integration has a sync running (current_job is filled in).
        conn.execute(
            """
            INSERT INTO sync_events (integration_id, site_id, event_type, action, direction, status, details,
                                     task_id, sync_lock, progress_done, progress_total, created_at, started_at,
                                     heartbeat_at)
            SELECT id, site_id, 'sync', 'sync', 'from_external', 'running', '{"full": false}'::json,
                   md5(id::text), id, 300, 1000, now(), now(), now()
            FROM site_integrations WHERE id % 10 = 0
            """
        )
        conn.execute("UPDATE site_integrations SET sync_status = 'syncing' WHERE id % 10 = 0")
        conn.commit()
        ids = [r[0] for r in conn.execute("SELECT id FROM site_integrations ORDER BY id").fetchall()]
        events = conn.execute("SELECT count(*) FROM sync_events").fetchone()[0]
    common.settle_database()
    log(f"polling data: {len(ids)} integrations, {events} sync events")
    return tenant, ids


def status_requests(tenant: common.Tenant, ids: list[int], count: int) -> list[Req]:
    return [Req("GET", STATUS_PATH.format(id=ids[i % len(ids)]), "", dict(tenant.auth)) for i in range(count)]


def floor_requests(tenant: common.Tenant, ids: list[int], count: int) -> list[Req]:
    return [Req("GET", FLOOR_PATH.format(id=ids[i % len(ids)]), "", dict(tenant.auth)) for i in range(count)]


ROUTE_LABELS = [("trivial", "trivial route"), ("floor", "polling floor"), ("service", "sync_status")]


def run(quick: bool) -> dict[str, Any]:
    duration = 5 if quick else 10
    latency_duration = 5 if quick else 15
    tenant, ids = setup_data()
    gunicorn, base = common.start_gunicorn("gunicorn-polling")
    try:
        import requests

        probe = requests.get(base + STATUS_PATH.format(id=ids[9]), headers=tenant.auth, timeout=10)
        if probe.status_code != 200:
            raise RuntimeError(f"sync_status answered {probe.status_code}: {probe.text[:500]}")
        sample = probe.json()
        floor_probe = requests.get(base + FLOOR_PATH.format(id=ids[9]), headers=tenant.auth, timeout=10)
        if floor_probe.status_code != 200:
            raise RuntimeError(f"the polling floor answered {floor_probe.status_code}: {floor_probe.text[:500]}")
        trivial = [Req("GET", "/bench/trivial")]
        log("warming up")
        run_open_loop(base, status_requests(tenant, ids, 300), rate=150, duration=2)
        run_open_loop(base, floor_requests(tenant, ids, 300), rate=150, duration=2)
        run_open_loop(base, trivial * 300, rate=150, duration=2)

        log(f"sustained: wrk {duration}s each, interleaved twice: trivial / floor / sync_status")
        sustained = interleaved_wrk(
            base,
            [
                ("trivial", lambda _n: trivial * 200_000),
                ("floor", lambda _n: floor_requests(tenant, ids, 200_000)),
                ("service", lambda _n: status_requests(tenant, ids, 200_000)),
            ],
            duration,
            gunicorn.pid,
        )
        st = sustained["service"]

        offered = max(1.0, st["rate"] / 2)
        common.settle_database()  # the fixed-rate rounds start from a settled database, as in webhooks
        log(
            f"latency at a fixed offered rate of {offered:.0f}/s for {latency_duration}s each route,"
            f" interleaved in {LATENCY_ROUNDS} rounds"
        )
        fixed = interleaved_open_loop(
            base,
            [
                ("service", lambda count, _n: status_requests(tenant, ids, count)),
                ("floor", lambda count, _n: floor_requests(tenant, ids, count)),
                ("trivial", lambda count, _n: trivial * count),
            ],
            offered,
            latency_duration,
            rounds=LATENCY_ROUNDS,
        )
        sl = fixed["service"]
    finally:
        gunicorn.stop()

    floor_ratio = ratio(st["rate"], sustained["floor"]["rate"])
    cpu_ms = st["cpu_ms_per_request"].get("gunicorn")
    print_table(
        f"Polling (gunicorn {common.WEB_WORKERS} sync workers, PostgreSQL; wrk -t2 -c8 {duration}s x2 interleaved; "
        f"latency at {offered:.0f} req/s offered, half the service's sustained rate)",
        THREE_WAY_HEADERS,
        three_way_rows(
            sustained,
            fixed,
            [
                ("trivial", "trivial route (GET /bench/trivial)"),
                ("floor", "polling floor (Flask + psycopg)"),
                ("service", "sync_status (1,000 integrations, 100k events)"),
            ],
        ),
    )
    print(p99_per_round_line(fixed, [("trivial", "trivial"), ("floor", "floor"), ("service", "service")]))
    print_table(
        "CPU milliseconds per answered request during the sustained runs, by process",
        CPU_PER_REQUEST_HEADERS,
        cpu_per_request_rows([(label, sustained[key]) for key, label in ROUTE_LABELS]),
    )
    result = {
        "load_tools": {
            "sustained": "wrk 4 (-t2 -c8), bench/wrk/replay.lua, owner bearer token, integrations in turn; "
            "trivial / floor / service interleaved, twice",
            "fixed_rate": "bench/loadgen.py asyncio open loop, latency from each request's due time",
        },
        "data": {"integrations": len(ids), "sync_events": INTEGRATIONS * EVENTS_PER_INTEGRATION + len(ids) // 10},
        "sample_answer_keys": sorted(sample),
        "recent_events_in_answer": len(sample.get("recent_events") or []),
        "gunicorn_workers": common.WEB_WORKERS,
        "trivial_rate": sustained["trivial"]["rate"],
        "floor_rate": sustained["floor"]["rate"],
        "sustained": sustained,
        "sync_status_sustained": st,
        "sync_status_ratio": ratio(st["rate"], sustained["trivial"]["rate"]),
        "sync_status_floor_ratio": floor_ratio,
        "sync_status_cpu_ms": cpu_ms,
        "offered_rate": offered,
        "fixed": {k: {kk: vv for kk, vv in v.items() if kk != "answered"} for k, v in fixed.items()},
        "sync_status_fixed": {k: v for k, v in sl.items() if k != "answered"},
        "targets": {
            "floor_ratio_ge_0_6": (floor_ratio or 0) >= 0.6,
            "cpu_ms_le_2": (cpu_ms or 1e9) <= 2,
            "p99_lt_15ms_at_half_rate": (sl["latency_ms"]["p99"] or 1e9) < 15,
        },
    }
    write_result("polling", result)
    return result
