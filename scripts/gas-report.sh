#!/usr/bin/env bash
# Gas of Rollup.commitBatch on a fresh anvil (default hardfork) for 100 / 1,000 / 10,000 payments
# among 100 and 1,000 agents: the Rust example `gas-blobs` builds the batches with the real
# state-transition function and state-diff encoding, bridge/scripts/gas-report.js commits them;
# prints the Markdown tables recorded in docs/BENCHMARKS.md ("L1 contract gas" and "Gas per
# tick": a minute of 1,000 payment streams, settled once per batch).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-l1-tools.sh
blobs=$(mktemp)
trap 'rm -f "$blobs"' EXIT
cargo run -q --locked -p rollup-bridge --example gas-blobs > "$blobs"
node bridge/scripts/gas-report.js "$blobs"
