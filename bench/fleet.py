"""Fleet benchmark (issue 11): many integrations, K worker processes, sites served by the asyncio
WordPress emulator (``bench/fleet_wp.py``, one port per site).

Syncs are triggered through the service's request side (``SyncService.start_sync``, what
``POST .../sync/`` runs) until the scheduler lands; the figures then come from the SyncEvents
and the emulator's per-site log:

1. throughput: a full pull of every site, then an incremental pull of every site (what the
   schedule will run every interval): dispatch lag queued -> running p50/p99, syncs per minute;
2. politeness: the most requests the emulator ever saw in flight to one site (<= WP_CONCURRENCY);
3. fairness: one big site plus many small sites started together, against the small sites alone.

Parameterised (``BENCH_FLEET_SITES``, ``_WORKERS``, ``_POSTS``, ``_BIG``, ``_SMALL``,
``_LATENCY``) and bounded: each phase stops waiting after ``BENCH_FLEET_PHASE_TIMEOUT`` seconds
and reports what finished.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

import requests

from . import common
from .common import log, print_table, write_result

APP_PASSWORD = "abcd efgh ijkl mnop qrst uvwx"


@dataclass
class Emulator:
    proc: common.Proc
    admin: str
    sites: list[str]

    def stats(self) -> dict[str, Any]:
        return requests.get(f"{self.admin}/_stats", timeout=30).json()

    def reset(self) -> None:
        requests.post(f"{self.admin}/_reset", timeout=30)


def start_emulator(name: str, sites: int, posts: int, big: int = 0, latency: float = 0.0) -> Emulator:
    cmd = [str(common.VENV_BIN / "python"), "-m", "bench.fleet_wp", "--sites", str(sites), "--posts", str(posts)]
    cmd += ["--big", str(big), "--latency", str(latency)]
    proc = common.start_process(name, cmd)
    found: dict[str, Any] = {}

    def ready() -> bool:
        for line in proc.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                found.update(json.loads(line))
                return True
        return False

    common.wait_until(ready, 120, "the WordPress emulator", proc=proc)
    return Emulator(proc, found["admin"], found["sites"])


def create_integrations(app: Any, urls: list[str], name: str) -> list[int]:
    from integration_service.extensions import db
    from integration_service.models import PLATFORM_TYPES, SiteIntegration

    tenant = common.create_tenant(app, urls, name=name)
    with app.app_context():
        rows = [
            SiteIntegration(
                site_id=site["id"],
                platform="wordpress",
                platform_type=PLATFORM_TYPES["wordpress"],
                config_json={"site_url": site["url"], "sync_post_types": ["post"]},
                credentials_json={"api_key": site["api_key"], "username": "admin", "app_password": APP_PASSWORD},
            )
            for site in tenant.sites
        ]
        db.session.add_all(rows)
        db.session.commit()
        ids = [row.id for row in rows]
        account_id = tenant.account_id
    app.config.setdefault("BENCH_ACCOUNTS", {})
    for integration_id in ids:
        app.config["BENCH_ACCOUNTS"][integration_id] = account_id
    return ids


def trigger(app: Any, integration_ids: list[int], full: bool) -> list[int]:
    """Queue one sync per integration through the service's request side; returns event ids."""
    from integration_service.auth import Principal
    from integration_service.models import Role
    from integration_service.sync.requests import SyncService

    events = []
    with app.app_context():
        for integration_id in integration_ids:
            principal = Principal(account_id=app.config["BENCH_ACCOUNTS"][integration_id], role=Role.owner)
            reference = SyncService(principal).start_sync(integration_id, "from_external", full)
            events.append(int(reference["sync_event_id"]))
    return events


def wait_for(app: Any, event_ids: list[int], timeout: float, done_ids: list[int] | None = None) -> dict[str, Any]:
    """Wait until the events (or ``done_ids`` among them) are final; their timings."""
    from integration_service.extensions import db
    from integration_service.models import FINAL_JOB_STATUSES as FINAL
    from integration_service.models import SyncEvent

    target = set(done_ids or event_ids)
    deadline = time.monotonic() + timeout
    with app.app_context():
        while True:
            finished = db.session.scalar(
                db.select(db.func.count(SyncEvent.id)).where(SyncEvent.id.in_(target), SyncEvent.status.in_(FINAL))
            )
            db.session.commit()
            if finished >= len(target) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        rows = db.session.execute(
            db.select(
                SyncEvent.id, SyncEvent.status, SyncEvent.created_at, SyncEvent.started_at, SyncEvent.finished_at
            ).where(SyncEvent.id.in_(event_ids))
        ).all()
        db.session.commit()
    lags = sorted((r.started_at - r.created_at).total_seconds() for r in rows if r.started_at)
    done = [r for r in rows if r.status in FINAL and r.finished_at]
    in_target = [r for r in done if r.id in target]
    first = min((r.created_at for r in rows), default=None)
    last = max((r.finished_at for r in in_target), default=None)
    span = (last - first).total_seconds() if first and last else None
    return {
        "events": len(rows),
        "finished": len(done),
        "failed": sum(1 for r in done if r.status != "success"),
        "unfinished": len(target) - len(in_target),
        "lag_p50_s": _percentile(lags, 50),
        "lag_p99_s": _percentile(lags, 99),
        "seconds": span,
        "syncs_per_minute": (len(done) / span * 60) if span else None,
    }


