"""Fleet benchmark (issue 11): many integrations, K worker processes, sites served by the asyncio
WordPress emulator (``bench/fleet_wp.py``, one port per site).

A real ``celery beat`` runs the dispatcher (``integration.dispatch_due_syncs``) every
``BENCH_FLEET_TICK`` seconds; the figures come from the SyncEvents (``details.due_at`` ->
``started_at``), the emulator's per-site log and a CPU meter:

1. onboarding wave: every integration (interval 15 minutes) first due at a random moment of a
   ``BENCH_FLEET_WINDOW``-second window (a rate the workers keep up with): dispatch lag
   due -> running p50/p99 of these first (full) pulls;
2. sustained: every interval set to 1 minute (first due within the next minute), the schedule
   runs by itself (incremental pulls every minute, jittered) for
   ``BENCH_FLEET_SUSTAIN`` seconds: incremental syncs per minute, their lag, CPU per sync of the
   workers and PostgreSQL, PostgreSQL transactions and Redis commands per sync;
3. politeness: the most requests the emulator ever saw in flight to one site (<= WP_CONCURRENCY);
4. fairness: one big site plus many small sites started together (manual syncs), against the
   small sites alone, with slices (SYNC_SLICE_PAGES) on and off;
5. real WordPress sanity sample (``BENCH_FLEET_REAL_SITES``, sites started with
   ``scripts/wordpress-e2e.sh``): synced by the same workers, stored rows checked;
6. scheduler tick: ``dispatch_due`` timed in this process against the bench database at 1,000
   and 10,000 integrations (real enqueues), with its statements per tick: the steady due count,
   and a backlog drained one SCHEDULER_BATCH_SIZE per tick (the dispatcher task chains the next
   tick while a batch is full), with the dispatch rate. ``--only fleet_tick`` runs this alone.

Parameterised (``BENCH_FLEET_SITES``, ``_WORKERS``, ``_POSTS``, ``_BIG``, ``_SMALL``,
``_LATENCY``, ``_TICK``, ``_WINDOW``, ``_SUSTAIN``, ``_SLICE``, ``_TICK_SIZES``) and bounded:
each phase stops waiting after ``BENCH_FLEET_PHASE_TIMEOUT`` seconds and reports what finished.
"""

from __future__ import annotations

import json
import logging
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
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


def create_integrations(
    app: Any, urls: list[str], name: str, credentials: list[dict[str, str]] | None = None
) -> list[int]:
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
                credentials_json={
                    "api_key": site["api_key"],
                    **(credentials[i] if credentials else {"username": "admin", "app_password": APP_PASSWORD}),
                },
            )
            for i, site in enumerate(tenant.sites)
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
        "tick": float(env("BENCH_FLEET_TICK", "1")),
        "window": float(env("BENCH_FLEET_WINDOW", "30" if quick else "120")),
        "sustain": float(env("BENCH_FLEET_SUSTAIN", "60" if quick else "150")),
        "slice_pages": int(env("BENCH_FLEET_SLICE", "50")),
        "tick_sizes": [int(x) for x in env("BENCH_FLEET_TICK_SIZES", "1000,10000").split(",")],
        "real_sites": [x for x in env("BENCH_FLEET_REAL_SITES", "fleet_wp1,fleet_wp2").split(",") if x],
        "phase_timeout": float(env("BENCH_FLEET_PHASE_TIMEOUT", "180" if quick else "300")),
        "wp_concurrency": int(env("WP_CONCURRENCY", "4")),
    }


# ------------------------------------------------------------------------- processes


def start_workers(count: int, slice_pages: int) -> list[common.Proc]:
    env = {"SYNC_SLICE_PAGES": str(slice_pages)}
    return [common.start_worker(f"fleet-worker-{i}", concurrency=1, env=env) for i in range(count)]


