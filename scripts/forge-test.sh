#!/usr/bin/env bash
# Runs the Solidity tests (bridge/contracts/test) with forge from npm and the solc-js wrapper.
# Extra arguments go to `forge test`, e.g. scripts/forge-test.sh --match-test Fuzz -vvv
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-l1-tools.sh
cd bridge
export FOUNDRY_DISABLE_NIGHTLY_WARNING=1
exec node_modules/.bin/forge test --offline "$@"
