#!/usr/bin/env bash
# Independent-client interoperability test of the node's gRPC server: starts a devnet node
# (target/debug/rollup-node --devnet) on a fresh database and free ports, waits until /readyz
# answers, runs interop/test_grpc_interop.py (Python grpcio, the API learnt through reflection
# v1alpha and v1 only) and interop/test_x402_interop.py (the official npm x402 middleware in
# front of a route, paid by `rollup fetch` through the node's facilitator), then stops the node
# with SIGTERM. Exits non-zero on any failure.
#
#   interop/run.sh                       # scripts/test.sh runs this after `cargo test`
#   INTEROP_DATABASE_URL=postgres://... interop/run.sh   # use this database as is
#
# Postgres comes from rollup-devkit (DATABASE_URL, a server on 127.0.0.1:5432, or the private
# cluster under .devnet/postgres), as for scripts/devnet.sh; the database `rollup_interop` is
# created afresh on every run. The node's log is kept in target/interop/node.log.
set -euo pipefail
cd "$(dirname "$0")/.."

READY_SECS=${INTEROP_READY_SECS:-60}
STOP_SECS=${INTEROP_STOP_SECS:-30}
OUT=target/interop
VENV=${INTEROP_VENV:-.venv-interop}
export INTEROP_VENV=$VENV
mkdir -p "$OUT"

interop/ensure-venv.sh
PY="$VENV/bin/python"

# The node and the devkit (with every other binary); a no-op after scripts/test.sh's build.
scripts/build-bins.sh
BIN=target/debug

if [ -n "${INTEROP_DATABASE_URL:-}" ]; then
  DB_URL=$INTEROP_DATABASE_URL
else
  ADMIN_URL=$($BIN/rollup-devkit postgres)
  DB_URL=$($BIN/rollup-devkit create-db --admin-url "$ADMIN_URL" --name rollup_interop --reset)
fi

NODE_PID=""
cleanup() {
  local rc=$?
  if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill -TERM "$NODE_PID" 2>/dev/null || true
    wait "$NODE_PID" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ]; then
    echo "interop: failed (exit $rc); the node's log, last lines ($OUT/node.log):" >&2
    tail -n 40 "$OUT/node.log" >&2 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Free ports now; the node fails loudly (binding) in the unlikely case one is taken meanwhile.
GRPC_PORT=$($BIN/rollup-devkit free-port)
HTTP_PORT=$($BIN/rollup-devkit free-port)
while [ "$HTTP_PORT" = "$GRPC_PORT" ]; do HTTP_PORT=$($BIN/rollup-devkit free-port); done
GRPC_ADDR=127.0.0.1:$GRPC_PORT
HTTP_ADDR=127.0.0.1:$HTTP_PORT

echo "interop: starting rollup-node --devnet (gRPC $GRPC_ADDR, HTTP $HTTP_ADDR)" >&2
DATABASE_URL=$DB_URL NO_COLOR=1 RUST_LOG=${RUST_LOG:-info} $BIN/rollup-node --devnet \
  --database-url "$DB_URL" --grpc-addr "$GRPC_ADDR" --http-addr "$HTTP_ADDR" \
  --registration-work-bits 16 \
  >"$OUT/node.log" 2>&1 &
NODE_PID=$!

# Wait for /readyz (200) with a deadline; give up early if the node exits.
"$PY" - "http://$HTTP_ADDR/readyz" "$READY_SECS" "$NODE_PID" <<'EOF'
import os, sys, time, urllib.request
url, secs, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + secs
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(f"interop: the node exited before {url} answered")
    if time.monotonic() > deadline:
        sys.exit(f"interop: {url} not ready after {secs:.0f} s")
    time.sleep(0.2)
EOF

"$PY" -u interop/test_grpc_interop.py "$GRPC_ADDR" | tee "$OUT/test.log"
read -r py_passed _ py_failed _ < <(tail -n 1 "$OUT/test.log")

# x402: the official npm resource-server middleware pays through the node's facilitator, and
# the Rust wallet (`rollup fetch`) pays it.
interop/x402/ensure-npm.sh
API_PORT=$($BIN/rollup-devkit free-port)
"$PY" -u interop/test_x402_interop.py "$GRPC_ADDR" "$HTTP_ADDR" "$BIN" "$API_PORT" | tee "$OUT/x402.log"
read -r x402_passed _ x402_failed _ < <(tail -n 1 "$OUT/x402.log")

# A clean stop on SIGTERM is part of the contract: it must exit 0 within STOP_SECS.
kill -TERM "$NODE_PID"
for _ in $(seq $((STOP_SECS * 10))); do
  kill -0 "$NODE_PID" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$NODE_PID" 2>/dev/null; then
  echo "interop: the node did not stop within ${STOP_SECS} s of SIGTERM" >&2
  kill -KILL "$NODE_PID" 2>/dev/null || true
  exit 1
fi
node_rc=0
wait "$NODE_PID" || node_rc=$?
NODE_PID=""
if [ "$node_rc" != 0 ]; then
  echo "interop: the node exited with status $node_rc after SIGTERM" >&2
  exit 1
fi
echo "ok   node stopped cleanly on SIGTERM"
# The closing line counts the Python checks and the clean stop.
echo "interop: $((py_passed + x402_passed + 1)) passed, $((py_failed + x402_failed)) failed"
