#!/usr/bin/env bash
# Set up and run the whole test suite: unit tests, integration tests (PostgreSQL, Redis, a real
# Celery worker) and end-to-end tests (a real WordPress on loopback).
#   TEST_BACKEND=sqlite scripts/test.sh   runs on SQLite with no services (integration and
#                                         end-to-end tests are skipped with a reason, and no
#                                         WordPress is touched, even one left running).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --dev

if [ "${TEST_BACKEND:-postgres}" = "sqlite" ]; then
  unset TEST_DATABASE_URL TEST_REDIS_URL
  export SKIP_SERVICES=1 SKIP_WORDPRESS=1
else
  scripts/services.sh postgres redis mariadb
  export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/integration_test}
  export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
  if [ -x scripts/wordpress-e2e.sh ] && [ -z "${SKIP_WORDPRESS:-}" ]; then
    # E2E_WP_NAME / E2E_WP_PORT (read by tests/e2e/conftest.py too) let two checkouts test side by side.
    scripts/wordpress-e2e.sh start --name "${E2E_WP_NAME:-e2e}" --port "${E2E_WP_PORT:-8881}" >/dev/null
  fi
  # The headless-browser test of /api/v1/docs (tests/test_docs_page.py).
  scripts/chromium.sh >/dev/null
fi

.venv/bin/ruff check .
.venv/bin/mypy  # [tool.mypy] in pyproject.toml: integration_service and workers
exec .venv/bin/python -m pytest "$@"
