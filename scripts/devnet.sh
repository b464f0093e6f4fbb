#!/usr/bin/env bash
# The main job: a local devnet. Postgres (DATABASE_URL, the local server, or a private cluster
# it creates), the rollup node, and a few demo agents paying each other. Ctrl-C stops it all.
#
#   scripts/devnet.sh                 # run until Ctrl-C
#   DEVNET_SECONDS=30 scripts/devnet.sh   # run for 30 s, then stop (used by the smoke test)
#
# A prover worker (rollup-prover) proves every batch; receipts and /v1/status show the
# batches reaching `proven`. Circuits are built on the first start and cached in $DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-tools.sh

DIR=${DEVNET_DIR:-.devnet}
GRPC_PORT=${GRPC_PORT:-50051}
HTTP_PORT=${HTTP_PORT:-8080}
AGENTS=${DEVNET_AGENTS:-3}
# One payment per agent every PAY_EVERY seconds and a batch every BATCH_SECS: sized so that one
# 2-core machine proves the batches about as fast as they are sealed (docs/BENCHMARKS.md).
PAY_EVERY=${DEVNET_PAY_EVERY:-3}
BATCH_SECS=${DEVNET_BATCH_SECS:-30}
LEAF_SIZE=${DEVNET_LEAF_SIZE:-8}
PROVER_METRICS=${PROVER_METRICS_PORT:-9100}
mkdir -p "$DIR/agents"

echo "==> building (release)" >&2
cargo build --release --locked -q -p rollup-sequencer -p rollup-client -p rollup-devkit -p rollup-loadtest -p rollup-prover
BIN=target/release

if [ -z "${DATABASE_URL:-}" ]; then
  ADMIN_URL=$($BIN/rollup-devkit postgres)
  DATABASE_URL=$($BIN/rollup-devkit create-db --admin-url "$ADMIN_URL" --name rollup_devnet)
fi
export DATABASE_URL

NODE_PID=""
PROVER_PID=""
AGENT_PIDS=()
cleanup() {
  for p in "${AGENT_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$PROVER_PID" ]; then
    kill -TERM "$PROVER_PID" 2>/dev/null || true
    wait "$PROVER_PID" 2>/dev/null || true
  fi
  if [ -n "$NODE_PID" ]; then
    kill -TERM "$NODE_PID" 2>/dev/null || true
    wait "$NODE_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> starting rollup-node (log: $DIR/node.log)" >&2
$BIN/rollup-node --devnet --grpc-addr "127.0.0.1:$GRPC_PORT" --http-addr "127.0.0.1:$HTTP_PORT" \
  --batch-max-secs "$BATCH_SECS" >"$DIR/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$NODE_PID" 2>/dev/null; then echo "rollup-node exited; see $DIR/node.log" >&2; tail -20 "$DIR/node.log" >&2; exit 1; fi
  sleep 0.2
done

echo "==> starting rollup-prover (log: $DIR/prover.log; first start builds the circuits)" >&2
$BIN/rollup-prover run --cache-dir "$DIR/prover-cache" --leaf-size "$LEAF_SIZE" \
  --metrics-addr "127.0.0.1:$PROVER_METRICS" >"$DIR/prover.log" 2>&1 &
PROVER_PID=$!

export ROLLUP_ENDPOINT="http://127.0.0.1:$GRPC_PORT"
ROLLUP="$BIN/rollup"
echo "==> creating $AGENTS demo agents" >&2
INDICES=()
for i in $(seq 1 "$AGENTS"); do
  KEY="$DIR/agents/agent$i.json"
  [ -f "$KEY" ] || $ROLLUP keygen --out "$KEY" >/dev/null
  $ROLLUP register --key "$KEY" >/dev/null 2>&1 || true
  IDX=$(tr -d '\n ' <"$KEY" | sed -n 's/.*"account_index":\([0-9][0-9]*\).*/\1/p')
  if [ -z "$IDX" ]; then echo "could not register $KEY" >&2; exit 1; fi
  INDICES+=("$IDX")
  $ROLLUP faucet --account "$IDX" --amount 100000000 >/dev/null
done

cat <<INFO

  devnet is up
  gRPC (rollup.v1, reflection on):  127.0.0.1:$GRPC_PORT   e.g. grpcurl -plaintext 127.0.0.1:$GRPC_PORT list
  HTTP:    http://127.0.0.1:$HTTP_PORT/v1/status   /v1/accounts/{index}   /v1/txs/{id}   /v1/blocks/{n}
  health:  http://127.0.0.1:$HTTP_PORT/healthz  /readyz      metrics: http://127.0.0.1:$HTTP_PORT/metrics
  prover:  metrics http://127.0.0.1:$PROVER_METRICS/metrics   log $DIR/prover.log
           verify a batch: $BIN/rollup-prover verify --batch 1 --leaf-size $LEAF_SIZE --cache-dir $DIR/prover-cache
  wallet:  ROLLUP_ENDPOINT=$ROLLUP_ENDPOINT $ROLLUP balance --account ${INDICES[0]}
  agents:  ${INDICES[*]} (keys in $DIR/agents/), paying each other every $PAY_EVERY s
  logs:    $DIR/node.log
  Postgres: $DATABASE_URL

INFO

# Demo agents: each pays the next one a small amount every second.
for n in $(seq 0 $((AGENTS - 1))); do
  FROM_KEY="$DIR/agents/agent$((n + 1)).json"
  TO=${INDICES[$(((n + 1) % AGENTS))]}
  (
    while true; do
      $ROLLUP pay --key "$FROM_KEY" --to "$TO" --amount $((RANDOM % 900 + 100)) --fee 1 || true
      sleep "$PAY_EVERY"
    done
  ) >"$DIR/agent$((n + 1)).log" 2>&1 &
  AGENT_PIDS+=($!)
done

if [ -n "${DEVNET_SECONDS:-}" ]; then
  sleep "$DEVNET_SECONDS"
  curl -fsS "http://127.0.0.1:$HTTP_PORT/v1/status"; echo
  for i in "${INDICES[@]}"; do curl -fsS "http://127.0.0.1:$HTTP_PORT/v1/accounts/$i"; echo; done
else
  echo "Ctrl-C to stop." >&2
  while kill -0 "$NODE_PID" 2>/dev/null; do
    sleep 5
    curl -fsS "http://127.0.0.1:$HTTP_PORT/v1/status" 2>/dev/null | sed 's/^/status: /' || true
    echo
  done
fi
