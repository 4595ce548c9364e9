"""Load generators for the HTTP benchmarks, all on loopback and bounded in time and count.

* ``run_wrk``: closed loop at full speed (wrk with ``bench/wrk/replay.lua``), for the sustained
  rate. Every request comes from a precomputed file and is sent at most once.
* ``run_open_loop``: an asyncio generator that starts requests at a fixed offered rate, whatever
  the answers do, and measures each latency from the moment the request was *due* (so a stalled
  server cannot hide its queueing: no coordinated omission). wrk cannot hold a fixed rate; wrk2
  is not packaged here.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .common import LOG_DIR, REPO_ROOT

LUA_SCRIPT = REPO_ROOT / "bench" / "wrk" / "replay.lua"


@dataclass
class Req:
    method: str
    path: str
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    tag: str = ""  # e.g. the webhook-id, to match answers to requests

    def wrk_line(self) -> str:
        parts = [self.method, self.path, self.body, *(f"{k}: {v}" for k, v in self.headers.items())]
        if any("\t" in p or "\n" in p for p in parts):
            raise ValueError("request fields must not contain tabs or newlines")
        return "\t".join(parts)

    def raw(self, host: str) -> bytes:
        body = self.body.encode()
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        if body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def latency_summary(sorted_latencies: Sequence[float]) -> dict[str, float | None]:
    """p50 / p90 / p99 / max of latencies sorted ascending (ms)."""
    return {
        "p50": percentile(sorted_latencies, 50),
        "p90": percentile(sorted_latencies, 90),
        "p99": percentile(sorted_latencies, 99),
        "max": sorted_latencies[-1] if sorted_latencies else None,
    }


def run_wrk(
    base_url: str, reqs: Sequence[Req], duration: float, name: str, threads: int = 2, connections: int = 8
) -> dict[str, Any]:
    """Send ``reqs`` as fast as the server answers for ``duration`` seconds (or until used up)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    req_file = LOG_DIR / f"wrk-{name}.requests"
    req_file.write_text("\n".join(r.wrk_line() for r in reqs) + "\n")
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration:.0f}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        base_url,
        "--",
        str(req_file),
        str(threads),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    (LOG_DIR / f"wrk-{name}.out").write_text(proc.stdout + proc.stderr)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    data = json.loads(line[len("WRKJSON ") :])
    seconds = data["duration_us"] / 1e6
    data["seconds"] = seconds
    data["rate"] = data["status_2xx"] / seconds if seconds else None
    data["latency_ms"] = {k: v / 1000 for k, v in data.pop("latency_us").items()}
    data["threads"], data["connections"] = threads, connections
    req_file.unlink(missing_ok=True)
    return data


def metered_wrk(base_url: str, reqs: Sequence[Req], duration: float, name: str, gunicorn_pid: int) -> dict[str, Any]:
    """``run_wrk`` plus the CPU milliseconds per answered request, by process."""
    from .common import CpuMeter

    with CpuMeter(None, {"gunicorn": gunicorn_pid}) as meter:
        data = run_wrk(base_url, reqs, duration, name)
    cpu = meter.summary()
    answered = max(1, data["requests"])
    data["cpu_ms_per_request"] = {k: round(1000 * v / answered, 3) for k, v in cpu["cpu_s"].items()}
    data["machine_busy_pct"] = cpu["machine_busy_pct"]
    return data