def start_beat(tick: float) -> common.Proc:
    """A real ``celery beat`` with the project's beat_schedule (the dispatcher every ``tick`` s)."""
    schedule_file = Path(tempfile.mkdtemp(prefix="fleet-beat-")) / "celerybeat-schedule"
    proc = common.start_process(
        "fleet-beat",
        [str(common.VENV_BIN / "celery"), "-A", "celery_app", "beat", "--loglevel", "INFO", "-s", str(schedule_file)],
        env=common.service_env(SCHEDULER_TICK_SECONDS=str(tick)),
    )
    common.wait_until(
        lambda: "beat: Starting" in proc.log_path.read_text(errors="replace"), 60, "celery beat", proc=proc
    )
    return proc


# -------------------------------------------------------------------------- schedules


def set_schedule(app: Any, ids: list[int], window: float, interval: int = 1) -> None:
    """Every integration on an ``interval``-minute schedule, first due at a random moment of the
    next ``window`` seconds (what the API's jitter does over one interval); no reconcile sweep."""
    from sqlalchemy import update

    from integration_service.extensions import db
    from integration_service.models import SiteIntegration, utcnow

    rng = random.Random(11)
    now = utcnow()
    rows = [
        {
            "id": i,
            "sync_interval_minutes": interval,
            "next_sync_at": now + timedelta(seconds=rng.uniform(0, window)),
            "next_reconcile_at": now + timedelta(days=30),
        }
        for i in ids
    ]
    with app.app_context():
        db.session.execute(update(SiteIntegration), rows)
        db.session.commit()


def unschedule(app: Any) -> None:
    from integration_service.extensions import db
    from integration_service.models import SiteIntegration

    with app.app_context():
        db.session.execute(db.update(SiteIntegration).values(sync_interval_minutes=None, next_sync_at=None))
        db.session.commit()


def scheduled_events(app: Any, since: datetime) -> list[Any]:
    from integration_service.extensions import db
    from integration_service.models import SyncEvent

    with app.app_context():
        rows = db.session.execute(
            db.select(
                SyncEvent.id,
                SyncEvent.integration_id,
                SyncEvent.status,
                SyncEvent.details,
                SyncEvent.created_at,
                SyncEvent.started_at,
                SyncEvent.finished_at,
            ).where(SyncEvent.created_at >= since)
        ).all()
        db.session.commit()
    return [r for r in rows if (r.details or {}).get("trigger") == "scheduled"]


def _due_lag(row: Any) -> float | None:
    due = row.details.get("due_at")
    if not due or row.started_at is None:
        return None
    due_at = datetime.fromisoformat(due)
    due_at = due_at if due_at.tzinfo else due_at.replace(tzinfo=UTC)
    return (row.started_at - due_at).total_seconds()


def onboarding_wave(app: Any, ids: list[int], settings: dict[str, Any]) -> dict[str, Any]:
    """Phase 1: every integration first due within the window; wait for each one's first scheduled
    job to finish (bounded); lag due -> running of those first jobs."""
    from integration_service.models import FINAL_JOB_STATUSES as FINAL
    from integration_service.models import utcnow

    since = utcnow() - timedelta(seconds=1)
    # A 15-minute interval: no second round joins the wave (the lag is the one of free workers).
    set_schedule(app, ids, settings["window"], interval=15)
    deadline = time.monotonic() + settings["window"] + settings["phase_timeout"]
    first: dict[int, Any] = {}
    while time.monotonic() < deadline:
        first = {}
        for row in sorted(scheduled_events(app, since), key=lambda r: r.id):
            first.setdefault(row.integration_id, row)
        if len(first) >= len(ids) and all(r.status in FINAL for r in first.values()):
            break
        time.sleep(2)
    rows = list(first.values())
    lags = sorted(lag for lag in map(_due_lag, rows) if lag is not None)
    done = [r for r in rows if r.status in FINAL and r.finished_at]
    return {
        "integrations": len(ids),
        "dispatched": len(rows),
        "finished": len(done),
        "failed": sum(1 for r in done if r.status != "success"),
        "unfinished": len(ids) - len(done),
        "lag_p50_s": _percentile(lags, 50),
        "lag_p99_s": _percentile(lags, 99),
        "lag_max_s": lags[-1] if lags else None,
    }


