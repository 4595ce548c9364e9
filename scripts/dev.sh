#!/usr/bin/env bash
# Set up and run the service for development: the web app on http://127.0.0.1:${PORT:-5000}, a
# Celery worker and Celery beat, optionally Flower.
#
#   scripts/dev.sh                 SQLite and a SQLite-backed broker under instance/ (no servers);
#                                  beat runs inside the worker (-B)
#   scripts/dev.sh --redis         Redis as broker and results (REDIS_URL, default
#                                  redis://127.0.0.1:6379/0, started when nothing answers there);
#                                  beat runs as its own process. Saves REDIS_URL in .env.
#   scripts/dev.sh --flower        also Flower on http://127.0.0.1:${FLOWER_PORT:-5555} (implies --redis)
#
# Settings come from the environment and from .env (ENV_FILE names another file), which the web
# app, worker, beat, Flower and `flask --app wsgi ...` all read: put DATABASE_URL (PostgreSQL is
# optional) and REDIS_URL there so a CLI in another terminal uses the same database.
# Ctrl-C (or SIGTERM to this script) stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
redis=0
flower=0
for arg in "$@"; do
  case $arg in
    --redis) redis=1 ;;
    --flower) flower=1; redis=1 ;;  # Flower needs Redis: the embedded broker carries no task events
    -h|--help) usage; exit 0 ;;
    *) echo "dev.sh: unknown option $arg" >&2; usage >&2; exit 2 ;;
  esac
done

env_file=${ENV_FILE:-.env}
env_value() {  # env_value NAME: the value .env gives NAME (empty when it does not)
  [ -f "$env_file" ] || return 0
  sed -n "s/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}$1=//p" "$env_file" | tail -n 1 | sed "s/^[\"']//; s/[\"']\$//"
}
# The same precedence as config.py: the environment first, then .env.
for name in DATABASE_URL REDIS_URL PORT FLOWER_PORT; do
  if [ -z "${!name:-}" ]; then
    value=$(env_value "$name")
    if [ -n "$value" ]; then export "$name=$value"; fi
  elif [ -z "$(env_value "$name")" ] && [[ $name == *_URL ]] && ! { [ "$name" = REDIS_URL ] && [ "$redis" = 1 ]; }; then
    echo "dev.sh: note: $name is set in this shell only; put it in $env_file so the flask CLI in" \
      "other terminals uses it too" >&2
  fi
done
PORT=${PORT:-5000}
FLOWER_PORT=${FLOWER_PORT:-5555}

if [ "$redis" = 1 ] && [ -z "$(env_value REDIS_URL)" ]; then
  export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
  printf 'REDIS_URL=%s\n' "$REDIS_URL" >> "$env_file"
  echo "dev.sh: saved REDIS_URL=$REDIS_URL in $env_file (remove the line to go back to the embedded broker)" >&2
fi

# Refuse a busy port before anything starts: a second dev.sh must not put a worker on the broker.
port_busy() {  # port_busy PORT: true when something listens on 127.0.0.1:PORT
  python3 -c 'import socket, sys
s = socket.socket()
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}
busy() {
  echo "dev.sh: port $1 is already in use (another scripts/dev.sh running?). Stop it, or pick a" \
    "free port: $2=<port> scripts/dev.sh" >&2
  exit 1
}
if port_busy "$PORT"; then busy "$PORT" PORT; fi
if [ "$flower" = 1 ] && port_busy "$FLOWER_PORT"; then busy "$FLOWER_PORT" FLOWER_PORT; fi

scripts/bootstrap.sh
if [ -n "${REDIS_URL:-}" ] && [[ $REDIS_URL == redis://127.0.0.1:6379* || $REDIS_URL == redis://localhost:6379* ]]; then
  scripts/services.sh redis
fi
.venv/bin/flask --app wsgi db upgrade

instance=${INSTANCE_PATH:-instance}
mkdir -p "$instance"
pids=()
# Each server in its own session, so a signal meant for this script reaches them only through
# stop_all (which can escalate: a prefork worker can hang in warm shutdown when a pool process
# dies holding the pool's queue lock).
# No --queues: the worker consumes every queue the service uses (config.SERVICE_QUEUES). Its pool
# and concurrency come from config.py: threads x WORKER_CONCURRENCY (200) on Redis, 2 prefork
# processes on the embedded SQLite setup.
worker_args=(--loglevel=INFO)
if [ -z "${REDIS_URL:-}" ]; then
  # One process serves beat on the embedded broker: a separate beat would be a second SQLite writer.
  worker_args+=(-B --schedule="$instance/celerybeat-schedule")
fi
setsid .venv/bin/celery -A celery_app worker "${worker_args[@]}" &
pids+=($!)
if [ -n "${REDIS_URL:-}" ]; then
  setsid .venv/bin/celery -A celery_app beat --loglevel=INFO --schedule="$instance/celerybeat-schedule" &
  pids+=($!)
fi
if [ "$flower" = 1 ]; then
  setsid .venv/bin/celery -A celery_app flower --address=127.0.0.1 --port="$FLOWER_PORT" &
  pids+=($!)
fi
setsid .venv/bin/gunicorn --config gunicorn.conf.py --bind "127.0.0.1:$PORT" --workers "${WEB_WORKERS:-2}" \
  --access-logfile - wsgi:app &
pids+=($!)

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
  for pid in "${pids[@]}"; do stop "$pid" & done
  wait
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Any one exiting stops the others.
wait -n "${pids[@]}"
