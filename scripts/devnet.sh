#!/usr/bin/env bash
# The main job: a local devnet. Postgres (DATABASE_URL, the local server, or a private cluster
# it creates), an anvil L1 with the contracts deployed, the rollup node with the bridge on
# (L1 watcher, deposit crediting, batch submitter, event feed), and a few demo agents that get
# their money through real L1 deposits and pay each other (transfers, a split, a stream ticking
# ten times a second, x402 purchases, withdrawals back to L1). Ctrl-C stops it all.
#
#   scripts/devnet.sh                    # run until Ctrl-C
#   DEVNET_SECONDS=900 scripts/devnet.sh # run for 15 min once up, print a summary, stop
#   DEVNET_STREAMS=0 scripts/devnet.sh   # no streams: the plain leaf, faster payments
#
# A prover worker (rollup-prover) proves every batch; receipts and /v1/status show the
# batches reaching `proven`, then `finalized` on L1. Circuits are built on the first start and
# cached in $DIR (docs/BENCHMARKS.md, "Streams proven end to end: the devnet").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-tools.sh

DIR=${DEVNET_DIR:-.devnet}
GRPC_PORT=${GRPC_PORT:-50051}
HTTP_PORT=${HTTP_PORT:-8080}
AGENTS=${DEVNET_AGENTS:-3}
STREAMS=${DEVNET_STREAMS:-1} # payment streams, below
# One payment per agent every PAY_EVERY seconds and a batch every BATCH_SECS: sized so that one
# 2-core machine proves the batches about as fast as they are sealed (docs/BENCHMARKS.md). A
# batch costs mostly its proof trees, each padded to the batch's power of two of leaves (about
# 90 s for eight leaves with streams, whose leaves hold 6 payments instead of 8, about 72 s for
# four, docs/BENCHMARKS.md): so with streams the agents pay every 18 s and a batch is sealed
# every 90 s (about 20 transactions, four leaves, proven in about 72 s).
if [ "$STREAMS" = 1 ]; then
  PAY_EVERY=${DEVNET_PAY_EVERY:-18}
  BATCH_SECS=${DEVNET_BATCH_SECS:-90}
else
  PAY_EVERY=${DEVNET_PAY_EVERY:-3}
  BATCH_SECS=${DEVNET_BATCH_SECS:-30}
fi
# Payment streams (SPEC 18): the prover builds the leaf with the stream kinds (open, settle,
# close: 616 rows per slot instead of 475, so leaves of 6 instead of 8 keep the leaf's degree),
# the version 4 diff circuits (streams are version 4 records) and the final circuits that verify
# a batch's tick-walk tree (`-walks`); the node accepts the stream kinds by those pins, and a
# streaming agent pays a listening agent ten ticks a second, settled every STREAM_SETTLE_EVERY
# ticks (about once a batch), beside a short stream opened, ticked, settled and closed at
# start. 0: no streams (a third of the final circuits to build on a fresh cache; the explorer
# test uses it).
STREAM_SETTLE_EVERY=${DEVNET_STREAM_SETTLE_EVERY:-900}
LEAF_FLAGS=()
if [ "$STREAMS" = 1 ]; then
  LEAF_SIZE=${DEVNET_LEAF_SIZE:-6}
  LEAF_FLAGS=(--leaf-streams)
else
  LEAF_SIZE=${DEVNET_LEAF_SIZE:-8}
