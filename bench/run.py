"""Run the benchmark suite: ``python -m bench.run [--quick] [--only NAME ...]``.

Benchmarks (each prints its table and writes ``bench/results/<name>.json``):

* ``pull``     — 1. pull sync vs raw download vs naive insert loop, 2. incremental re-sync,
                 3. worker peak RSS (N = 1,000 and 10,000; ``--quick``: N = 200)
* ``pull_pg``  — 7. PostgreSQL time per post of a first full pull, N = 1,000 / 10,000 / 50,000
                 (in-memory pages: only the storing side), before/after statements
* ``push``     — 4. push of 500 contents vs a raw loop of the same WordPress POSTs (quick: 100)
* ``publish`` — issue 21: 200 posts with a featured + 3 inline images from 50 distinct images,
                 naive loop vs raw floor vs the service's media preparation (quick: 40 / 10)
* ``webhooks`` — 5. signed webhook ingestion vs the trivial route, burst correctness
* ``polling``  — 6. sync_status with 1,000 integrations and 100,000 SyncEvents vs the trivial route
* ``fleet``    — issue 11: 1,000 sites on the asyncio WordPress emulator, 4 worker processes:
                 dispatch lag, syncs per minute, worst per-site concurrency, fairness (quick: 100)
* ``fleet_tick`` — the fleet benchmark's dispatcher ticks alone (no emulator, no workers)
* ``fleet_real`` — issue 22: 10,000 emulated sites at 150-400 ms with faulty ones, 1-minute
                 interval, 2 worker "hosts" on the threads pool (quick: 1,000 sites)

Needs PostgreSQL, Redis and MariaDB on loopback (``scripts/services.sh``), wrk and py-spy
(``scripts/bench.sh`` installs them). Uses its own PostgreSQL database ``bench_db`` (dropped and
recreated), Redis database 10 (flushed) and WordPress sites named ``bench-*`` (kept between runs;
``scripts/wordpress-e2e.sh stop --name bench-10000 --purge`` removes one). All load stays on
127.0.0.1; every process started is stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from typing import Any

from . import common
from .common import log, machine_info, print_table, write_result

BENCHMARKS = ("pull", "pull_pg", "push", "publish", "webhooks", "polling", "fleet", "fleet_tick", "fleet_real")


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _http_rows(
    name: str, data: dict[str, Any], floor_ratio: float | None, cpu_ms: float | None, cpu_goal: float, p99_goal: float
) -> list[list[Any]]:
    """The three targets of an HTTP route: rate against its floor, CPU per request, p99."""
    p99 = data["fixed"]["service"]["latency_ms"]["p99"]
    return [
        [f"{name}: service / floor rate", _fmt_ratio(floor_ratio), ">= 0.6", (floor_ratio or 0) >= 0.6],
        [
            f"{name}: gunicorn CPU ms per request",
            "-" if cpu_ms is None else f"{cpu_ms:.2f}",
            f"<= {cpu_goal}",
            (cpu_ms or 1e9) <= cpu_goal,
        ],
        [
            f"{name}: p99 at {data['offered_rate']:.0f}/s (half the sustained)",
            f"{p99:.1f} ms",
            f"< {p99_goal} ms",
            p99 < p99_goal,
        ],
    ]


def summary_rows(results: dict[str, Any]) -> list[list[Any]]:
    """One row per target of the issue: figure, target, met."""
    rows: list[list[Any]] = []
    pull = results.get("pull")
    if isinstance(pull, dict) and "results" in pull:
        n = str(pull["sizes"][-1])
        top = pull["results"][n]
        rows.append(
            [f"pull N={n}: service / raw (c/a)", _fmt_ratio(top["c_over_a"]), ">= 0.85", (top["c_over_a"] or 0) >= 0.85]
        )
        rows.append(
            [f"pull N={n}: service / naive (c/b)", _fmt_ratio(top["c_over_b"]), ">= 3", (top["c_over_b"] or 0) >= 3]
        )
        nothing = (pull.get("incremental") or {}).get("nothing changed")
        if nothing:
            kinds = nothing["wordpress_requests"]["by_kind"]
            lists = sum(v for k, v in kinds.items() if k.startswith("list"))
            rows.append(
                [
                    "incremental, nothing changed: list requests per post type",
                    f"{lists} / {len(pull['post_types'])} type(s) (+{kinds.get('discovery', 0)} discovery)",
                    "<= 1 per type",
                    lists <= len(pull["post_types"]),
                ]
            )
            rows.append(
                [
                    "incremental, nothing changed: wall time",
                    f"{nothing['seconds']:.2f} s",
                    "< 1 s",
                    nothing["seconds"] < 1,
                ]
            )
        growth = pull.get("memory_growth")
        if growth:
            worst = max(growth["tree_mb"], growth["largest_process_mb"])
            rows.append(["worker peak RSS growth N=1,000 -> 10,000", f"{worst:+.1f} MB", "< 25 MB", worst < 25])
    pull_pg = results.get("pull_pg")
    if isinstance(pull_pg, dict) and "pg_per_post_growth" in pull_pg:
        growth = pull_pg["pg_per_post_growth"]
        rows.append(
            [
                f"pull: PG ms/post N={pull_pg['sizes'][-1]} / N={pull_pg['sizes'][0]}",
                "-" if growth is None else f"{growth:.2f}x",
                "<= 1.5x",
                growth is not None and growth <= 1.5,
            ]
        )
    push = results.get("push")
    if isinstance(push, dict) and "ratio" in push:
        rows.append(["push: service / raw loop", _fmt_ratio(push["ratio"]), ">= 0.8", (push["ratio"] or 0) >= 0.8])
    publish = results.get("publish")
    if isinstance(publish, dict) and "service_over_floor" in publish:
        naive, floor_ = publish["service_over_naive"], publish["service_over_floor"]
        uploads, distinct = publish["wordpress_side"]["service"]["uploads"], publish["distinct_images"]
        growth = publish["service"]["rss_growth_mb"]
        rows += [
            ["publish: service / naive loop", _fmt_ratio(naive), ">= 3", (naive or 0) >= 3],
            ["publish: service / floor", _fmt_ratio(floor_), ">= 0.8", (floor_ or 0) >= 0.8],
            ["publish: uploads", f"{uploads} for {distinct} images", f"= {distinct}", uploads == distinct],
            ["publish: worker peak RSS growth", f"{growth:+.1f} MB", "< 50 MB", growth < 50],
        ]
    hooks = results.get("webhooks")
    if isinstance(hooks, dict) and "webhook_floor_ratio" in hooks:
        rows += _http_rows("webhooks", hooks, hooks["webhook_floor_ratio"], hooks["webhook_cpu_ms"], 2.5, 25)
        rows.append(
            [
                "webhooks: burst lost or doubled",
                "none" if hooks["burst"]["ok"] else "SOME",
                "zero",
                hooks["burst"]["ok"],
            ]
        )
    poll = results.get("polling")
    if isinstance(poll, dict) and "sync_status_floor_ratio" in poll:
        rows += _http_rows("polling", poll, poll["sync_status_floor_ratio"], poll["sync_status_cpu_ms"], 2, 15)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs (a smoke check)")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    parser.add_argument("--no-profile", action="store_true", help="do not run py-spy during the largest pull")
    args = parser.parse_args(argv)

    common.install_signal_handlers()
    common.RUN_MODE["quick"] = args.quick
    selected = args.only or list(BENCHMARKS)
    started = time.monotonic()
    log(f"machine: {json.dumps(machine_info())}")
    results: dict[str, Any] = {}
    failed = []
    load_before: dict[str, list[float]] = {}
    for name in selected:
        load_before[name] = [round(x, 2) for x in os.getloadavg()]
        log(f"=== {name} ({'quick' if args.quick else 'full'}; load average {load_before[name]}) ===")
        t0 = time.monotonic()
        try:
            if name == "pull":
                from . import pull

                results[name] = pull.run(args.quick, profile=not args.no_profile)
            elif name == "pull_pg":
                from . import pull_pg

                results[name] = pull_pg.run(args.quick)
            elif name == "push":
                from . import push

                results[name] = push.run(args.quick)
            elif name == "publish":
                from . import publish

                results[name] = publish.run(args.quick)
            elif name == "webhooks":
                from . import webhooks

                results[name] = webhooks.run(args.quick)
            elif name == "polling":
                from . import polling

                results[name] = polling.run(args.quick)
            elif name == "fleet":
                from . import fleet

                results[name] = fleet.run(args.quick)
            elif name == "fleet_tick":
                from . import fleet

                results[name] = fleet.run_tick(args.quick)
            elif name == "fleet_real":
                from . import fleet_real

                results[name] = fleet_real.run(args.quick)
        except Exception as exc:
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
        finally:
            common.stop_all()
        log(f"=== {name} took {time.monotonic() - t0:.0f}s ===")

    # Targets from this run's results, and from the latest saved result of the benchmarks that
    # this run left out (``--only``), so summary.json always covers every benchmark.
    latest = dict(results)
    for name in BENCHMARKS:
        path = common.RESULTS_DIR / f"{name}.json"
        if name not in latest and path.exists():
            saved = json.loads(path.read_text())
            if "error" not in saved and saved.get("quick") in (args.quick, None):
                latest[name] = saved
    from .wp import stop_started_sites

    stop_started_sites()
    rows = summary_rows(latest)
    if rows:
        print_table("Targets (issues 6 and 13)", ["target", "measured", "goal", "met"], rows)
    write_result(
        "summary",
        {
            "quick": args.quick,
            "benchmarks": selected,
            "failed": failed,
            "seconds": time.monotonic() - started,
            "load_average_before": load_before,
            "targets": [{"target": r[0], "measured": r[1], "goal": r[2], "met": r[3]} for r in rows],
            "targets_from": {n: ("this run" if n in results else "earlier run") for n in latest},
            "errors": {k: v["error"] for k, v in results.items() if isinstance(v, dict) and "error" in v},
        },
    )
    if failed:
        log(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
