#!/usr/bin/env bash
# Compiles the contracts with the pinned solc-js into bridge/artifacts (or the folder given).
set -euo pipefail
cd "$(dirname "$0")/.."
../scripts/ensure-l1-tools.sh
exec node scripts/build.js "$@"
