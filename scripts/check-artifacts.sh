#!/usr/bin/env bash
# Fails if the committed contract artifacts (bridge/artifacts) are not what the sources compile
# to with the pinned solc-js. After changing a contract: bridge/scripts/build.sh, then commit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-l1-tools.sh
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
node bridge/scripts/build.js "$TMP"
if ! diff -r bridge/artifacts "$TMP" >"$TMP.diff" 2>&1; then
  echo "error: bridge/artifacts is stale; run bridge/scripts/build.sh and commit the result." >&2
  head -40 "$TMP.diff" >&2
  rm -f "$TMP.diff"
  exit 1
fi
rm -f "$TMP.diff"
echo "contract artifacts are up to date" >&2