def _redis_commands() -> int:
    import redis

    return int(redis.Redis.from_url(common.BENCH_REDIS_URL).info("stats")["total_commands_processed"])


def _pg_counters() -> dict[str, int]:
    with common.pg_connect() as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback, tup_returned + tup_fetched, tup_inserted + tup_updated + tup_deleted"
            " FROM pg_stat_database WHERE datname = %s",
            (common.BENCH_DB_NAME,),
        ).fetchone()
    return {"transactions": int(row[0]), "rows_read": int(row[1]), "rows_written": int(row[2])}


def sustained(app: Any, workers: list[common.Proc], beat: common.Proc, seconds: float) -> dict[str, Any]:
    """Phase 2: the schedule runs by itself (1-minute interval, incremental pulls) for ``seconds``;
    syncs finished per minute, their lag, and what each cost the workers, PostgreSQL and Redis."""
    from integration_service.models import FINAL_JOB_STATUSES as FINAL
    from integration_service.models import utcnow

    started = utcnow()
    redis0, pg0 = _redis_commands(), _pg_counters()
    roots = {f"worker {i}": w.pid for i, w in enumerate(workers)} | {"beat": beat.pid}
    with common.CpuMeter(roots=roots) as meter:
        time.sleep(seconds)
    ended = utcnow()
    redis1, pg1 = _redis_commands(), _pg_counters()
    rows = [r for r in scheduled_events(app, started - timedelta(minutes=5)) if not r.details.get("full")]
    done = [r for r in rows if r.status in FINAL and r.finished_at and started <= r.finished_at <= ended]
    lags = sorted(
        lag for r in rows if r.started_at and started <= r.started_at <= ended and (lag := _due_lag(r)) is not None
    )
    cpu = meter.summary()["cpu_s"]
    worker_cpu = sum(v for k, v in cpu.items() if k.startswith("worker"))
    n = max(1, len(done))
    return {
        "seconds": seconds,
        "finished": len(done),
        "failed": sum(1 for r in done if r.status != "success"),
        "syncs_per_minute": len(done) / seconds * 60,
        "lag_p50_s": _percentile(lags, 50),
        "lag_p99_s": _percentile(lags, 99),
        "cpu_s": cpu,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "per_sync": {
            "worker_cpu_s": worker_cpu / n,
            "postgres_cpu_s": cpu.get("postgresql (bench_db)", 0.0) / n,
            "beat_cpu_s": cpu.get("beat", 0.0) / n,
            "pg_transactions": (pg1["transactions"] - pg0["transactions"]) / n,
            "pg_rows_read": (pg1["rows_read"] - pg0["rows_read"]) / n,
            "pg_rows_written": (pg1["rows_written"] - pg0["rows_written"]) / n,
            # The Redis server's own counter: includes the other users of this server (shared box).
            "redis_commands": (redis1 - redis0) / n,
        },
    }


def drain(app: Any, timeout: float) -> int:
    """Wait until no job is queued or running (bounded); returns how many still are."""
    from integration_service.extensions import db
    from integration_service.models import JobStatus, SyncEvent

    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            left = db.session.scalar(
                db.select(db.func.count(SyncEvent.id)).where(
                    SyncEvent.status.in_([JobStatus.queued, JobStatus.running])
                )
            )
            db.session.commit()
        if not left or time.monotonic() > deadline:
            return int(left or 0)
        time.sleep(1)


# --------------------------------------------------------------------------- fairness


