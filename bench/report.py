"""Render the latest results in ``bench/results/*.json`` as Markdown (the tables of BENCHMARKS.md).

python -m bench.report > /tmp/tables.md
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .common import CPU_PER_REQUEST_HEADERS, RESULTS_DIR, cpu_per_request_rows, fmt
from .loadgen import THREE_WAY_HEADERS, three_way_rows

CMD_FULL = "scripts/bench.sh --only {name}"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return None if "error" in data else data


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def render() -> str:
    parts: list[str] = []
    any_result = next((r for r in (_load(n) for n in ("pull", "push", "webhooks", "polling")) if r), None)
    if any_result:
        m = any_result["machine"]
        parts.append(
            f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB RAM, Python {m['python']}, "
            f"kernel {m['kernel']}. Run finished {any_result['finished_at'][:19]} UTC."
        )
    from .run import summary_rows

    # From the latest result of each benchmark (a later --only run replaces only its own file).
    target_rows = summary_rows({n: r for n in ("pull", "push", "webhooks", "polling") if (r := _load(n))})
    if target_rows:
        parts.append("### Targets\n")
        parts.append(table(["target", "measured", "goal", "met"], target_rows))

    pull = _load("pull")
    if pull:
        rows = []
        for n, r in pull["results"].items():
            svc = r["service"]
            rows.append(
                [
                    n,
                    r["raw_mean_posts_per_s"],
                    r["raw_sequential"]["posts_per_s"],
                    r["naive"]["posts_per_s"],
                    svc["posts_per_s"],
                    r["c_over_a"],
                    r["c_over_b"],
                    f"{svc['seconds']:.1f} s ({svc['status']}, {svc['stored']} stored)",
                ]
            )
        parts.append("\n### 1. Pull sync (posts/s) — `scripts/bench.sh --only pull`\n")
        parts.append(
            table(
                [
                    "N",
                    "(a) raw, 4 in flight",
                    "raw, sequential",
                    "(b) naive",
                    "(c) service",
                    "c/a",
                    "c/b",
                    "service wall",
                ],
                rows,
            )
        )
        incr = pull.get("incremental") or {}
        if incr:
            parts.append(f"\n### 2. Incremental re-sync (N={pull['sizes'][-1]}) — `scripts/bench.sh --only pull`\n")
            parts.append(
                table(
                    ["case", "wall (POST → done seen)", "job time", "WordPress requests", "by kind", "changed/stored"],
                    [
                        [
                            k,
                            f"{v['seconds']:.2f} s",
                            f"{(v['job_seconds'] or 0):.2f} s",
                            v["wordpress_requests"]["total"],
                            ", ".join(f"{a}: {b}" for a, b in v["wordpress_requests"]["by_kind"].items()),
                            f"{v['changed_posts']}/{v['changed_posts_stored']}",
                        ]
                        for k, v in incr.items()
                    ],
                )
            )
        parts.append("\n### 3. Worker memory during the pull (MB) — `scripts/bench.sh --only pull`\n")
        parts.append(
            table(
                ["N", "idle tree", "peak tree", "idle largest pool process", "peak largest pool process"],
                [
                    [
                        n,
                        r["service"]["idle_tree_mb"],
                        r["service"]["rss"].get("peak_tree_mb"),
                        r["service"]["idle_largest_mb"],
                        r["service"]["rss"].get("peak_largest_process_mb"),
                    ]
                    for n, r in pull["results"].items()
                ],
            )
        )
        if pull.get("memory_growth"):
            g = pull["memory_growth"]
            parts.append(
                f"\nGrowth of the peak from N={pull['sizes'][0]} to N={pull['sizes'][-1]}: "
                f"tree {g['tree_mb']:+.1f} MB, largest pool process {g['largest_process_mb']:+.1f} MB."
            )

    if pull:
        rows = []
        for n, r in pull["results"].items():
            posts = max(1, r["raw"]["posts"])
            for label, phase in (("(a) raw", r["raw"]), ("(b) naive", r["naive"]), ("(c) service", r["service"])):
                cpu = phase.get("cpu") or {}
                rows.append(
                    [
                        n,
                        label,
                        cpu.get("wall_s"),
                        cpu.get("machine_busy_pct"),
                        ", ".join(
                            f"{k} {1000 * v / posts:.2f}"
                            for k, v in (cpu.get("cpu_s") or {}).items()
                            if 1000 * v / posts >= 0.01
                        ),
                    ]
                )
        parts.append("\nCPU seconds per 1,000 posts during each pull, by process (`CpuMeter`):\n")
        parts.append(table(["N", "phase", "wall s", "machine busy %", "CPU s per 1,000 posts"], rows))
        prof = pull.get("profiled_run")
        if prof and prof.get("profile"):
            sync = prof["profile"].get("sync_thread") or {}
            parts.append(
                f"\nProfiled run (py-spy, a separate pull of N={pull['sizes'][-1]}, {prof['posts_per_s']:.0f} posts/s "
                f"under the profiler): the sync job's own thread, wall clock ({sync.get('samples')} samples):\n"
            )
            parts.append(
                table(
                    ["share", "what the job thread was doing"],
                    [[f"{row['pct']}%", row["phase"]] for row in sync.get("phases", [])],
                )
            )

    push = _load("push")
    if push:
        parts.append(f"\n### 4. Push ({push['contents']} contents, posts/s) — `scripts/bench.sh --only push`\n")
        svc = push["service"]
        parts.append(
            table(
                ["raw loop (mean of 2)", "service", "service / raw", "pushed", "job status"],
                [
                    [
                        push["raw_posts_per_s"],
                        svc["posts_per_s"],
                        push["ratio"],
                        svc["details"].get("pushed"),
                        svc["status"],
                    ]
                ],
            )
        )
        side = push.get("wordpress_side") or {}
        if side:
            parts.append("\nWordPress's own time per `POST /wp/v2/posts` (bench mu-plugin log):\n")
            parts.append(
                table(
                    ["phase", "POSTs", "WordPress ms/POST", "wp-cron runs"],
                    [
                        [k, v["posts"]["count"], v["posts"]["wp_ms_mean"], v["wp_cron"]["count"]]
                        for k, v in side.items()
                    ],
                )
            )

    if push and push.get("cpu"):
        count = push["contents"]
        parts.append("\nCPU seconds per post by process (`CpuMeter`):\n")
        parts.append(
            table(
                ["phase", "wall s", "machine busy %", "CPU s per post"],
                [
                    [
                        label,
                        c["wall_s"],
                        c["machine_busy_pct"],
                        ", ".join(f"{k} {v / count:.3f}" for k, v in c["cpu_s"].items() if v / count >= 0.001),
                    ]
                    for label, c in push["cpu"].items()
                ],
            )
        )

    hooks = _load("webhooks")
    if hooks:
        parts.append(
            f"\n### 5. Webhook ingestion — `scripts/bench.sh --only webhooks`\n\n"
            f"gunicorn {hooks['gunicorn_workers']} sync workers; sustained: wrk -t2 -c8 replaying precomputed signed "
            f"requests; latency: asyncio open loop at {hooks['offered_rate']:.0f} req/s (half the sustained rate).\n"
        )
        parts.append(_three_way(hooks, "webhook floor (Flask + psycopg)", "POST webhooks/wordpress/status/"))
        b = hooks["burst"]
        parts.append(
            f"\nBurst: {b['requests']} requests ({b['unique_ids_200']} unique webhook-ids, the rest concurrent "
            f"duplicates), {b['answers_200']} answered 200; {b['applied_events']} applied events, "
            f"{b['ids_applied_more_than_once']} ids applied twice, {b['delivery_rows']} delivery rows, "
            f"{b['duplicate_events']} answered as duplicates: {'nothing lost or doubled' if b['ok'] else 'MISMATCH'}."
        )

    poll = _load("polling")
    if poll:
        parts.append(
            f"\n### 6. Polling `sync_status` — `scripts/bench.sh --only polling`\n\n"
            f"{poll['data']['integrations']} integrations, {poll['data']['sync_events']:,} SyncEvents; owner token; "
            f"latency at {poll['offered_rate']:.0f} req/s (half the sustained rate).\n"
        )
        parts.append(_three_way(poll, "polling floor (Flask + psycopg)", "GET .../sync_status/"))
    pg = _load("pull_pg")
    if pg:
        parts.append(
            "\n### 7. PostgreSQL time per post in a first full pull — `scripts/bench.sh --only pull_pg`\n\n"
            "The service's pull fed by in-memory pages of 100 posts (only the storing side); each row a new "
            "site, right after an `ANALYZE` that does not know it. Statement time measured around each "
            "cursor execute; rows read from `pg_stat_user_tables` (index fetches + sequential reads).\n"
        )
        parts.append(
            table(
                ["lookup", "N", "PG ms/post", "lookup ms/post", "INSERT ms/post", "contents rows read/post", "posts/s"],
                [
                    [
                        "before: IN (...), no ANALYZE" if r["legacy"] else "unnest + LATERAL probe, ANALYZE",
                        r["n"],
                        r["pg_ms_per_post"],
                        r["lookup_ms_per_post"],
                        r["insert_ms_per_post"],
                        r["contents_rows_read_per_post"],
                        r["posts_per_s"],
                    ]
                    for r in pg["results"]
                ],
            )
        )
        parts.append(f"\nPG ms/post at N={pg['sizes'][-1]} / N={pg['sizes'][0]}: {pg['pg_per_post_growth']:.2f}x.")
    return "\n".join(parts) + "\n"


def _three_way(data: dict[str, Any], floor_label: str, service_label: str) -> str:
    """The trivial / floor / service table (rates, latency at the fixed rate, CPU ms per request),
    then the CPU per request of every process."""
    labels = [("trivial", "GET /bench/trivial"), ("floor", floor_label), ("service", service_label)]
    out = table(THREE_WAY_HEADERS, three_way_rows(data["sustained"], data["fixed"], labels))
    out += "\n\nCPU milliseconds per answered request during the sustained runs, all processes (`CpuMeter`):\n\n"
    return out + _cpu_rows([(label, data["sustained"][key]) for key, label in labels])


def _cpu_rows(runs: list[tuple[str, dict[str, Any]]]) -> str:
    return table(CPU_PER_REQUEST_HEADERS, cpu_per_request_rows(runs))


if __name__ == "__main__":
    print(render())