async def _one(host: str, port: int, payload: bytes, timeout: float) -> int:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(payload)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        # Read to EOF: gunicorn's sync workers close the connection after each answer.
        await asyncio.wait_for(reader.read(), timeout)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def _open_loop(
    base_url: str, reqs: Sequence[Req], rate: float, duration: float, max_in_flight: int, timeout: float
) -> dict[str, Any]:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    count = min(len(reqs), int(rate * duration))
    payloads = [r.raw(f"{host}:{port}") for r in reqs[:count]]
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    answered: dict[str, int] = {}
    dropped = 0
    in_flight = 0
    tasks: list[asyncio.Task] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def fire(i: int, due: float) -> None:
        nonlocal in_flight
        in_flight += 1
        try:
            status = await _one(host, port, payloads[i], timeout)
            statuses[str(status)] += 1
            if reqs[i].tag:
                answered[reqs[i].tag] = status
        except (TimeoutError, OSError, IndexError, ValueError) as exc:
            statuses[type(exc).__name__] += 1
        finally:
            in_flight -= 1
        latencies.append((loop.time() - due) * 1000)

    for i in range(count):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if in_flight >= max_in_flight:
            dropped += 1  # the server is far behind: count it, do not pile up without bound
            continue
        tasks.append(asyncio.create_task(fire(i, due)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    latencies.sort()
    return {
        "offered_rate": rate,
        "sent": len(tasks),
        "dropped_over_in_flight_cap": dropped,
        "seconds": elapsed,
        "achieved_rate": len(tasks) / elapsed if elapsed else None,
        "statuses": dict(statuses),
        "latency_ms": latency_summary(latencies),
        "answered": answered,
        "latencies_ms": latencies,
    }


def run_open_loop(
    base_url: str, reqs: Sequence[Req], rate: float, duration: float, max_in_flight: int = 200, timeout: float = 10.0
) -> dict[str, Any]:
    """Start ``rate`` requests per second for ``duration`` seconds; latency is measured from
    each request's due time."""
    return asyncio.run(_open_loop(base_url, reqs, rate, duration, max_in_flight, timeout))


# The fixed-rate phase of each HTTP benchmark is split into this many interleaved rounds.
LATENCY_ROUNDS = 3


def interleaved_open_loop(
    base_url: str,
    phases: Sequence[tuple[str, Callable[[int, int], Sequence[Req]]]],
    rate: float,
    duration: float,
    rounds: int = LATENCY_ROUNDS,
) -> dict[str, dict[str, Any]]:
    """The fixed-rate latency runs of several routes, interleaved like the sustained ones:
    ``rounds`` runs of ``duration / rounds`` seconds each, A B C A B C ..., so a passing event on
    a shared machine (a checkpoint, another process) lands on every route alike instead of on
    whichever ran at that moment. ``phases`` maps a label to a function giving ``count`` requests
    for its ``round``-th run. Returns one result per label: percentiles over every request of its
    runs together, with each run's p99 and its answers (webhook-id -> status) merged."""
    slice_seconds = duration / rounds
    count = int(rate * slice_seconds) + 10
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _make in phases}
    for round_no in range(rounds):
        for label, make in phases:
            runs[label].append(run_open_loop(base_url, make(count, round_no), rate, slice_seconds))
    merged: dict[str, dict[str, Any]] = {}
    for label, items in runs.items():
        latencies = sorted(x for r in items for x in r.pop("latencies_ms"))
        statuses: Counter[str] = Counter()
        answered: dict[str, int] = {}
        for r in items:
            statuses.update(r["statuses"])
            answered.update(r.pop("answered"))
        seconds = sum(r["seconds"] for r in items)
        sent = sum(r["sent"] for r in items)
        merged[label] = {
            "offered_rate": rate,
            "sent": sent,
            "dropped_over_in_flight_cap": sum(r["dropped_over_in_flight_cap"] for r in items),
            "seconds": seconds,
            "achieved_rate": sent / seconds if seconds else None,
            "statuses": dict(statuses),
            "latency_ms": latency_summary(latencies),
            "p99_ms_per_run": [r["latency_ms"]["p99"] for r in items],
            "runs": items,
            "answered": answered,
        }
    return merged


async def _burst(base_url: str, reqs: Sequence[Req], concurrency: int, timeout: float) -> dict[str, Any]:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    sem = asyncio.Semaphore(concurrency)
    results: list[tuple[str, int | str]] = []

    async def fire(r: Req) -> None:
        async with sem:
            try:
                status: int | str = await _one(host, port, r.raw(f"{host}:{port}"), timeout)
            except (TimeoutError, OSError, IndexError, ValueError) as exc:
                status = type(exc).__name__
            results.append((r.tag, status))

    t0 = time.monotonic()
    await asyncio.gather(*(fire(r) for r in reqs))
    return {"seconds": time.monotonic() - t0, "results": results}


def run_burst(base_url: str, reqs: Sequence[Req], concurrency: int = 32, timeout: float = 30.0) -> dict[str, Any]:
    """Send every request once with ``concurrency`` in flight; returns (tag, status) pairs."""
    return asyncio.run(_burst(base_url, reqs, concurrency, timeout))


def write_lines(path: Path, lines: Sequence[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def interleaved_wrk(
    base_url: str,
    phases: Sequence[tuple[str, Callable[[int], Sequence[Req]]]],
    duration: float,
    gunicorn_pid: int,
    rounds: int = 2,
) -> dict[str, dict[str, Any]]:
    """Sustained runs of several routes in one interleaved sequence (A B C A B C ...), so that
    other load on a shared machine falls on every route alike; ``phases`` maps a label to a
    function giving the requests of its ``round``-th run (signed webhooks need fresh ids).
    Returns one merged result per label: rate over all its runs, CPU ms per request weighted by
    requests, the runs themselves."""
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _make in phases}
    for round_no in range(rounds):
        for label, make in phases:
            runs[label].append(metered_wrk(base_url, make(round_no), duration, f"{label}-{round_no + 1}", gunicorn_pid))
    merged: dict[str, dict[str, Any]] = {}
    for label, items in runs.items():
        answered = sum(max(1, r["requests"]) for r in items)
        cpu: dict[str, float] = {}
        for r in items:
            for k, v in (r.get("cpu_ms_per_request") or {}).items():
                cpu[k] = cpu.get(k, 0.0) + v * max(1, r["requests"]) / answered
        merged[label] = {
            "rate": sum(r["status_2xx"] for r in items) / sum(r["seconds"] for r in items),
            "requests": answered,
            "rates": [r["rate"] for r in items],
            "cpu_ms_per_request": {k: round(v, 3) for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])},
            "machine_busy_pct": round(sum(r["machine_busy_pct"] or 0 for r in items) / len(items), 1),
            "runs": items,
        }
    return merged


