"""Cost of detecting dead pooled connections, per checkout (issue 20 item 3).

    .venv/bin/python -m bench.pool_checkout [DATABASE_URL] [--rounds N]

Checks a connection out of a one-connection pool and back in, N times, and prints the time per
checkout: without any check, with the service's socket poll (integration_service/dbpool.py), and
with SQLAlchemy's ``pool_pre_ping`` (a ``SELECT 1`` round trip). Each variant runs in 5
interleaved rounds; the median and the spread (min-max) across rounds are printed, so noise from
other work on the machine shows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from sqlalchemy import create_engine

from config import normalize_database_url
from integration_service import dbpool


def _engine(url: str, variant: str):
    engine = create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=variant == "pre_ping")
    if variant == "poll":
        dbpool.install(engine)
    with engine.connect():
        pass  # connected once, outside the measurement
    return engine


def _round(engine, rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        connection = engine.raw_connection()
        connection.close()  # back to the pool
    return (time.perf_counter() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "url", nargs="?", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()
    url = normalize_database_url(args.url)
    variants = ["none", "poll", "pre_ping"]
    engines = {variant: _engine(url, variant) for variant in variants}
    results: dict[str, list[float]] = {variant: [] for variant in variants}
    for _ in range(5):
        for variant in variants:
            results[variant].append(_round(engines[variant], args.rounds))
    print(f"{'variant':<10} {'µs/checkout (median)':>22} {'min-max':>16}")
    for variant in variants:
        values = results[variant]
        print(f"{variant:<10} {statistics.median(values):>22.2f} {min(values):>7.2f}-{max(values):<8.2f}")
    base = statistics.median(results["none"])
    for variant in ("poll", "pre_ping"):
        print(f"{variant}: +{statistics.median(results[variant]) - base:.2f} µs per checkout over none")


if __name__ == "__main__":
    main()