fi
PROVER_METRICS=${PROVER_METRICS_PORT:-9100}
L1_PORT=${L1_PORT:-8545}
L1_CONFIRMATIONS=${L1_CONFIRMATIONS:-2}
# The database (created or reset under the devkit's Postgres when DATABASE_URL is not given) and
# the prover's circuit cache (3.5 GB, slow to build): a second devnet beside the first (the
# explorer's browser test, interop/explorer/run.sh) takes its own database and shares the cache.
DB_NAME=${DEVNET_DB_NAME:-rollup_devnet}
PROVER_CACHE=${DEVNET_PROVER_CACHE:-$DIR/prover-cache}
# Batches of up to 2^TOP_LEVEL leaves of LEAF_SIZE payments can be proven and verified (4: 128
# payments of the plain leaf; 3 with streams: 48 payments, and a batch holds what its pins
# prove, the node sealing early when one is full). A smaller level builds fewer circuits on a
# fresh cache (the explorer test uses 1). Each final circuit is about 290 MB in the cache, and
# streams need six of them per level (plain or version 4 diff, with or without splits and the
# tick-walk tree): about 7 GB at level 3.
if [ "$STREAMS" = 1 ]; then
  TOP_LEVEL=${DEVNET_TOP_LEVEL:-3}
else
  TOP_LEVEL=${DEVNET_TOP_LEVEL:-4}
fi
# Split payments (one signed payment to many payees, SPEC 19): the prover also builds and pins
# the final circuits that verify the split-credit chain (`final-<level>-splits`), the node then
# accepts splits, and agent 1 pays the other agents with one split at start. 0: no splits (half
# the final circuits to build on a fresh cache; the explorer test uses it).
SPLITS=${DEVNET_SPLITS:-1}
SPLITS_FLAG=()
if [ "$SPLITS" = 1 ]; then SPLITS_FLAG=(--splits); fi
# Revenue shares (SPEC 19.6; needs splits: a registration's and a distribute's records are in
# the split-credit chain): the leaf also has the revenue-share kinds and the lock (26 rows
# more per slot: a leaf of 6 with streams keeps its degree), the split-credit chunk proves
# their records and the `v4-shares` finals prove a registration's diff; the node accepts the
# two kinds by those pins. The paid demo API's income goes to a revenue account whose shares
# pay two agents, distributed by the account every SHARES_DISTRIBUTE_EVERY seconds.
SHARES=${DEVNET_SHARES:-$SPLITS}
if [ "$SPLITS" != 1 ]; then SHARES=0; fi
SHARES_DISTRIBUTE_EVERY=${DEVNET_SHARES_DISTRIBUTE_EVERY:-180}
DIFF_KINDS=v1
if [ "$STREAMS" = 1 ]; then DIFF_KINDS=v1,v4; fi
if [ "$SHARES" = 1 ]; then
  DIFF_KINDS="$DIFF_KINDS,v4-shares"
  LEAF_FLAGS+=(--leaf-shares)
fi
# Agent passports (SPEC 20; needs revenue shares: a policy's body is proven by the full diff of
# the `v4-shares` finals): the leaf also has the policy checks with the allow-lists' membership
# paths (`--leaf-policies lists`: 168 rows more per slot, which doubles the streams leaf of 6,
# so off by default), the `v4-agents` finals prove the batches with lanes and agent spends; the
# node accepts the passport kinds by those pins (allow-lists included: the manifest records
# `leaf_policies: lists`), and scripts/agents-demo.sh runs once at start (an owner funded on
# L1, three agents under different policies, one of them under an allow-list and revoked
# mid-run), then waits for its last transaction's batch to be finalized on L1 (log
# $DIR/agents-demo.log).
#   DEVNET_PASSPORTS=1 DEVNET_STREAMS=0 DEVNET_TOP_LEVEL=1 scripts/devnet.sh
PASSPORTS=${DEVNET_PASSPORTS:-0}
if [ "$SHARES" != 1 ]; then PASSPORTS=0; fi
if [ "$PASSPORTS" = 1 ]; then
  DIFF_KINDS="$DIFF_KINDS,v4-agents"
  LEAF_FLAGS+=(--leaf-policies lists)
fi
CIRCUIT_FLAGS=("${SPLITS_FLAG[@]}" "${LEAF_FLAGS[@]}" --diff-kinds "$DIFF_KINDS")
if [ "$STREAMS" = 1 ]; then CIRCUIT_FLAGS+=(--walks); fi
mkdir -p "$DIR/agents"

