#!/usr/bin/env bash
# Run the benchmark suite (bench/): prints the tables and writes JSON to bench/results/.
#   scripts/bench.sh            full run (N = 1,000 and 10,000 posts; ~5 minutes, more the first
#                               time: the 10,000-post WordPress site is seeded once and kept)
#   scripts/bench.sh --quick    small sizes and short runs (a smoke check, ~2 minutes)
#   scripts/bench.sh --only webhooks polling
# Needs PostgreSQL, Redis and MariaDB on loopback (started here when down) and wrk (installed
# with apt-get when missing). Uses its own database bench_db and Redis database 10.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --dev
scripts/services.sh postgres redis mariadb
if ! command -v wrk >/dev/null 2>&1; then
  echo "bench: installing wrk" >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq wrk >&2 ||
    { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2; }
fi
exec .venv/bin/python -m bench.run "$@"
