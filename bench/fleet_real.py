"""Realistic fleet benchmark (issue 22): ``scripts/bench.sh --only fleet_real``.

``BENCH_FLEETX_SITES`` (10,000) emulated sites (``bench/fleet_wp.py``, one port each) answer in
150-400 ms per request; 5 % are slow (2-5 s), 1 % hang until the client's read timeout, 1 %
answer 429 with ``Retry-After`` and 1 % refuse the credentials. Every integration is on a
1-minute schedule (first due within the first minute) and has a watermark already, so every
scheduled run is an incremental pull that finds nothing new (one post type selected). Two worker
processes, started as two "hosts" (distinct node names, their own environment and instance
directory: ``host-a@fleet``, ``host-b@fleet``), run the default layout (no -Q, threads pool,
WORKER_CONCURRENCY) against one PostgreSQL database and one Redis; a real ``celery beat`` ticks
every ``BENCH_FLEETX_TICK`` s. After ``BENCH_FLEETX_WARM`` s of warm-up the measured phase lasts
``BENCH_FLEETX_MEASURE`` s. The bench runs its own Redis server (loopback, free port), so the
Redis command counts are this run's alone.

Reported in one run: syncs per minute, the share of the healthy sites synced within their
interval, dispatch lag due -> running p50/p99, per finished sync the worker CPU, PostgreSQL CPU,
PostgreSQL transactions, Redis commands and WordPress requests, worker RSS and in-flight syncs
per process (``celery inspect active`` every few seconds), failures by kind of site, and the most
requests any site had in flight (politeness).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from datetime import timedelta
from typing import Any

import psutil
import redis
import requests

from . import common, fleet
from .common import log, print_table, write_result

HEALTHY = (None, "slow")  # the sites expected to sync (slow ones too: 2-5 s is inside a minute)


def _settings(quick: bool) -> dict[str, Any]:
    env = os.environ.get
    return {
        "sites": int(env("BENCH_FLEETX_SITES", "1000" if quick else "10000")),
        "workers": int(env("BENCH_FLEETX_WORKERS", "2")),
        "concurrency": int(env("BENCH_FLEETX_CONCURRENCY", "200")),
        "latency_range": env("BENCH_FLEETX_LATENCY", "0.15,0.4"),
        "faults": env("BENCH_FLEETX_FAULTS", "slow=0.05,hang=0.01,rate_limited=0.01,auth=0.01"),
        "interval_minutes": 1,
        "tick": float(env("BENCH_FLEETX_TICK", "1")),
        "warm": float(env("BENCH_FLEETX_WARM", "60" if quick else "90")),
        "measure": float(env("BENCH_FLEETX_MEASURE", "60" if quick else "180")),
        "read_timeout": float(env("WP_READ_TIMEOUT", "30")),
        "wp_concurrency": int(env("WP_CONCURRENCY", "4")),
    }


def start_redis() -> tuple[common.Proc, str]:
    port = common.free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = common.start_process(
        "fleetx-redis", [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    )
    url = f"redis://127.0.0.1:{port}/0"
    common.wait_until(lambda: _ping(url), 30, "the bench Redis", proc=proc)
    return proc, url


def _ping(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url).ping())
    except redis.RedisError:
        return False


def start_emulator(settings: dict[str, Any]) -> tuple[fleet.Emulator, dict[int, str]]:
    cmd = [str(common.VENV_BIN / "python"), "-m", "bench.fleet_wp", "--sites", str(settings["sites"])]
    cmd += ["--posts", "5", "--latency-range", settings["latency_range"], "--faults", settings["faults"]]
    # A hung site answers just after the client gave up (as PHP's max_execution_time ends it), so
    # the politeness figure counts the requests a client still waits on, not the abandoned ones.
    cmd += ["--hang-seconds", str(settings["read_timeout"] + 1)]
    proc = common.start_process("fleetx-wp", cmd)
    found: dict[str, Any] = {}

    def ready() -> bool:
        for line in proc.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                found.update(json.loads(line))
                return True
        return False

    common.wait_until(ready, 300, "the WordPress emulator", proc=proc)
    return fleet.Emulator(proc, found["admin"], found["sites"]), {int(k): v for k, v in found["faults"].items()}


def start_hosts(settings: dict[str, Any]) -> list[common.Proc]:
    """The worker processes, each as its own "host": node name, instance directory, environment."""
    procs = []
    for index in range(settings["workers"]):
        host = f"host-{chr(ord('a') + index)}"
        instance = tempfile.mkdtemp(prefix=f"fleetx-{host}-")
        env = common.service_env(
            WORKER_CONCURRENCY=str(settings["concurrency"]), INSTANCE_PATH=instance, BENCH_HOST=host
        )
        cmd = [str(common.VENV_BIN / "celery"), "-A", "celery_app", "worker", "--loglevel", "INFO"]
        cmd += ["-n", f"{host}@fleet", "--without-gossip", "--without-mingle"]  # no -Q, no --pool
        proc = common.start_process(f"fleetx-{host}", cmd, env=env)
        procs.append(proc)
    for proc in procs:
        common.wait_until(
            lambda p=proc: " ready." in p.log_path.read_text(errors="replace"), 120, "a worker", proc=proc
        )
    return procs


def prepare(app: Any, ids: list[int]) -> None:
    """A watermark for every integration (its next pulls are incremental and find nothing), no
    reconcile due during the run, and the 1-minute schedule with first runs spread over a minute."""
    from integration_service.extensions import db
    from integration_service.models import SiteIntegration, utcnow
    from integration_service.timeutil import iso

    now = utcnow()
    with app.app_context():
        db.session.execute(
            db.update(SiteIntegration).values(
                pull_watermarks={"post": iso(now)},
                last_pull_modified_gmt=now,
                next_reconcile_at=now + timedelta(days=30),
            )
        )
        db.session.commit()
    fleet.set_schedule(app, ids, 60, interval=1)


class Sampler:
    """Every ``interval`` s: RSS of each worker process (with its children) and its active tasks."""

    def __init__(self, app: Any, workers: list[common.Proc], interval: float = 5.0) -> None:
        self.celery = app.extensions["celery"]
        self.workers = workers
        self.interval = interval
        self.rss: dict[str, list[float]] = {w.name: [] for w in workers}
        self.active: dict[str, list[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for worker in self.workers:
                with contextlib.suppress(psutil.Error):
                    root = psutil.Process(worker.pid)
                    rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
                    self.rss[worker.name].append(rss / 2**20)
            with contextlib.suppress(Exception):
                answer = self.celery.control.inspect(timeout=2).active() or {}
                for node, tasks in answer.items():
                    self.active.setdefault(node, []).append(len(tasks))

    def summary(self) -> dict[str, Any]:
        return {
            "rss_mb_max": {k: round(max(v), 1) for k, v in self.rss.items() if v},
            "in_flight_max": {k: max(v) for k, v in self.active.items() if v},
            "in_flight_mean": {k: round(statistics.mean(v), 1) for k, v in self.active.items() if v},
        }


def _requests_by_site(emulator: fleet.Emulator) -> dict[int, int]:
    return {item["site"]: item["requests"] for item in emulator.stats()["sites"]}


def measure(
    app: Any, settings: dict[str, Any], workers: list[common.Proc], beat: common.Proc, emulator: fleet.Emulator,
    redis_proc: common.Proc, faults: dict[int, str], site_of: dict[int, int],
) -> dict[str, Any]:  # fmt: skip
    from integration_service.models import FINAL_JOB_STATUSES as FINAL
    from integration_service.models import utcnow

    seconds = settings["measure"]
    started = utcnow()
    redis0, pg0, wp0 = _redis_commands(), fleet._pg_counters(), _requests_by_site(emulator)
    roots = {w.name: w.pid for w in workers} | {"beat": beat.pid, "emulator": emulator.proc.pid}
    roots["redis (bench)"] = redis_proc.pid
    with common.CpuMeter(roots=roots) as meter, Sampler(app, workers) as sampler:
        time.sleep(seconds)
    ended = utcnow()
    redis1, pg1, wp1 = _redis_commands(), fleet._pg_counters(), _requests_by_site(emulator)
    rows = fleet.scheduled_events(app, started - timedelta(minutes=10))
    done = [r for r in rows if r.status in FINAL and r.finished_at and started <= r.finished_at <= ended]
    begun = [r for r in rows if r.started_at and started <= r.started_at <= ended]
    lags = sorted(lag for r in begun if (lag := fleet._due_lag(r)) is not None)
    healthy_lags = sorted(
        lag
        for r in begun
        if faults.get(site_of[r.integration_id]) in HEALTHY and (lag := fleet._due_lag(r)) is not None
    )
    by_kind: dict[str, dict[str, int]] = {}
    for r in done:
        kind = faults.get(site_of[r.integration_id]) or "healthy"
        by_kind.setdefault(kind, {}).setdefault(r.status, 0)
        by_kind[kind][r.status] += 1
    cpu = meter.summary()["cpu_s"]
    worker_cpu = sum(cpu.get(w.name, 0.0) for w in workers)
    n = max(1, len(done))
    healthy_done = [r for r in done if faults.get(site_of[r.integration_id]) in HEALTHY]
    wp_healthy = sum(wp1[site] - wp0.get(site, 0) for site in wp1 if faults.get(site) in HEALTHY)
    return {
        "seconds": seconds,
        "finished": len(done),
        "by_kind": by_kind,
        "syncs_per_minute": len(done) / seconds * 60,
        "successful_per_minute": sum(1 for r in done if r.status == "success") / seconds * 60,
        "lag_p50_s": fleet._percentile(lags, 50),
        "lag_p99_s": fleet._percentile(lags, 99),
        "healthy_lag_p50_s": fleet._percentile(healthy_lags, 50),
        "healthy_lag_p99_s": fleet._percentile(healthy_lags, 99),
        "within_interval": within_interval(done, faults, site_of, started, ended, settings),
        "cpu_s": cpu,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "per_sync": {
            "worker_cpu_s": worker_cpu / n,
            "postgres_cpu_s": cpu.get("postgresql (bench_db)", 0.0) / n,
            "beat_cpu_s": cpu.get("beat", 0.0) / n,
            "redis_cpu_s": cpu.get("redis (bench)", 0.0) / n,
            "emulator_cpu_s": cpu.get("emulator", 0.0) / n,
            "pg_transactions": (pg1["transactions"] - pg0["transactions"]) / n,
            "pg_rows_read": (pg1["rows_read"] - pg0["rows_read"]) / n,
            "pg_rows_written": (pg1["rows_written"] - pg0["rows_written"]) / n,
            "redis_commands": (redis1 - redis0) / n,
            "wp_requests_healthy": wp_healthy / max(1, len(healthy_done)),
        },
        "processes": sampler.summary(),
    }


def within_interval(
    done: list[Any], faults: dict[int, str], site_of: dict[int, int], start: Any, end: Any, settings: dict[str, Any]
) -> dict[str, Any]:
    """A healthy site is synced within its interval when no gap between its successful syncs'
    finishes (window edges included) is longer than the jittered interval plus 30 s (the lag
    goal): its content was never staler than that."""
    allowed = settings["interval_minutes"] * 60 * 1.1 + 30
    finishes: dict[int, list[Any]] = {}
    for r in done:
        if r.status == "success":
            finishes.setdefault(r.integration_id, []).append(r.finished_at)
    healthy = [i for i, site in site_of.items() if faults.get(site) in HEALTHY]
    ok, gaps = 0, []
    for integration_id in healthy:
        moments = sorted([start, *finishes.get(integration_id, []), end])
        worst = max((b - a).total_seconds() for a, b in itertools.pairwise(moments))
        gaps.append(worst)
        ok += worst <= allowed
    gaps.sort()
    return {
        "healthy_sites": len(healthy),
        "ok": ok,
        "share": ok / max(1, len(healthy)),
        "allowed_gap_s": allowed,
        "gap_p50_s": fleet._percentile(gaps, 50),
        "gap_p99_s": fleet._percentile(gaps, 99),
    }


def _redis_commands() -> int:
    return int(redis.Redis.from_url(common.BENCH_REDIS_URL).info("stats")["total_commands_processed"])


def run(quick: bool) -> dict[str, Any]:
    settings = _settings(quick)
    log(f"fleet_real: {json.dumps(settings)}")
    results: dict[str, Any] = {"settings": settings, "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    redis_proc, url = start_redis()
    common.BENCH_REDIS_URL = url  # every process of this run: workers, beat, this one
    common.reset_database()
    app = common.bench_app()
    emulator, faults = start_emulator(settings)
    ids = fleet.create_integrations(app, emulator.sites, "fleetx")
    site_of = dict(zip(ids, range(len(ids)), strict=True))
    prepare(app, ids)
    workers = start_hosts(settings)
    beat = fleet.start_beat(settings["tick"])
    log(f"fleet_real: {len(ids)} sites, {len(workers)} hosts x {settings['concurrency']}; warm-up {settings['warm']} s")
    time.sleep(settings["warm"])
    results["measured"] = measure(app, settings, workers, beat, emulator, redis_proc, faults, site_of)
    log(f"fleet_real: {json.dumps(results['measured'])}")
    results["max_in_flight_per_site"] = emulator.stats()["max_in_flight"]
    results["faults"] = {kind: sum(1 for f in faults.values() if f == kind) for kind in set(faults.values())}
    beat.stop()
    fleet.unschedule(app)
    results["left_running_after_beat"] = fleet.drain(app, 60)
    for worker in workers:
        worker.stop()
    with contextlib.suppress(requests.RequestException):
        emulator.proc.stop()
    redis_proc.stop()
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print_table(
        f"Fleet (issue 22): {settings['sites']} sites, {settings['workers']} hosts x threads "
        f"{settings['concurrency']}, "
        f"1-minute interval, load average {results['load_average_start']} -> {results['load_average_end']}",
        ["figure", "goal", "measured", "met"],
        table_rows(results),
    )
    write_result("fleet_real", results)
    return results


def table_rows(results: dict[str, Any]) -> list[list[Any]]:
    s, m = results["settings"], results["measured"]
    per, procs, within = m["per_sync"], m["processes"], m["within_interval"]
    healthy_failed = sum(v for k, v in m["by_kind"].get("healthy", {}).items() if k != "success")
    healthy_failed += sum(v for k, v in m["by_kind"].get("slow", {}).items() if k != "success")
    rss = max(procs["rss_mb_max"].values(), default=0)
    flight = max(procs["in_flight_max"].values(), default=0)
    return [
        ["syncs finished per minute (offered)", f"{s['sites']}", f"{m['syncs_per_minute']:.0f}", None],
        [
            "healthy sites synced within their interval",
            ">= 99 %",
            f"{within['share'] * 100:.1f} % ({within['ok']}/{within['healthy_sites']}), gap p99 "
            f"{common.fmt(within['gap_p99_s'])} s",
            within["share"] >= 0.99,
        ],
        [
            "lag due -> running p50 / p99 (healthy sites)",
            "p99 < 30 s",
            f"{common.fmt(m['healthy_lag_p50_s'])} s / {common.fmt(m['healthy_lag_p99_s'])} s",
            (m["healthy_lag_p99_s"] or 1e9) < 30,
        ],
        ["worker CPU per sync", "<= 8 ms", f"{per['worker_cpu_s'] * 1000:.1f} ms", per["worker_cpu_s"] <= 0.008],
        ["PostgreSQL CPU per sync", "-", f"{per['postgres_cpu_s'] * 1000:.1f} ms", None],
        ["PostgreSQL transactions per sync", "<= 3", f"{per['pg_transactions']:.1f}", per["pg_transactions"] <= 3],
        ["Redis commands per sync", "<= 20", f"{per['redis_commands']:.0f}", per["redis_commands"] <= 20],
        ["WordPress requests per no-change sync", "1", f"{per['wp_requests_healthy']:.2f}",
         per["wp_requests_healthy"] <= 1.05],
        ["worker RSS per process (max)", "<= 400 MB", f"{rss:.0f} MB", rss <= 400],
        ["in-flight syncs per process (max / mean)", ">= 200", f"{flight} / {procs['in_flight_mean']}", flight >= 200],
        ["failed syncs of healthy sites", "0", str(healthy_failed), healthy_failed == 0],
        ["outcomes by kind of site", "-", json.dumps(m["by_kind"]), None],
        ["most requests in flight to one site", f"<= {s['wp_concurrency']}", str(results["max_in_flight_per_site"]),
         results["max_in_flight_per_site"] <= s["wp_concurrency"]],
    ]  # fmt: skip
