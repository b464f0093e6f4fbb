#!/usr/bin/env bash
# Installs the pinned npm packages of the x402 interop server (interop/x402/package-lock.json:
# @x402/express, @x402/core, express) with `npm ci`, idempotently: when node_modules was filled
# from the same lock file it returns at once, printing nothing.
set -euo pipefail
cd "$(dirname "$0")"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need node || ! need npm; then
  echo "error: node and npm are needed for the x402 interop test (Node 18 or later)." >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "error: node $(node --version) is too old for @x402/express (it needs fetch: Node 18+)." >&2
  exit 1
fi

STAMP=node_modules/.lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -d node_modules/@x402/express ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "==> npm ci (x402 interop server: pinned @x402/express, @x402/core, express)" >&2
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2
echo "$want" >"$STAMP"
