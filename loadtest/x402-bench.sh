#!/usr/bin/env bash
# The x402 facilitator benchmark (docs/BENCHMARKS.md, "x402 facilitator"): a release
# `rollup-node --devnet` on a fresh database, then `loadtest --x402 settle` at --rate 1000 for
# 60 s (1,000 agents) and `loadtest --x402 verify` for 30 s; node, Postgres and load generator
# share the machine. Prints one JSON report per run. Run it on a quiet machine.
#
#   loadtest/x402-bench.sh                      # defaults
#   SETTLE_RATE=1000 SETTLE_SECS=60 VERIFY_SECS=30 loadtest/x402-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SETTLE_RATE=${SETTLE_RATE:-1000}
SETTLE_SECS=${SETTLE_SECS:-60}
VERIFY_SECS=${VERIFY_SECS:-30}
AGENTS=${AGENTS:-1000}

OUT=target/x402-bench
mkdir -p "$OUT"
. loadtest/bench-node.sh
start_bench_node x402_bench

LT=($BIN/loadtest --endpoint "http://127.0.0.1:$GRPC_PORT" --x402-url "http://127.0.0.1:$HTTP_PORT/x402" --json)
echo "==> settle at $SETTLE_RATE/s for $SETTLE_SECS s ($AGENTS agents)" >&2
"${LT[@]}" --x402 settle --agents "$AGENTS" --rate "$SETTLE_RATE" --duration "$SETTLE_SECS"
echo "==> verify, closed loop, for $VERIFY_SECS s" >&2
"${LT[@]}" --x402 verify --agents "$AGENTS" --duration "$VERIFY_SECS"