# DEVNET_PROFILE=debug reuses a debug build (faster to build, slower to run).
PROFILE=${DEVNET_PROFILE:-release}
echo "==> building ($PROFILE)" >&2
if [ "$PROFILE" = release ]; then
  scripts/build-bins.sh --release
  BIN=target/release
else
  scripts/build-bins.sh
  BIN=target/debug
fi

if [ -z "${DATABASE_URL:-}" ]; then
  ADMIN_URL=$($BIN/rollup-devkit postgres)
  DATABASE_URL=$($BIN/rollup-devkit create-db --admin-url "$ADMIN_URL" --name "$DB_NAME")
fi
export DATABASE_URL

NODE_PID=""
PROVER_PID=""
ANVIL_PID=""
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
  if [ -n "$ANVIL_PID" ]; then kill "$ANVIL_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# L1: anvil mining a block every second (so confirmations advance), contracts deployed from
# the committed artifacts with the L2 genesis root. A fresh L1 needs a fresh L2 database.
ANVIL=${ROLLUP_ANVIL:-bridge/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil}
echo "==> starting anvil on 127.0.0.1:$L1_PORT (log: $DIR/anvil.log)" >&2
"$ANVIL" --port "$L1_PORT" --block-time 1 >"$DIR/anvil.log" 2>&1 &
ANVIL_PID=$!
export ROLLUP_L1_RPC="http://127.0.0.1:$L1_PORT"
for _ in $(seq 1 100); do
  curl -fsS -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "$ROLLUP_L1_RPC" >/dev/null 2>&1 && break
  sleep 0.1
done
GENESIS=$($BIN/rollup-node --devnet --print-genesis-root)
DEPLOY=$($BIN/rollup-l1 deploy --genesis-root "$GENESIS")
echo "$DEPLOY" >"$DIR/l1.json"
ROLLUP_ADDRESS=$(echo "$DEPLOY" | sed -n 's/.*"rollup":"\(0x[0-9a-fA-F]*\)".*/\1/p')
TOKEN=$(echo "$DEPLOY" | sed -n 's/.*"token":"\(0x[0-9a-fA-F]*\)".*/\1/p')
START_BLOCK=$(echo "$DEPLOY" | sed -n 's/.*"start_block":\([0-9]*\).*/\1/p')
export ROLLUP_ADDRESS
# The demo agents' L1 wallet: anvil dev account 1 (publicly known key, devnet only).
FUNDER_KEY="$DIR/l1-funder.key"
echo "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" >"$FUNDER_KEY"
$BIN/rollup-l1 mint --token "$TOKEN" --to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --amount 1000000000000 >/dev/null
# A fresh L1 means a fresh rollup: start the devnet database over (unless DATABASE_URL was given).
if [ -n "${ADMIN_URL:-}" ]; then
  DATABASE_URL=$($BIN/rollup-devkit create-db --admin-url "$ADMIN_URL" --name "$DB_NAME" --reset)
  export DATABASE_URL
fi

# The node verifies every batch proof before committing it on L1, with the final circuits'
# verifier data exported by the prover (built once, then loaded from the cache).
echo "==> preparing the prover's circuits (log: $DIR/circuits.log; slow only the first time)" >&2
rm -rf "$DIR/verifiers" # exported afresh: a set of another top level is refused
$BIN/rollup-prover circuits --top-level "$TOP_LEVEL" --leaf-size "$LEAF_SIZE" --cache-dir "$PROVER_CACHE" \
  "${CIRCUIT_FLAGS[@]}" --export-verifiers "$DIR/verifiers" >"$DIR/circuits.log" 2>&1