def fairness(app: Any, small_ids: list[int], big_id: int, timeout: float) -> dict[str, Any]:
    """The big site and the small ones started together (manual full pulls)."""
    events = trigger(app, [big_id, *small_ids], full=True)
    together = wait_for(app, events, timeout, done_ids=events[1:])
    return {"small_with_big": together, "big_event": events[0]}


# ----------------------------------------------------------------------- real WordPress


def real_sites(app: Any, names: list[str], timeout: float) -> dict[str, Any]:
    """Sync a few real WordPress sites (scripts/wordpress-e2e.sh) with the same workers and
    check every published post was stored."""
    from integration_service.extensions import db
    from integration_service.models import Content

    sites = []
    for name in names:
        path = Path(os.environ.get("WP_E2E_DIR", "/tmp/igny8-wp-e2e")) / name / "site.json"
        if path.exists():
            sites.append(json.loads(path.read_text()))
    if not sites:
        return {"sites": 0, "note": "no real WordPress site started (scripts/wordpress-e2e.sh start --name ...)"}
    live = []
    for site in sites:
        try:
            answer = requests.get(f"{site['url']}/wp-json/wp/v2/posts", params={"per_page": 1}, timeout=10)
            live.append((site, int(answer.headers["X-WP-Total"])))
        except (requests.RequestException, KeyError, ValueError):
            log(f"fleet: real site {site['name']} does not answer; left out")
    if not live:
        return {"sites": 0, "note": "the real WordPress sites do not answer"}
    ids = create_integrations(
        app,
        [site["url"] for site, _ in live],
        "real",
        credentials=[{"username": site["admin_user"], "app_password": site["app_password"]} for site, _ in live],
    )
    result = wait_for(app, trigger(app, ids, full=True), timeout)
    checks = []
    with app.app_context():
        for integration_id, (site, expected) in zip(ids, live, strict=True):
            integration_site = db.session.execute(
                db.text("SELECT site_id FROM site_integrations WHERE id = :id"), {"id": integration_id}
            ).scalar_one()
            stored = db.session.scalar(
                db.select(db.func.count(Content.id)).where(
                    Content.site_id == integration_site, Content.external_id.is_not(None)
                )
            )
            checks.append(
                {"site": site["name"], "published_posts": expected, "stored": stored, "ok": stored >= expected}
            )
        db.session.commit()
    return {"sites": len(live), "sync": result, "checks": checks, "ok": all(c["ok"] for c in checks)}


# ---------------------------------------------------------------------------- the tick


def _timed_ticks(app: Any, due: int, repeats: int) -> dict[str, Any]:
    """``repeats`` times: make ``due`` integrations due, then drain them as the dispatcher task
    does, one tick (``schedule.dispatch_due``) after another while a tick claims a full batch.
    Each tick is timed and its statements counted; a drain's total gives the dispatch rate."""
    from sqlalchemy import event

    from integration_service.extensions import db
    from integration_service.models import SiteIntegration, SyncEvent
    from integration_service.sync import schedule

    limit = int(app.config["SCHEDULER_BATCH_SIZE"])
    statements: list[str] = []
    count = _counter(statements)
    timings, counts, dispatched, drains, chain_lengths = [], [], [], [], []
    for _ in range(repeats):
        db.session.execute(db.delete(SyncEvent).where(SyncEvent.status == "queued"))
        chosen = db.select(SiteIntegration.id).order_by(SiteIntegration.id).limit(due).scalar_subquery()
        db.session.execute(db.update(SiteIntegration).values(next_sync_at=None))
        db.session.execute(
            db.update(SiteIntegration)
            .where(SiteIntegration.id.in_(chosen))
            .values(next_sync_at=db.func.now() - timedelta(minutes=1))
        )
        db.session.commit()
        drain_start, chain, drained = time.perf_counter(), 0, 0
        while True:
            statements.clear()
            event.listen(db.engine, "before_cursor_execute", count)
            t0 = time.perf_counter()
            outcome = schedule.dispatch_due(limit=limit)
            timings.append((time.perf_counter() - t0) * 1000)
            event.remove(db.engine, "before_cursor_execute", count)
            chain += 1
            drained += outcome["dispatched"]
            if outcome["due"]:
                counts.append(len(statements))
            if not schedule.batch_was_full(outcome, limit):
                break
        drains.append(time.perf_counter() - drain_start)
        dispatched.append(drained)
        chain_lengths.append(chain)
    db.session.execute(db.delete(SyncEvent).where(SyncEvent.status == "queued"))
    db.session.commit()
    return {
        "due": due,
        "batch": limit,
        "tick_ms": timings,
        "tick_ms_median": statistics.median(timings),
        "statements": counts,
        "dispatched": dispatched,
        "ticks_per_drain": chain_lengths,
        "drain_s": drains,
        "jobs_per_second": round(sum(dispatched) / sum(drains), 1),
    }


