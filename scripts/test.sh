#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls exactly this).
# Everything it needs is installed by scripts/ensure-tools.sh, so it works on a clean machine.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-tools.sh

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> building the node and the devkit"
cargo build --locked -q -p rollup-sequencer -p rollup-devkit

# The SDK, CLI and loadtest end-to-end tests talk to a real node: start one on a scratch
# database (DATABASE_URL, the local server, or a private cluster; see rollup-devkit).
ADMIN_URL=$(target/debug/rollup-devkit postgres)
E2E_DB=$(target/debug/rollup-devkit create-db --admin-url "$ADMIN_URL" --name "rollup_e2e_$$" --reset)
GRPC_PORT=$(target/debug/rollup-devkit free-port)
HTTP_PORT=$(target/debug/rollup-devkit free-port)
NODE_LOG=$(mktemp -t rollup-e2e-node.XXXXXX.log)
DATABASE_URL="$E2E_DB" target/debug/rollup-node --devnet \
  --grpc-addr "127.0.0.1:$GRPC_PORT" --http-addr "127.0.0.1:$HTTP_PORT" >"$NODE_LOG" 2>&1 &
NODE_PID=$!
trap 'kill -TERM $NODE_PID 2>/dev/null || true; wait $NODE_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null && \
     kill -0 "$NODE_PID" 2>/dev/null; then break; fi
  if ! kill -0 "$NODE_PID" 2>/dev/null; then echo "e2e node failed:" >&2; cat "$NODE_LOG" >&2; exit 1; fi
  sleep 0.2
done
export ROLLUP_E2E_ENDPOINT="http://127.0.0.1:$GRPC_PORT"

echo "==> cargo test"
cargo test --workspace --locked --no-fail-fast
