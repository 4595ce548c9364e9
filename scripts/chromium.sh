#!/usr/bin/env bash
# Make sure Debian's chromium is installed (for the headless-browser test of /api/v1/docs);
# prints its path. Installs it with apt-get when missing and this runs as root.
set -euo pipefail
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; exit 0; fi
done
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium.sh: chromium is missing and cannot be installed (needs root and apt-get)" >&2
  exit 1
fi
echo "chromium.sh: installing Debian's chromium (first run only)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq chromium >&2
command -v chromium