echo "==> starting rollup-node (log: $DIR/node.log)" >&2
# Registration proof of work (docs/API.md, "Registration"): 8 bits on the devnet, so that
# `loadtest` registering thousands of agents is not slowed down (a real deployment keeps 20).
export ROLLUP_REGISTRATION_WORK_BITS=${ROLLUP_REGISTRATION_WORK_BITS:-8}
$BIN/rollup-node --devnet --grpc-addr "127.0.0.1:$GRPC_PORT" --http-addr "127.0.0.1:$HTTP_PORT" \
  --batch-max-secs "$BATCH_SECS" --proof-verifiers "$DIR/verifiers" \
  --l1-rpc "$ROLLUP_L1_RPC" --rollup-address "$ROLLUP_ADDRESS" --l1-start-block "$START_BLOCK" \
  --l1-confirmations "$L1_CONFIRMATIONS" --l1-poll-ms 500 \
  >"$DIR/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$NODE_PID" 2>/dev/null; then echo "rollup-node exited; see $DIR/node.log" >&2; tail -20 "$DIR/node.log" >&2; exit 1; fi
  sleep 0.2
done

echo "==> starting rollup-prover (log: $DIR/prover.log; first start builds the circuits)" >&2
$BIN/rollup-prover run --cache-dir "$PROVER_CACHE" --leaf-size "$LEAF_SIZE" "${LEAF_FLAGS[@]}" \
  --metrics-addr "127.0.0.1:$PROVER_METRICS" >"$DIR/prover.log" 2>&1 &
PROVER_PID=$!

export ROLLUP_ENDPOINT="http://127.0.0.1:$GRPC_PORT"
ROLLUP="$BIN/rollup"
# A new key at $1, registered; prints its account index. A fresh L1 is a fresh rollup: keys
# registered by an earlier run name accounts that do not exist any more, so every run makes new
# agents.
new_agent() {
  local key=$1 idx
  rm -f "$key"
  $ROLLUP keygen --out "$key" >/dev/null
  $ROLLUP register --key "$key" >/dev/null || { echo "could not register $key" >&2; return 1; }
  idx=$(tr -d '\n ' <"$key" | sed -n 's/.*"account_index":\([0-9][0-9]*\).*/\1/p')
  if [ -z "$idx" ]; then echo "could not register $key" >&2; return 1; fi
  echo "$idx"
}
echo "==> creating $AGENTS demo agents" >&2
INDICES=()
for i in $(seq 1 "$AGENTS"); do
  IDX=$(new_agent "$DIR/agents/agent$i.json")
  INDICES+=("$IDX")
  # Money enters through L1: approve + Rollup.deposit, credited after the confirmation depth.
  $ROLLUP deposit --account "$IDX" --amount 100000000 --l1-key "$FUNDER_KEY" --rollup "$ROLLUP_ADDRESS" >/dev/null
done
# A buyer agent for the paid demo API (x402): its own account, so that its payments never race
# the other agents' nonces.
BUYER_KEY="$DIR/agents/buyer.json"
BUYER=$(new_agent "$BUYER_KEY")
$ROLLUP deposit --account "$BUYER" --amount 100000000 --l1-key "$FUNDER_KEY" --rollup "$ROLLUP_ADDRESS" >/dev/null
# The streaming pair: their own accounts, so that the opens, settlements and closes never race
# the other agents' nonces. Only the payer needs money (the stream transactions' fees are 0).
STREAM_PAYER=""
STREAM_PAYEE=""
if [ "$STREAMS" = 1 ]; then
  STREAM_PAYER=$(new_agent "$DIR/agents/stream-payer.json")
  STREAM_PAYEE=$(new_agent "$DIR/agents/stream-payee.json")
  $ROLLUP deposit --account "$STREAM_PAYER" --amount 100000000 --l1-key "$FUNDER_KEY" --rollup "$ROLLUP_ADDRESS" >/dev/null
fi
echo "==> waiting for the L1 deposits to be credited ($L1_CONFIRMATIONS confirmations)" >&2
for IDX in "${INDICES[@]}" "$BUYER" $STREAM_PAYER; do
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$HTTP_PORT/v1/accounts/$IDX" 2>/dev/null | grep -q '"balance":[1-9]' && break
    sleep 0.5
  done
