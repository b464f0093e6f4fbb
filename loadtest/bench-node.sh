# Sourced by the benchmark scripts of loadtest/: builds the release binaries and starts a
# `rollup-node --devnet` on a fresh database named $1, with the extra flags after it, logging to
# $OUT/node.log; sets BIN, DB_URL, GRPC_PORT, HTTP_PORT and NODE_PID, stops the node on exit,
# and returns once the node is ready (`stop_bench_node` stops it earlier: SIGTERM, then waits).
# The caller sets OUT and runs from the repository root.
# NODE_BIN overrides the node binary (e.g. another commit's release build, for an A/B).
start_bench_node() {
  local db_name=$1
  shift
  scripts/build-bins.sh --release
  BIN=target/release
  local admin_url
  admin_url=$($BIN/rollup-devkit postgres)
  DB_URL=$($BIN/rollup-devkit create-db --admin-url "$admin_url" --name "$db_name" --reset)
  GRPC_PORT=$($BIN/rollup-devkit free-port)
  HTTP_PORT=$($BIN/rollup-devkit free-port)
  while [ "$HTTP_PORT" = "$GRPC_PORT" ]; do HTTP_PORT=$($BIN/rollup-devkit free-port); done
  ${NODE_BIN:-$BIN/rollup-node} --devnet --database-url "$DB_URL" --grpc-addr "127.0.0.1:$GRPC_PORT" \
    --http-addr "127.0.0.1:$HTTP_PORT" --registration-work-bits 0 "$@" >"$OUT/node.log" 2>&1 &
  NODE_PID=$!
  trap stop_bench_node EXIT
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$NODE_PID" 2>/dev/null || { echo "rollup-node exited; see $OUT/node.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "rollup-node not ready in 60 s; see $OUT/node.log" >&2
  exit 1
}

stop_bench_node() {
  kill -TERM "$NODE_PID" 2>/dev/null || true
  wait "$NODE_PID" 2>/dev/null || true
  trap - EXIT
}
