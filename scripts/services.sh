#!/usr/bin/env bash
# Make sure the local PostgreSQL, Redis and MariaDB are up (start each one that is down).
set -euo pipefail

wait_for() {  # wait_for NAME COMMAND...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "services: $name did not come up" >&2
  return 1
}

ensure_postgres() {
  if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    echo "services: starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432 -q
  fi
}

ensure_redis() {
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "services: starting Redis" >&2
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping
  fi
}

ensure_mariadb() {
  if ! mysqladmin -h 127.0.0.1 -uroot ping >/dev/null 2>&1; then
    echo "services: starting MariaDB" >&2
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_for MariaDB mysqladmin -h 127.0.0.1 -uroot ping
  fi
}

for service in "${@:-postgres redis mariadb}"; do
  for name in $service; do "ensure_$name"; done
done