def _counter(statements: list[str]) -> Any:
    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    return count


def tick_time(app: Any, sizes: list[int], urls: list[str], repeats: int = 3) -> dict[str, Any]:
    """The dispatcher's own ticks (``schedule.dispatch_due``) timed in this process against the
    bench database with real enqueues, at each fleet size: *steady* = the due count of 15-minute
    intervals at the default 5 s tick (size * 5 / 900), *backlog* = BENCH_FLEET_BACKLOG (default
    1,000) due at once, drained a SCHEDULER_BATCH_SIZE per tick. Statements per tick counted at
    the driver."""

    from integration_service.extensions import db
    from integration_service.models import SiteIntegration

    backlog = int(os.environ.get("BENCH_FLEET_BACKLOG", "1000"))
    results = {}
    for size in sizes:
        with app.app_context():
            have = db.session.scalar(db.select(db.func.count(SiteIntegration.id)))
            db.session.commit()
        missing = size - have
        if missing > 0:
            create_integrations(app, [urls[i % len(urls)] for i in range(missing)], f"tick-{size}")
        steady = max(1, round(size * 5 / 900))
        with app.app_context():
            db.session.execute(
                db.update(SiteIntegration).values(
                    sync_interval_minutes=15, is_active=True, sync_enabled=True, paused_reason=None, next_sync_at=None
                )
            )
            db.session.commit()
            db.session.execute(db.text("ANALYZE site_integrations"))
            db.session.commit()
            _timed_ticks(app, 1, 1)  # warm-up: connections to PostgreSQL and the broker
            results[str(size)] = {
                "integrations": max(size, have),
                "steady": _timed_ticks(app, steady, repeats),
                "backlog": _timed_ticks(app, min(backlog, size), repeats),
            }
            db.session.execute(db.update(SiteIntegration).values(next_sync_at=None, sync_interval_minutes=None))
            db.session.commit()
        common.flush_redis()  # the enqueued tasks: no worker runs now
        log(f"fleet: tick at {size}: {json.dumps(results[str(size)])}")
    return results


# ---------------------------------------------------------------------------------- run