done

# Money comes back to L1 too: agent 1 withdraws on L2, agent 2 forces a withdrawal through the
# L1 queue (what a user does when the sequencer ignores them), both to $WITHDRAW_TO. A
# background claimer pays out every finalized payout on L1 with `rollup claim` (anyone may
# claim; the tokens go to the address the withdrawal signed).
WITHDRAW_TO=0x00000000000000000000000000000000000b0b05
$ROLLUP withdraw --key "$DIR/agents/agent1.json" --to-l1 "$WITHDRAW_TO" --amount 250000 >/dev/null \
  || echo "warning: the demo withdrawal failed" >&2
# One payment to every other agent at once: a split, proven with its batch's split-credit chain.
SPLIT_DEMO="none (DEVNET_SPLITS=0)"
if [ "$SPLITS" = 1 ] && [ "$AGENTS" -ge 2 ]; then
  SPLIT_TO=()
  for IDX in "${INDICES[@]:1}"; do SPLIT_TO+=(--to "$IDX:$((10000 + IDX))"); done
  if SPLIT_DEMO=$($ROLLUP split --key "$DIR/agents/agent1.json" "${SPLIT_TO[@]}" --fee 1); then
    echo "==> split: $SPLIT_DEMO" >&2
  else
    SPLIT_DEMO="failed (see above)"
    echo "warning: the demo split failed" >&2
  fi
fi
if [ "$AGENTS" -ge 2 ]; then
  echo "==> forcing a withdrawal through the L1 queue (agent ${INDICES[1]})" >&2
  $ROLLUP force-withdraw --key "$DIR/agents/agent2.json" --to-l1 "$WITHDRAW_TO" --amount 150000 \
    --l1-key "$FUNDER_KEY" --rollup "$ROLLUP_ADDRESS" >/dev/null \
    || echo "warning: the demo forced withdrawal failed" >&2
  # Agent 2 starts paying only once the request is processed, so that its own payments do not
  # take the nonce the request signed.
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$HTTP_PORT/v1/accounts/${INDICES[1]}" 2>/dev/null | grep -q '"nonce":[1-9]' && break
    sleep 0.5
  done
fi
# Streams: a short one opened, ticked, settled and closed by its payee now (each of the three
# stream transactions in a batch at start; its ticks a tick tree's, settled by one path, SPEC
# 18.8), and a long one (a hash chain) ticking ten times a second from here on, relayed by the
# node and settled by the payee's watch every STREAM_SETTLE_EVERY ticks.
STREAM_DEMO="none (DEVNET_STREAMS=0)"
if [ "$STREAMS" = 1 ]; then
  PAYER_KEY="$DIR/agents/stream-payer.json"
  PAYEE_KEY="$DIR/agents/stream-payee.json"
  rm -f "$DIR/agents/stream-short.json" "$DIR/agents/stream-long.json"
  if $ROLLUP stream open --key "$PAYER_KEY" --to "$STREAM_PAYEE" --price 7 --max-ticks 100 --slot 1 \
      --tree --out "$DIR/agents/stream-short.json" >/dev/null \
    && $ROLLUP stream tick --stream "$DIR/agents/stream-short.json" --count 40 >/dev/null \
    && $ROLLUP stream settle --key "$PAYEE_KEY" --payer "$STREAM_PAYER" --slot 1 >/dev/null \
    && $ROLLUP stream close --key "$PAYEE_KEY" --payer "$STREAM_PAYER" --slot 1 >/dev/null; then
    echo "==> stream $STREAM_PAYER/1 (a tick tree): opened, 40 ticks settled by one path, closed" >&2
    STREAM_DEMO="$STREAM_PAYER/1 (a tick tree) opened, 40 ticks of 7 settled by path, closed by the payee;"
  else
    STREAM_DEMO="$STREAM_PAYER/1 failed (see above);"
    echo "warning: the short demo stream failed" >&2
  fi
  if $ROLLUP stream open --key "$PAYER_KEY" --to "$STREAM_PAYEE" --price 3 --max-ticks 10000000 \
      --lasts 86400 --slot 0 --out "$DIR/agents/stream-long.json" >/dev/null; then
    STREAM_DEMO="$STREAM_DEMO $STREAM_PAYER/0 ticking 10/s to $STREAM_PAYEE, settled every $STREAM_SETTLE_EVERY ticks"
    $ROLLUP stream watch --key "$PAYEE_KEY" --settle-every "$STREAM_SETTLE_EVERY" >"$DIR/stream-payee.log" 2>&1 &
    AGENT_PIDS+=($!)
    (
      # `tick` stops at a refused tick (the relay restarting, say): start it again.
      while true; do
        $ROLLUP stream tick --stream "$DIR/agents/stream-long.json" --count 600 --every 100 || sleep 1
      done
    ) >"$DIR/stream-payer.log" 2>&1 &
    AGENT_PIDS+=($!)
  else
    STREAM_DEMO="$STREAM_DEMO $STREAM_PAYER/0 failed to open (see above)"
    echo "warning: the long demo stream failed to open" >&2
  fi
