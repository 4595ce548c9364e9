#!/usr/bin/env bash
# Create .venv and install the pinned requirements (skipped when they are already installed).
#   scripts/bootstrap.sh          the runtime set, requirements.txt (web, worker, beat, Flower, CLI)
#   scripts/bootstrap.sh --dev    requirements-dev.txt: the runtime set plus test, lint, type-check,
#                                 fuzz and profile tools
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
case ${1:-} in
  --dev) files=(requirements.txt requirements-dev.txt); wanted_file=requirements-dev.txt ;;
  "") files=(requirements.txt); wanted_file=requirements.txt ;;
  *) echo "bootstrap.sh: unknown option $1 (use --dev or nothing)" >&2; exit 2 ;;
esac
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
digest() { cat "$@" | sha256sum | cut -d' ' -f1; }
runtime=$(digest requirements.txt)
dev=$(digest requirements.txt requirements-dev.txt)
installed=$(cat .venv/.requirements.sha256 2>/dev/null || true)
# The dev set holds the runtime set: a venv bootstrapped with --dev serves dev.sh as it is.
if [ "${#files[@]}" -eq 1 ] && { [ "$installed" = "$runtime" ] || [ "$installed" = "dev:$dev" ]; }; then
  exit 0
fi
if [ "${#files[@]}" -eq 2 ] && [ "$installed" = "dev:$dev" ]; then
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip >&2
.venv/bin/python -m pip install -q -r "$wanted_file" >&2
if [ "${#files[@]}" -eq 2 ]; then echo "dev:$dev"; else echo "$runtime"; fi > .venv/.requirements.sha256
