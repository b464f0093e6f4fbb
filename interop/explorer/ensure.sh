#!/usr/bin/env bash
# What the explorer's browser test needs, installed idempotently (quiet when already there):
# Debian's `chromium` (apt-get, when /usr/bin/chromium is missing; the test never downloads a
# browser) and the pinned puppeteer-core of package-lock.json (`npm ci`, stamped by the lock
# file's hash, like interop/x402/ensure-npm.sh).
set -euo pipefail
cd "$(dirname "$0")"

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $CHROMIUM is missing and apt-get is not available: install Chromium and set CHROMIUM=/path/to/it" >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  echo "==> apt-get install chromium (the explorer's browser test)" >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >&2 \
    || { $SUDO apt-get update -q >&2 && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >&2; }
fi

need() { command -v "$1" >/dev/null 2>&1; }
if ! need node || ! need npm; then
  echo "error: node and npm are needed for the explorer's browser test (Node 18 or later)." >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "error: node $(node --version) is too old for puppeteer-core 24 (it needs Node 18+)." >&2
  exit 1
fi

STAMP=node_modules/.lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -d node_modules/puppeteer-core ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "==> npm ci (explorer browser test: pinned puppeteer-core, no browser download)" >&2
PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2
echo "$want" >"$STAMP"
