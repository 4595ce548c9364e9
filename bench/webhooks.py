"""Benchmark 5: signed WordPress status webhooks under gunicorn on PostgreSQL.

One site with a WordPress integration and ``CONTENTS`` contents linked to WordPress post ids.
Every delivery is signed the Standard Webhooks way (HMAC-SHA256 keyed by the site API key's UTF-8
bytes over ``{id}.{timestamp}.{body}``) with its own webhook-id, precomputed just before each
phase (the service refuses timestamps older than 5 minutes).

Phases, all against one gunicorn (which also serves the floor app, ``bench/floor.py``):
1. sustained rate: wrk, closed loop, trivial route / webhook floor / service, interleaved twice;
2. latency at a fixed offered rate of half the sustained webhook rate (asyncio open loop), and
   the floor and the trivial route at the same offered rate;
3. burst: ``BURST`` unique deliveries plus a duplicate of every tenth one sent at the same time
   as its original, all answers read; then the database must hold exactly one applied event per
   webhook-id answered 200, and none for the rest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
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
    run_burst,
    run_open_loop,
    three_way_rows,
)

WEBHOOK_PATH = "/api/v1/integration/webhooks/wordpress/status/"
FLOOR_PATH = "/floor/webhook"
ROUTE_LABELS = [("trivial", "trivial route"), ("floor", "webhook floor"), ("service", "webhooks/wordpress/status/")]
CONTENTS = 1000
FIRST_POST_ID = 100_000


def sign(api_key: str, webhook_id: str, timestamp: int, body: str) -> str:
    mac = hmac.new(api_key.encode(), f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_requests(api_key: str, count: int, prefix: str, start: int = 0) -> list[Req]:
    """``count`` status deliveries, each with a unique webhook-id, cycling over the contents."""
    now = int(time.time())
    statuses = ("publish", "draft", "pending", "private")
    out = []
    for i in range(start, start + count):
        webhook_id = f"msg_{prefix}_{i}"
        body = json.dumps(
            {"post_id": FIRST_POST_ID + i % CONTENTS, "post_status": statuses[i % len(statuses)], "post_type": "post"},
            separators=(",", ":"),
        )
        out.append(
            Req(
                "POST",
                WEBHOOK_PATH,
                body,
                {
                    "Content-Type": "application/json",
                    "X-API-Key": api_key,
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(now),
                    "webhook-signature": sign(api_key, webhook_id, now, body),
                },
                tag=webhook_id,
            )
        )
    return out


def setup_data() -> dict[str, Any]:
    from integration_service.extensions import db
    from integration_service.models import Content, SiteIntegration

    common.reset_database()
    common.flush_redis()
    app = common.bench_app()
    tenant = common.create_tenant(app, ["http://127.0.0.1:9/webhook-bench"], name="webhooks")
    site = tenant.sites[0]
    with app.app_context():
        db.session.add(
            SiteIntegration(
                site_id=site["id"],
                platform="wordpress",
                platform_type="cms",
                config_json={"site_url": site["url"]},
                credentials_json={"api_key": site["api_key"], "username": "admin", "app_password": "unused"},
            )
        )
        db.session.execute(
            db.insert(Content),
            [
                {
                    "site_id": site["id"],
                    "title": f"Post {i}",
                    "content_html": "<p>x</p>",
                    "status": "published",
                    "content_type": "post",
                    "external_id": str(FIRST_POST_ID + i),
                    "external_status": "publish",
                    "source": "wordpress",
                }
                for i in range(CONTENTS)
            ],
        )
        db.session.commit()
    common.settle_database()
    return site


def applied_counts(prefix: str) -> dict[str, int]:
    """Per webhook-id outcome counts for the ids that start with ``msg_{prefix}_``."""
    with common.pg_connect() as conn:
        rows = conn.execute(
            """
            SELECT webhook_id, count(*) FILTER (WHERE details->>'outcome' = 'applied'),
                   count(*) FILTER (WHERE details->>'outcome' = 'duplicate')
            FROM sync_events WHERE webhook_id LIKE %s GROUP BY webhook_id
            """,
            (f"msg\\_{prefix}\\_%",),
        ).fetchall()
        deliveries = conn.execute(
            "SELECT count(*) FROM webhook_deliveries WHERE webhook_id LIKE %s", (f"msg\\_{prefix}\\_%",)
        ).fetchone()[0]
    return {
        "ids_with_events": len(rows),
        "applied_events": sum(r[1] for r in rows),
        "ids_applied_more_than_once": sum(1 for r in rows if r[1] > 1),
        "duplicate_events": sum(r[2] for r in rows),
        "delivery_rows": deliveries,
    }


def floor_requests(reqs: list[Req]) -> list[Req]:
    """The same signed deliveries addressed to the floor app."""
    return [Req(r.method, FLOOR_PATH, r.body, r.headers, r.tag) for r in reqs]


def run(quick: bool) -> dict[str, Any]:
    duration = 5 if quick else 10
    latency_duration = 5 if quick else 15
    burst = 500 if quick else 2000
    site = setup_data()
    api_key = site["api_key"]
    gunicorn, base = common.start_gunicorn("gunicorn-webhooks")
    try:
        trivial = [Req("GET", "/bench/trivial")]
        log("warming up")
        run_open_loop(base, signed_requests(api_key, 200, "warm"), rate=100, duration=2)
        run_open_loop(base, floor_requests(signed_requests(api_key, 200, "warmfloor")), rate=100, duration=2)
        run_open_loop(base, trivial * 200, rate=100, duration=2)

        log(f"sustained: wrk {duration}s each, interleaved twice: trivial / floor / service")
        sustained = interleaved_wrk(
            base,
            [
                ("trivial", lambda _n: trivial * 200_000),
                ("floor", lambda n: floor_requests(signed_requests(api_key, 60_000, f"floor{n}"))),
                ("service", lambda n: signed_requests(api_key, 60_000, f"sustained{n}")),
            ],
            duration,
            gunicorn.pid,
        )
        wh = sustained["service"]
        sustained_db = {n: applied_counts(f"sustained{n}") for n in range(2)}

        offered = max(1.0, wh["rate"] / 2)
        common.settle_database()  # no autovacuum or checkpoint due from the sustained runs' writes
        log(
            f"latency at a fixed offered rate of {offered:.0f}/s for {latency_duration}s each route,"
            f" interleaved in {LATENCY_ROUNDS} rounds"
        )
        fixed = interleaved_open_loop(
            base,
            [
                ("service", lambda count, n: signed_requests(api_key, count, "fixed", start=n * 1_000_000)),
                (
                    "floor",
                    lambda count, n: floor_requests(signed_requests(api_key, count, "fixedfloor", start=n * 1_000_000)),
                ),
                ("trivial", lambda count, _n: trivial * count),
            ],
            offered,
            latency_duration,
            rounds=LATENCY_ROUNDS,
        )
        wl = fixed["service"]
        fixed_db = applied_counts("fixed")

        log(f"burst: {burst} deliveries + {burst // 10} concurrent duplicates")
        originals = signed_requests(api_key, burst, "burst")
        reqs: list[Req] = []
        for i, r in enumerate(originals):
            reqs.append(r)
            if i % 10 == 0:
                reqs.append(r)  # the same delivery again, right behind it: a retry racing the original
        b = run_burst(base, reqs, concurrency=32)
        ok_ids = {tag for tag, status in b["results"] if status == 200}
        answers_200 = sum(1 for _tag, status in b["results"] if status == 200)
        other = {str(s) for _t, s in b["results"] if s != 200}
        burst_db = applied_counts("burst")
    finally:
        gunicorn.stop()

    burst_ok = (
        burst_db["applied_events"] == len(ok_ids)
        and burst_db["ids_applied_more_than_once"] == 0
        and burst_db["delivery_rows"] == len(ok_ids)
        and answers_200 == len(reqs)
    )
    floor_ratio = ratio(wh["rate"], sustained["floor"]["rate"])
    cpu_ms = wh["cpu_ms_per_request"].get("gunicorn")
    print_table(
        f"Webhook ingestion (gunicorn {common.WEB_WORKERS} sync workers, PostgreSQL; wrk -t2 -c8 {duration}s x2 "
        f"interleaved; latency at {offered:.0f} req/s offered, half the service's sustained rate)",
        THREE_WAY_HEADERS,
        three_way_rows(
            sustained,
            fixed,
            [
                ("trivial", "trivial route (GET /bench/trivial)"),
                ("floor", "webhook floor (Flask + psycopg)"),
                ("service", "webhooks/wordpress/status/ (signed)"),
            ],
        ),
    )
    print_table(
        "Webhook burst: nothing lost, nothing doubled",
        [
            "requests",
            "200 answers",
            "unique ids answered 200",
            "applied events",
            "ids applied twice",
            "delivery rows",
            "duplicates answered as duplicate",
            "ok",
        ],
        [
            [
                len(reqs),
                answers_200,
                len(ok_ids),
                burst_db["applied_events"],
                burst_db["ids_applied_more_than_once"],
                burst_db["delivery_rows"],
                burst_db["duplicate_events"],
                burst_ok,
            ]
        ],
    )
    print(p99_per_round_line(fixed, [("trivial", "trivial"), ("floor", "floor"), ("service", "service")]))
    print_table(
        "CPU milliseconds per answered request during the sustained runs, by process",
        CPU_PER_REQUEST_HEADERS,
        cpu_per_request_rows([(label, sustained[key]) for key, label in ROUTE_LABELS]),
    )
    result = {
        "load_tools": {
            "sustained": "wrk 4 (-t2 -c8), bench/wrk/replay.lua replaying precomputed signed requests, each once; "
            "trivial / floor / service interleaved, twice",
            "fixed_rate": "bench/loadgen.py asyncio open loop, latency from each request's due time",
            "burst": "bench/loadgen.py asyncio, 32 in flight, every answer read",
        },
        "gunicorn_workers": common.WEB_WORKERS,
        "trivial_rate": sustained["trivial"]["rate"],
        "floor_rate": sustained["floor"]["rate"],
        "sustained": sustained,
        "webhook_sustained": wh,
        "webhook_sustained_db": sustained_db,
        "webhook_ratio": ratio(wh["rate"], sustained["trivial"]["rate"]),
        "webhook_floor_ratio": floor_ratio,
        "webhook_cpu_ms": cpu_ms,
        "offered_rate": offered,
        "fixed": {k: {kk: vv for kk, vv in v.items() if kk != "answered"} for k, v in fixed.items()},
        "webhook_fixed": {k: v for k, v in wl.items() if k != "answered"},
        "webhook_fixed_db": fixed_db,
        "burst": {
            "requests": len(reqs),
            "answers_200": answers_200,
            "unique_ids_200": len(ok_ids),
            "other_statuses": sorted(other),
            "seconds": b["seconds"],
            **burst_db,
            "ok": burst_ok,
        },
        "targets": {
            "floor_ratio_ge_0_6": (floor_ratio or 0) >= 0.6,
            "cpu_ms_le_2_5": (cpu_ms or 1e9) <= 2.5,
            "p99_lt_25ms_at_half_rate": (wl["latency_ms"]["p99"] or 1e9) < 25,
            "zero_lost_or_doubled": burst_ok,
        },
    }
    write_result("webhooks", result)
    return result
