#!/usr/bin/env bash
# Set up and run the service: the web app on http://127.0.0.1:${PORT:-5000} and a Celery worker.
# With no DATABASE_URL / REDIS_URL it runs on SQLite and a SQLite-backed broker (no servers).
# Ctrl-C (or SIGTERM to this script) stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/flask --app wsgi db upgrade

# Each server in its own session, so a signal meant for this script reaches them only through
# stop_all (which can escalate: a prefork worker can hang in warm shutdown when a pool process
# dies holding the pool's queue lock).
setsid .venv/bin/celery -A celery_app worker --loglevel=INFO --queues=sync,short \
  --concurrency="${WORKER_CONCURRENCY:-2}" &
worker=$!
setsid .venv/bin/gunicorn -c gunicorn.conf.py --bind "127.0.0.1:${PORT:-5000}" --workers "${WEB_WORKERS:-2}" \
  --access-logfile - wsgi:app &
web=$!

stop() {  # stop PID: SIGTERM, then SIGKILL to its whole process group after 15 s
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  echo "dev.sh: process $pid did not stop in 15 s; killing it" >&2
  kill -KILL -- "-$pid" 2>/dev/null || true
}
stop_all() {
  trap - EXIT INT TERM
  stop "$web" & stop "$worker" & wait
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Either one exiting stops the other.
wait -n "$web" "$worker"