fi
(
  claimed=" "
  while true; do
    final=$(curl -fsS "http://127.0.0.1:$HTTP_PORT/v1/status" 2>/dev/null | sed -n 's/.*"finalized":\([0-9]*\).*/\1/p')
    for b in $(seq 1 "${final:-0}"); do
      for i in 0 1 2 3; do
        case "$claimed" in *" $b/$i "*) continue ;; esac
        if curl -fsS "http://127.0.0.1:$HTTP_PORT/v1/withdrawals/$b/$i/proof" 2>/dev/null | grep -q '"claimable":true'; then
          $ROLLUP claim --batch "$b" --index "$i" --http "http://127.0.0.1:$HTTP_PORT" \
            --l1-key "$FUNDER_KEY" --rollup "$ROLLUP_ADDRESS" && claimed="$claimed$b/$i "
        fi
      done
    done
    sleep 5
  done
) >"$DIR/claimer.log" 2>&1 &
AGENT_PIDS+=($!)

# The paid demo API (x402 v2 through the node's facilitator): /weather costs PAID_API_PRICE,
# paid to the last agent (with revenue shares: to the revenue account, below); the buyer agent
# calls it every PAY_EVERY seconds with `rollup fetch`.
PAID_API_PORT=${PAID_API_PORT:-4021}
PAID_API_PRICE=${PAID_API_PRICE:-1000}
PAYEE=${INDICES[$((AGENTS - 1))]}
# Revenue shares: a revenue account registers 60 % to the first agent and 40 % to the last
# (proven with the `v4-shares` final of its batch), receives the API's income and pays it out by
# those shares every SHARES_DISTRIBUTE_EVERY seconds (its own distribute: no other key's nonce
# to race).
SHARES_DEMO="none (DEVNET_SHARES=0)"
REVENUE=""
if [ "$SHARES" = 1 ] && [ "$AGENTS" -ge 2 ]; then
  REVENUE_KEY="$DIR/agents/revenue.json"
  REVENUE=$(new_agent "$REVENUE_KEY")
  SHARE_A=${INDICES[0]}
  SHARE_B=${INDICES[$((AGENTS - 1))]}
  if $ROLLUP shares register --key "$REVENUE_KEY" --to "$SHARE_A:6000" --to "$SHARE_B:4000" >/dev/null; then
    PAYEE=$REVENUE
    SHARES_DEMO="account $REVENUE: 60 % to $SHARE_A, 40 % to $SHARE_B; the API's income, distributed every $SHARES_DISTRIBUTE_EVERY s (log $DIR/revenue.log)"
    echo "==> revenue account $REVENUE: 60 % to $SHARE_A, 40 % to $SHARE_B" >&2
    (
      while true; do
        sleep "$SHARES_DISTRIBUTE_EVERY"
        $ROLLUP shares distribute --key "$REVENUE_KEY" --account "$REVENUE" --fee 1 || true
      done
    ) >"$DIR/revenue.log" 2>&1 &
    AGENT_PIDS+=($!)
  else
    SHARES_DEMO="failed to register (see above)"
    echo "warning: the revenue-share registration failed" >&2
  fi
