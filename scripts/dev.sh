#!/usr/bin/env bash
# Set up and run the service: the web app on http://127.0.0.1:${PORT:-5000} and a Celery worker.
# With no DATABASE_URL / REDIS_URL it runs on SQLite and a SQLite-backed broker (no servers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export FLASK_APP=wsgi
.venv/bin/flask --app wsgi db upgrade

.venv/bin/celery -A celery_app worker --loglevel=INFO --queues=sync,short --concurrency="${WORKER_CONCURRENCY:-2}" &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM

.venv/bin/gunicorn --bind "127.0.0.1:${PORT:-5000}" --workers "${WEB_WORKERS:-2}" --access-logfile - wsgi:app
