#!/usr/bin/env bash
# Gas of Rollup.commitBatch on a fresh anvil (default hardfork) for 100 / 1,000 / 10,000 payments;
# prints the Markdown table recorded in docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-l1-tools.sh
exec node bridge/scripts/gas-report.js