fi
# Agent passports: the demo on an owner of its own (funded through L1), paying agent 1 (the
# merchant) and agent 2 (the stranger).
PASSPORTS_DEMO="none (DEVNET_PASSPORTS=0)"
if [ "$PASSPORTS" = 1 ] && [ "$AGENTS" -ge 2 ]; then
  OWNER_KEY="$DIR/agents/passport-owner.json"
  PASSPORT_OWNER=$(new_agent "$OWNER_KEY")
  $ROLLUP deposit --account "$PASSPORT_OWNER" --amount 1000000 --l1-key "$FUNDER_KEY" --rollup "$ROLLUP_ADDRESS" >/dev/null
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$HTTP_PORT/v1/accounts/$PASSPORT_OWNER" 2>/dev/null | grep -q '"balance":[1-9]' && break
    sleep 0.5
  done
  AGENTS_DEMO_OWNER_KEY="$OWNER_KEY" AGENTS_DEMO_MERCHANT="${INDICES[0]}" \
    AGENTS_DEMO_STRANGER="${INDICES[1]}" AGENTS_DEMO_HTTP="http://127.0.0.1:$HTTP_PORT" \
    AGENTS_DEMO_BATCH_SECS="$BATCH_SECS" AGENTS_DEMO_DIR="$DIR/agents-demo" BIN="$BIN" \
    scripts/agents-demo.sh >"$DIR/agents-demo.log" 2>&1 &
  AGENT_PIDS+=($!)
  PASSPORTS_DEMO="owner $PASSPORT_OWNER, three agents under different policies, one revoked mid-run (log $DIR/agents-demo.log, whose last line says whether it all reached L1 finality)"
  echo "==> passports: $PASSPORTS_DEMO" >&2
fi
$BIN/rollup-paid-api --addr "127.0.0.1:$PAID_API_PORT" --facilitator "http://127.0.0.1:$HTTP_PORT/x402" \
  --pay-to "$PAYEE" --price "$PAID_API_PRICE" >"$DIR/paid-api.log" 2>&1 &
AGENT_PIDS+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PAID_API_PORT/free" >/dev/null 2>&1 && break
  sleep 0.1
done
(
  while true; do
    $ROLLUP fetch "http://127.0.0.1:$PAID_API_PORT/weather" --key "$BUYER_KEY" \
      --max-amount "$PAID_API_PRICE" || true
    sleep "$PAY_EVERY"
  done
) >"$DIR/buyer.log" 2>&1 &
AGENT_PIDS+=($!)