def run(quick: bool) -> dict[str, Any]:
    settings = _settings(quick)
    log(f"fleet: {json.dumps(settings)}")
    logging.getLogger("integration_service").setLevel(logging.WARNING)  # one line per queued sync otherwise
    common.reset_database()
    common.flush_redis()
    app = common.bench_app()
    timeout = settings["phase_timeout"]
    results: dict[str, Any] = {"settings": settings, "load_average_start": [round(x, 2) for x in os.getloadavg()]}

    fleet = start_emulator("fleet-wp", settings["sites"], settings["posts"], latency=settings["latency"])
    ids = create_integrations(app, fleet.sites, "fleet")
    workers = start_workers(settings["workers"], settings["slice_pages"])
    beat = start_beat(settings["tick"])
    log(f"fleet: {len(ids)} integrations, {len(workers)} workers, beat every {settings['tick']} s; onboarding wave")
    results["wave"] = onboarding_wave(app, ids, settings)
    log(f"fleet: wave {json.dumps(results['wave'])}; sustained {settings['sustain']} s")
    set_schedule(app, ids, 60)  # every site every minute from now on: 1,000 per minute offered
    results["sustained"] = sustained(app, workers, beat, settings["sustain"])
    log(f"fleet: sustained {json.dumps(results['sustained'])}")
    beat.stop()
    unschedule(app)
    results["left_running_after_beat"] = drain(app, 60)
    results["max_in_flight_per_site"] = fleet.stats()["max_in_flight"]

    log("fleet: real WordPress sample")
    results["real"] = real_sites(app, settings["real_sites"], timeout)
    log(f"fleet: real {json.dumps(results['real'])}")

    mixed = start_emulator(
        "fleet-wp-fairness", settings["small"], settings["posts"], big=settings["big"], latency=settings["latency"]
    )
    fair_ids = create_integrations(app, mixed.sites, "fairness")
    big_id, small_ids = fair_ids[0], fair_ids[1:]
    log(f"fleet: fairness baseline, {len(small_ids)} small sites alone")
    alone = wait_for(app, trigger(app, small_ids, full=True), timeout)
    log(f"fleet: small alone {json.dumps(alone)}; with the {settings['big']}-post site, slices on")
    on = fairness(app, small_ids, big_id, timeout)
    on["big"] = wait_for(app, [on["big_event"]], timeout)
    log(f"fleet: slices on {json.dumps(on)}")
    for worker in workers:
        worker.stop()
    drain(app, 1)
    workers = start_workers(settings["workers"], 0)
    off = fairness(app, small_ids, big_id, timeout)
    log(f"fleet: slices off {json.dumps(off)}")
    for worker in workers:
        worker.stop()
    results["fairness"] = {
        "small_alone": alone,
        "slices_on": on,
        "slices_off": off,
        "ratio_on": common.ratio(on["small_with_big"]["seconds"], alone["seconds"]),
        "ratio_off": common.ratio(off["small_with_big"]["seconds"], alone["seconds"]),
        "max_in_flight_per_site": mixed.stats()["max_in_flight"],
    }
    mixed.proc.stop()
    common.flush_redis()

    results["tick"] = tick_time(app, settings["tick_sizes"], fleet.sites)
    fleet.proc.stop()
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print_table(
        f"Fleet: {settings['sites']} sites, {settings['workers']} worker processes (concurrency 1), beat every "
        f"{settings['tick']} s, emulator latency {settings['latency'] * 1000:.0f} ms/request, load average "
        f"{results['load_average_start']} -> {results['load_average_end']}",
        ["figure", "goal", "measured", "met"],
        table_rows(results),
    )
    write_result("fleet", results)
    return results


