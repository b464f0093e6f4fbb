#!/usr/bin/env bash
# Installs the L1 toolchain into bridge/node_modules, pinned by bridge/package-lock.json:
#   solc (solc-js, the compiler of the contracts), forge (Solidity tests), anvil (the devnet L1).
# Idempotent and quiet: when node_modules matches the lockfile it only checks the binaries.
#
# Binaries after install (the foundry npm packages ship the Linux x64 binary itself, no
# postinstall download):
#   bridge/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil   (also node_modules/.bin/anvil)
#   bridge/node_modules/@foundry-rs/forge-linux-amd64/bin/forge   (also node_modules/.bin/forge)
#   bridge/node_modules/solc/soljson.js (via bridge/tools/solc, which answers like a native solc)
set -euo pipefail
cd "$(dirname "$0")/../bridge"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need node || ! need npm; then
  echo "error: node and npm (Node.js >= 20) are needed for the L1 toolchain." >&2
  echo "       Install them (e.g. 'apt-get install nodejs npm' or https://nodejs.org), then rerun." >&2
  exit 1
fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "error: the pinned foundry npm packages are Linux x86_64 only (this is $(uname -s)-$(uname -m))." >&2; exit 1 ;;
esac

ANVIL=node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
FORGE=node_modules/@foundry-rs/forge-linux-amd64/bin/forge
STAMP=node_modules/.l1-tools.stamp
LOCK_SUM=$(sha256sum package-lock.json | cut -d' ' -f1)

if [ -x "$ANVIL" ] && [ -x "$FORGE" ] && [ -f node_modules/solc/soljson.js ] \
   && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$LOCK_SUM" ]; then
  exit 0
fi

echo "==> installing the L1 toolchain (npm ci in bridge/)" >&2
npm ci --no-audit --no-fund --loglevel=error >/dev/null
for b in "$ANVIL" "$FORGE"; do
  if ! "$b" --version >/dev/null 2>&1; then
    echo "error: $b does not run after npm ci" >&2
    exit 1
  fi
done
node tools/solc --version >/dev/null
echo "$LOCK_SUM" >"$STAMP"