# The token balance of an L1 address, in base units.
l1_balance() {
  local r v
  r=$(curl -fsS -H 'content-type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_call\",\"params\":[{\"to\":\"$TOKEN\",\"data\":\"0x70a08231000000000000000000000000${1#0x}\"},\"latest\"]}" \
    "$ROLLUP_L1_RPC" | sed -n 's/.*"result":"0x\([0-9a-fA-F]*\)".*/\1/p')
  v=$(echo "$r" | sed 's/^0*//')
  echo $((16#${v:-0}))
}

cat <<INFO

  devnet is up
  gRPC (rollup.v1, reflection on):  127.0.0.1:$GRPC_PORT   e.g. grpcurl -plaintext 127.0.0.1:$GRPC_PORT list
  explorer: http://127.0.0.1:$HTTP_PORT/explorer   (blocks, batches and their L1 finality, txs, accounts, live bridge events)
  HTTP:    http://127.0.0.1:$HTTP_PORT/v1/status   /v1/accounts/{index}   /v1/txs/{id}   /v1/blocks/{n}
  L1:      $ROLLUP_L1_RPC (anvil)  rollup $ROLLUP_ADDRESS  token $TOKEN  ($DIR/l1.json)
  bridge events: curl -N http://127.0.0.1:$HTTP_PORT/v1/bridge/events?cursor=0   (gRPC: rollup.v1.BridgeEvents/Watch)
  deposit: $ROLLUP deposit --account N --amount A --l1-key $FUNDER_KEY
  back to L1: 250000 withdrawn by agent ${INDICES[0]} and 150000 forced through L1 by agent ${INDICES[1]:-?}
           to $WITHDRAW_TO, claimed on L1 once final (log $DIR/claimer.log)
  health:  http://127.0.0.1:$HTTP_PORT/healthz  /readyz      metrics: http://127.0.0.1:$HTTP_PORT/metrics
  prover:  metrics http://127.0.0.1:$PROVER_METRICS/metrics   log $DIR/prover.log
           verify a batch: $BIN/rollup-prover verify --batch 1 --leaf-size $LEAF_SIZE ${LEAF_FLAGS[*]} --cache-dir $PROVER_CACHE
  wallet:  ROLLUP_ENDPOINT=$ROLLUP_ENDPOINT $ROLLUP balance --account ${INDICES[0]}
  agents:  ${INDICES[*]} (keys in $DIR/agents/), paying each other every $PAY_EVERY s
  split:   agent ${INDICES[0]} paid agents ${INDICES[*]:1} at once: $SPLIT_DEMO
  shares:  $SHARES_DEMO
  passports: $PASSPORTS_DEMO
  streams: $STREAM_DEMO
           $ROLLUP stream show --payer ${STREAM_PAYER:-N} --slot 0   (logs $DIR/stream-payer.log, $DIR/stream-payee.log)
           $ROLLUP split --key $DIR/agents/agent1.json --to N:A --to M:B
  x402:    facilitator http://127.0.0.1:$HTTP_PORT/x402/supported; paid API http://127.0.0.1:$PAID_API_PORT/weather
           ($PAID_API_PRICE to account $PAYEE per call), bought by agent $BUYER every $PAY_EVERY s (log $DIR/buyer.log):
           $ROLLUP fetch http://127.0.0.1:$PAID_API_PORT/weather --key $BUYER_KEY --max-amount $PAID_API_PRICE
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
  for i in "${INDICES[@]}" "$BUYER" $STREAM_PAYER $STREAM_PAYEE $REVENUE; do curl -fsS "http://127.0.0.1:$HTTP_PORT/v1/accounts/$i"; echo; done
  echo "x402 purchases settled by the buyer: $(grep -c '^paid ' "$DIR/buyer.log" || true)"
  if [ -n "$REVENUE" ]; then
    echo "revenue account $REVENUE: $($ROLLUP shares show --account "$REVENUE" 2>&1 | tr '\n' ' ')"
    echo "distributes accepted: $(grep -c '^distributed' "$DIR/revenue.log" || true)"
  fi
  if [ "$STREAMS" = 1 ]; then
    echo "stream $STREAM_PAYER/0: $($ROLLUP stream show --payer "$STREAM_PAYER" --slot 0 2>&1 | tr '\n' ' ')"
  fi
  if [ "$PASSPORTS" = 1 ]; then
    echo "passports demo: $(tail -1 "$DIR/agents-demo.log" 2>/dev/null)"
  fi
  echo "L1 token balance of $WITHDRAW_TO (withdrawals claimed on L1): $(l1_balance "$WITHDRAW_TO")" 
else
  echo "Ctrl-C to stop." >&2
  while kill -0 "$NODE_PID" 2>/dev/null; do
    sleep 5
    curl -fsS "http://127.0.0.1:$HTTP_PORT/v1/status" 2>/dev/null | sed 's/^/status: /' || true
    echo
  done
fi