THREE_WAY_HEADERS = [
    "route",
    "sustained req/s",
    "p50 ms @fixed",
    "p99 ms @fixed",
    "CPU ms/req gunicorn",
    "CPU ms/req postgresql",
    "CPU ms/req redis",
    "service / floor",
]


def p99_per_round_line(fixed: dict[str, dict[str, Any]], labels: Sequence[tuple[str, str]]) -> str:
    """One line under a three-way table: each route's p99 in each interleaved round (the table's
    p99 is over all rounds' requests together)."""
    parts = [
        f"{label} " + " / ".join(f"{p:.1f}" for p in fixed[key].get("p99_ms_per_run", []) if p is not None)
        for key, label in labels
    ]
    return "p99 ms per interleaved round: " + "; ".join(parts)


def three_way_rows(
    sustained: dict[str, dict[str, Any]], fixed: dict[str, dict[str, Any]], labels: Sequence[tuple[str, str]]
) -> list[list[Any]]:
    """Rows of the trivial / floor / service table; the ratio is against the row keyed "floor"."""
    floor_rate = sustained["floor"]["rate"]
    rows = []
    for key, label in labels:
        cpu = sustained[key]["cpu_ms_per_request"]
        rows.append(
            [
                label,
                sustained[key]["rate"],
                fixed[key]["latency_ms"]["p50"],
                fixed[key]["latency_ms"]["p99"],
                cpu.get("gunicorn"),
                cpu.get("postgresql (bench_db)"),
                cpu.get("redis"),
                (sustained[key]["rate"] / floor_rate) if key == "service" and floor_rate else None,
            ]
        )
    return rows