def run_tick(quick: bool) -> dict[str, Any]:
    """Only phase 6, the dispatcher's ticks (no emulator, no workers): ``--only fleet_tick``."""
    settings = _settings(quick)
    logging.getLogger("integration_service").setLevel(logging.WARNING)
    common.reset_database()
    common.flush_redis()
    app = common.bench_app()
    results: dict[str, Any] = {"settings": settings, "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    # No worker runs and nothing calls these sites: their URLs are only stored.
    results["tick"] = tick_time(app, settings["tick_sizes"], [f"http://127.0.0.1:9/tick-{i}" for i in range(100)])
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print_table(
        f"Dispatcher ticks (SCHEDULER_BATCH_SIZE={app.config['SCHEDULER_BATCH_SIZE']}), load average "
        f"{results['load_average_start']} -> {results['load_average_end']}",
        ["figure", "goal", "measured", "met"],
        tick_rows(results),
    )
    write_result("fleet_tick", results)
    return results


def tick_rows(results: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for tick in results["tick"].values():
        for label in ("steady", "backlog"):
            case = tick[label]
            worst = max(case["tick_ms"])
            rows.append(
                [
                    f"scheduler tick, {tick['integrations']} integrations, {case['due']} due ({label}, "
                    f"batch {case['batch']}, {max(case['ticks_per_drain'])} ticks)",
                    "< 100 ms",
                    f"{common.fmt(case['tick_ms_median'])} ms (max {common.fmt(worst)}), "
                    f"{case['statements'][0]} stmts, {common.fmt(case['jobs_per_second'])} jobs/s",
                    worst < 100,
                ]
            )
    counts = {c for tick in results["tick"].values() for k in ("steady", "backlog") for c in tick[k]["statements"]}
    rows.append(["statements per tick", "constant", ", ".join(map(str, sorted(counts))), len(counts) == 1])
    return rows


def table_rows(results: dict[str, Any]) -> list[list[Any]]:
    settings, wave, sus, fair = results["settings"], results["wave"], results["sustained"], results["fairness"]
    rows = tick_rows(results)
    rows.append(
        [
            f"dispatch lag due -> running, onboarding wave ({wave['integrations']} over {settings['window']:.0f} s)",
            "p99 < 5 s",
            _pair(wave["lag_p50_s"], wave["lag_p99_s"]),
            (wave["lag_p99_s"] or 1e9) < 5,
        ]
    )
    rows.append(
        [
            "dispatch lag due -> running, sustained (1-min interval)",
            "p99 < 5 s",
            _pair(sus["lag_p50_s"], sus["lag_p99_s"]),
            (sus["lag_p99_s"] or 1e9) < 5,
        ]
    )
    rows.append(
        [
            "incremental syncs per minute, sustained",
            f"{settings['sites']} (every site each minute)",
            common.fmt(sus["syncs_per_minute"]),
            sus["syncs_per_minute"] >= settings["sites"] * 0.95,
        ]
    )
    per = sus["per_sync"]
    rows.append(
        [
            "per incremental sync: worker CPU / PG CPU / PG xacts / Redis cmds",
            "-",
            f"{per['worker_cpu_s'] * 1000:.0f} ms / {per['postgres_cpu_s'] * 1000:.0f} ms / "
            f"{per['pg_transactions']:.1f} / {per['redis_commands']:.0f}",
            "-",
        ]
    )
    worst = max(results["max_in_flight_per_site"], fair["max_in_flight_per_site"])
    rows.append(
        [
            "worst per-site concurrency (fleet, fairness sites)",
            f"<= {settings['wp_concurrency']}",
            f"{results['max_in_flight_per_site']}, {fair['max_in_flight_per_site']}",
            worst <= settings["wp_concurrency"],
        ]
    )
    alone = fair["small_alone"]["seconds"]
    for label, key, ratio in (("on", "slices_on", "ratio_on"), ("off", "slices_off", "ratio_off")):
        rows.append(
            [
                f"fairness, slices {label}: {settings['small']} small done alone / with {settings['big']}-post site",
                "< 2x",
                f"{common.fmt(alone)} s / {common.fmt(fair[key]['small_with_big']['seconds'])} s = "
                f"{common.fmt(fair[ratio])}x",
                (fair[ratio] or 1e9) < 2,
            ]
        )
    real = results["real"]
    rows.append(
        [
            f"real WordPress sample ({real.get('sites', 0)} sites): every post stored",
            "all",
            ", ".join(f"{c['site']} {c['stored']}/{c['published_posts']}" for c in real.get("checks", [])) or "-",
            real.get("ok", False),
        ]
    )
    problems = wave["failed"] + wave["unfinished"] + sus["failed"]
    problems += sum(
        fair[k]["small_with_big"]["failed"] + fair[k]["small_with_big"]["unfinished"]
        for k in ("slices_on", "slices_off")
    )
    rows.append(["failed or unfinished syncs", "0", str(problems), problems == 0])
    return rows


def _pair(a: float | None, b: float | None) -> str:
    return f"{common.fmt(a)} s / {common.fmt(b)} s"
