#!/usr/bin/env bash
# The explorer in a real headless browser, against a live devnet (scripts/test.sh runs it after
# interop/run.sh). Installs what it needs (interop/explorer/ensure.sh: Debian's chromium, the
# pinned puppeteer-core), starts a devnet of its own beside any other one (scripts/devnet.sh on
# other ports, its own database, the shared circuit cache, a batch every 10 s), waits until it
# is up, runs test.mjs (renders under 1 s, a payment made during the test appears, a batch
# reaches `finalized` on screen, clear pages for bad ids, a bounded DOM), saves the overview to
# $EXPLORER_SCREENSHOT (default target/explorer.png; docs/explorer.png refreshes the README's), and stops everything it started, also on failure or Ctrl-C.
#
#   interop/explorer/run.sh
#   EXPLORER_DEVNET_PROFILE=release interop/explorer/run.sh   # with release binaries
#
# Every wait has a deadline (EXPLORER_UP_TIMEOUT_S for the devnet, FINALIZED_TIMEOUT_S for the
# first finalized batch); nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)

interop/explorer/ensure.sh

export DEVNET_DIR=${EXPLORER_DEVNET_DIR:-.devnet/explorer-test}
export DEVNET_DB_NAME=rollup_explorer_test
export DEVNET_PROVER_CACHE=${DEVNET_PROVER_CACHE:-.devnet/prover-cache}
export DEVNET_PROFILE=${EXPLORER_DEVNET_PROFILE:-debug}
export DEVNET_BATCH_SECS=${EXPLORER_BATCH_SECS:-10}
export DEVNET_AGENTS=2
# Small batches only (the first batch is finalized long before one could hold 16 payments, and
# the node seals a batch by what the pinned circuits prove): a third of the circuits of the
# default top level to build on a fresh cache.
export DEVNET_TOP_LEVEL=1
# No split final circuits (the fleet test proves a split): fewer circuits to build.
export DEVNET_SPLITS=0
# Nor stream ones (the registry test proves a batch with a stream settlement).
export DEVNET_STREAMS=0
export GRPC_PORT=${EXPLORER_GRPC_PORT:-50151}
export HTTP_PORT=${EXPLORER_HTTP_PORT:-18080}
export L1_PORT=${EXPLORER_L1_PORT:-18545}
export PROVER_METRICS_PORT=${EXPLORER_PROVER_METRICS_PORT:-19100}
export PAID_API_PORT=${EXPLORER_PAID_API_PORT:-14021}
UP_TIMEOUT=${EXPLORER_UP_TIMEOUT_S:-900}
export FINALIZED_TIMEOUT_S=${FINALIZED_TIMEOUT_S:-420}
unset DATABASE_URL # the devnet creates (and resets) its own database

for port in "$GRPC_PORT" "$HTTP_PORT" "$L1_PORT" "$PROVER_METRICS_PORT" "$PAID_API_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "error: port $port is in use (another explorer test?); set EXPLORER_*_PORT" >&2
    exit 1
  fi
done

mkdir -p "$DEVNET_DIR"
rm -f "$DEVNET_DIR"/*.log # the logs of this run only
OUT="$DEVNET_DIR/devnet.out"
: >"$OUT"
# Its own session (process group): devnet.sh stops its children on TERM; whatever is left of the
# group afterwards (an agent's `rollup pay` in flight) is stopped with the group.
setsid scripts/devnet.sh >"$OUT" 2>&1 &
DEVNET_PID=$!

stop_devnet() {
  if kill -0 "$DEVNET_PID" 2>/dev/null; then
    kill -TERM "$DEVNET_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$DEVNET_PID" 2>/dev/null || break
      sleep 0.2
    done
  fi
  kill -TERM -- "-$DEVNET_PID" 2>/dev/null || true
  sleep 0.5
  kill -KILL -- "-$DEVNET_PID" 2>/dev/null || true
  wait "$DEVNET_PID" 2>/dev/null || true
}
trap stop_devnet EXIT
trap 'exit 130' INT TERM

echo "==> starting a devnet for the explorer test ($DEVNET_PROFILE, log: $OUT)" >&2
deadline=$(($(date +%s) + UP_TIMEOUT))
until grep -q "devnet is up" "$OUT"; do
  if ! kill -0 "$DEVNET_PID" 2>/dev/null; then
    echo "error: the devnet stopped before it was up:" >&2
    tail -30 "$OUT" >&2
    for f in circuits node; do
      [ -f "$DEVNET_DIR/$f.log" ] && { echo "--- $DEVNET_DIR/$f.log" >&2; tail -10 "$DEVNET_DIR/$f.log" >&2; }
    done
    exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "error: the devnet was not up within ${UP_TIMEOUT}s:" >&2
    tail -30 "$OUT" >&2
    exit 1
  fi
  sleep 1
done
up=$(date +%s)
echo "==> devnet up after $((up - start))s; browser test (a batch must reach finalized within ${FINALIZED_TIMEOUT_S}s)" >&2

BIN=target/$DEVNET_PROFILE
payee=$(tr -d '\n ' <"$DEVNET_DIR/agents/agent2.json" | sed -n 's/.*"account_index":\([0-9][0-9]*\).*/\1/p')
status=0
EXPLORER_URL="http://127.0.0.1:$HTTP_PORT" ROLLUP_BIN="$BIN/rollup" \
  ROLLUP_ENDPOINT="http://127.0.0.1:$GRPC_PORT" PAYER_KEY="$DEVNET_DIR/agents/agent1.json" \
  PAYEE="$payee" SCREENSHOT="${EXPLORER_SCREENSHOT:-target/explorer.png}" \
  node interop/explorer/test.mjs || status=$?
if [ "$status" -ne 0 ]; then
  echo "explorer browser test failed; devnet logs in $DEVNET_DIR (node.log, prover.log)" >&2
  tail -15 "$DEVNET_DIR/node.log" >&2 || true
fi
stop_devnet
trap - EXIT
end=$(date +%s)
echo "==> explorer browser test: $([ "$status" = 0 ] && echo ok || echo FAILED) in $((end - start))s (devnet start $((up - start))s, browser test $((end - up))s)" >&2
exit "$status"