def _percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def _settings(quick: bool) -> dict[str, Any]:
    env = os.environ.get
    return {
        "sites": int(env("BENCH_FLEET_SITES", "100" if quick else "1000")),
        "workers": int(env("BENCH_FLEET_WORKERS", "2" if quick else "4")),
        "posts": int(env("BENCH_FLEET_POSTS", "50")),
        "big": int(env("BENCH_FLEET_BIG", "2000" if quick else "20000")),
        "small": int(env("BENCH_FLEET_SMALL", "20" if quick else "100")),
        "latency": float(env("BENCH_FLEET_LATENCY", "0.005")),
        "phase_timeout": float(env("BENCH_FLEET_PHASE_TIMEOUT", "180" if quick else "900")),
        "wp_concurrency": int(env("WP_CONCURRENCY", "4")),
    }


def run(quick: bool) -> dict[str, Any]:
    settings = _settings(quick)
    log(f"fleet: {json.dumps(settings)}")
    logging.getLogger("integration_service").setLevel(logging.WARNING)  # one line per queued sync otherwise
    common.reset_database()
    common.flush_redis()
    app = common.bench_app()
    workers = [common.start_worker(f"fleet-worker-{i}", concurrency=1) for i in range(settings["workers"])]
    log(f"fleet: {len(workers)} worker processes up")
    results: dict[str, Any] = {"settings": settings}

    fleet = start_emulator("fleet-wp", settings["sites"], settings["posts"], latency=settings["latency"])
    ids = create_integrations(app, fleet.sites, "fleet")
    timeout = settings["phase_timeout"]
    log(f"fleet: {len(ids)} integrations; full pulls")
    results["full"] = wait_for(app, trigger(app, ids, full=True), timeout)
    log(f"fleet: full {json.dumps(results['full'])}; incremental pulls")
    results["incremental"] = wait_for(app, trigger(app, ids, full=False), timeout)
    log(f"fleet: incremental {json.dumps(results['incremental'])}")
    stats = fleet.stats()
    results["requests"] = stats["requests"]
    results["max_in_flight_per_site"] = stats["max_in_flight"]
    fleet.proc.stop()

    mixed = start_emulator(
        "fleet-wp-fairness", settings["small"], settings["posts"], big=settings["big"], latency=settings["latency"]
    )
    fair_ids = create_integrations(app, mixed.sites, "fairness")
    big_id, small_ids = fair_ids[0], fair_ids[1:]
    log(f"fleet: fairness baseline, {len(small_ids)} small sites alone")
    alone = wait_for(app, trigger(app, small_ids, full=True), timeout)
    log(f"fleet: small sites alone {json.dumps(alone)}; with the {settings['big']}-post site")
    events = trigger(app, [big_id, *small_ids], full=True)
    together = wait_for(app, events, timeout, done_ids=events[1:])
    big = wait_for(app, events[:1], timeout)
    results["fairness"] = {
        "small_alone": alone,
        "small_with_big": together,
        "big": big,
        "ratio": common.ratio(together["seconds"], alone["seconds"]),
        "max_in_flight_per_site": mixed.stats()["max_in_flight"],
    }
    mixed.proc.stop()
    for worker in workers:
        worker.stop()

    full, incr, fair = results["full"], results["incremental"], results["fairness"]
    rows = [
        ["dispatch lag queued -> running p50 / p99 (full burst)", _pair(full["lag_p50_s"], full["lag_p99_s"]), "-"],
        ["dispatch lag p50 / p99 (incremental burst)", _pair(incr["lag_p50_s"], incr["lag_p99_s"]), "p99 < 5 s*"],
        ["full syncs per minute", common.fmt(full["syncs_per_minute"]), "-"],
        ["incremental syncs per minute", common.fmt(incr["syncs_per_minute"]), "-"],
        [
            "worst per-site concurrency (fleet / fairness sites)",
            f"{results['max_in_flight_per_site']} / {fair['max_in_flight_per_site']}",
            f"<= {settings['wp_concurrency']}",
        ],
        [
            f"fairness: {len(small_ids)} small sites done, alone / with the {settings['big']}-post site",
            f"{common.fmt(alone['seconds'])} s / {common.fmt(together['seconds'])} s",
            "< 2x",
        ],
        ["fairness ratio", common.fmt(fair["ratio"]), "< 2"],
        ["failed or unfinished syncs", str(_problems(full, incr, alone, together, big)), "0"],
    ]
    print_table(
        f"Fleet: {settings['sites']} sites, {settings['workers']} workers, {settings['posts']} posts/site "
        "(* the goal is for free workers; these are bursts of every site at once)",
        ["figure", "measured", "goal"],
        rows,
    )
    write_result("fleet", results)
    return results


def _pair(a: float | None, b: float | None) -> str:
    return f"{common.fmt(a)} s / {common.fmt(b)} s"


def _problems(*phases: dict[str, Any]) -> int:
    return sum(phase["failed"] + phase["unfinished"] for phase in phases)
