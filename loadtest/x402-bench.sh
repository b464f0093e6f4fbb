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

scripts/build-bins.sh --release
BIN=target/release
ADMIN_URL=$($BIN/rollup-devkit postgres)
DB_URL=$($BIN/rollup-devkit create-db --admin-url "$ADMIN_URL" --name x402_bench --reset)
GRPC_PORT=$($BIN/rollup-devkit free-port)
HTTP_PORT=$($BIN/rollup-devkit free-port)
while [ "$HTTP_PORT" = "$GRPC_PORT" ]; do HTTP_PORT=$($BIN/rollup-devkit free-port); done

mkdir -p target/x402-bench
$BIN/rollup-node --devnet --database-url "$DB_URL" --grpc-addr "127.0.0.1:$GRPC_PORT" \
  --http-addr "127.0.0.1:$HTTP_PORT" --registration-work-bits 0 \
  >target/x402-bench/node.log 2>&1 &
NODE_PID=$!
trap 'kill -TERM $NODE_PID 2>/dev/null || true; wait $NODE_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$NODE_PID" 2>/dev/null || { echo "rollup-node exited; see target/x402-bench/node.log" >&2; exit 1; }
  sleep 0.2
done

LT=($BIN/loadtest --endpoint "http://127.0.0.1:$GRPC_PORT" --x402-url "http://127.0.0.1:$HTTP_PORT/x402" --json)
echo "==> settle at $SETTLE_RATE/s for $SETTLE_SECS s ($AGENTS agents)" >&2
"${LT[@]}" --x402 settle --agents "$AGENTS" --rate "$SETTLE_RATE" --duration "$SETTLE_SECS"
echo "==> verify, closed loop, for $VERIFY_SECS s" >&2
"${LT[@]}" --x402 verify --agents "$AGENTS" --duration "$VERIFY_SECS"
