#!/usr/bin/env bash
# Agent passports (issue 15; docs/API.md, "Agents"; SPEC 20): one owner, three agents under
# different policies paying a merchant for a few rounds, one of them revoked mid-run. Every
# attempt prints its outcome (accepted, or the node's reason code), and the script checks each
# one against what the policy says, exiting 1 on any difference.
#
#   scripts/agents-demo.sh            # its own node, debug build, about a minute
#   DEMO_PROFILE=release scripts/agents-demo.sh
#   DEVNET_PASSPORTS=1 scripts/devnet.sh   # on the proving devnet, to L1 finality
#
# On its own: a node with `--devnet --experimental-agents` on the devkit's Postgres (a private
# cluster unless DATABASE_URL is set), with no L1 and no prover, on free ports, sealing a
# batch every 2 s (the policies judge a spend at its batch's clock, SPEC 18.0): a demo of the
# API and the rules, which proves nothing.
#
# On the proving devnet (scripts/devnet.sh runs it so with DEVNET_PASSPORTS=1, setting
# AGENTS_DEMO_OWNER_KEY to a funded key, AGENTS_DEMO_MERCHANT and AGENTS_DEMO_STRANGER to two
# accounts, AGENTS_DEMO_HTTP to the node, AGENTS_DEMO_BATCH_SECS, ROLLUP_ENDPOINT and BIN):
# the node accepts the passport kinds, allow-lists included, by its pinned circuits (a leaf
# with membership paths, `rollup-prover --leaf-policies lists`), which prove them (SPEC 20.8);
# then the demo waits until the batch holding its last transaction is finalized on L1, every
# batch before it proven and verified on the way.
set -euo pipefail
cd "$(dirname "$0")/.."

ON_DEVNET=0
if [ -n "${AGENTS_DEMO_OWNER_KEY:-}" ]; then ON_DEVNET=1; fi
BATCH_SECS=${AGENTS_DEMO_BATCH_SECS:-2}
DIR=${AGENTS_DEMO_DIR:-.devnet/agents-demo}
rm -rf "$DIR"
mkdir -p "$DIR"
NODE_PID=""
cleanup() {
  if [ -n "$NODE_PID" ]; then
    kill -TERM "$NODE_PID" 2>/dev/null || true
    wait "$NODE_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$ON_DEVNET" = 0 ]; then
  PROFILE=${DEMO_PROFILE:-debug}
  if [ "$PROFILE" = release ]; then
    scripts/build-bins.sh --release
    BIN=target/release
  else
    scripts/build-bins.sh
    BIN=target/debug
  fi
  if [ -z "${DATABASE_URL:-}" ]; then
    ADMIN_URL=$($BIN/rollup-devkit postgres)
    DATABASE_URL=$($BIN/rollup-devkit create-db --admin-url "$ADMIN_URL" --name agents_demo --reset)
  fi
  GRPC_PORT=$($BIN/rollup-devkit free-port)
  HTTP_PORT=$($BIN/rollup-devkit free-port)
  export ROLLUP_ENDPOINT="http://127.0.0.1:$GRPC_PORT"

  echo "==> starting rollup-node --devnet --experimental-agents (log: $DIR/node.log)" >&2
  $BIN/rollup-node --devnet --experimental-agents --database-url "$DATABASE_URL" \
    --grpc-addr "127.0.0.1:$GRPC_PORT" --http-addr "127.0.0.1:$HTTP_PORT" \
    --registration-work-bits 8 --batch-max-secs "$BATCH_SECS" >"$DIR/node.log" 2>&1 &
  NODE_PID=$!
  deadline=$((SECONDS + 60))
  until curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1; do
    if ! kill -0 "$NODE_PID" 2>/dev/null; then
      echo "rollup-node exited; see $DIR/node.log" >&2
      tail -20 "$DIR/node.log" >&2
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "rollup-node not ready after 60 s; see $DIR/node.log" >&2
      exit 1
    fi
    sleep 0.2
  done
fi

ROLLUP="$BIN/rollup"
index_of() { tr -d '\n ' <"$1" | sed -n 's/.*"account_index":\([0-9][0-9]*\).*/\1/p'; }
# A registered key at $DIR/$1.json; prints its account index.
account() {
  $ROLLUP keygen --out "$DIR/$1.json" >/dev/null
  $ROLLUP register --key "$DIR/$1.json" >/dev/null
  index_of "$DIR/$1.json"
}
if [ "$ON_DEVNET" = 1 ]; then
  cp "$AGENTS_DEMO_OWNER_KEY" "$DIR/owner.json"
  OWNER=$(index_of "$DIR/owner.json")
  MERCHANT=$AGENTS_DEMO_MERCHANT
  STRANGER=$AGENTS_DEMO_STRANGER
  echo "==> owner $OWNER (funded on L1), merchant $MERCHANT, stranger $STRANGER" >&2
else
  OWNER=$(account owner)
  MERCHANT=$(account merchant)
  STRANGER=$(account stranger)
  $ROLLUP faucet --account "$OWNER" --amount 1000000 >/dev/null
  echo "==> owner $OWNER (1,000,000 from the faucet), merchant $MERCHANT, stranger $STRANGER" >&2
fi
FAILED=0

# The outcome of a command: `accepted`, or the node's reason code.
outcome() {
  local err
  if err=$("$@" 2>&1 >/dev/null); then
    echo accepted
  else
    # A rejection (`rejected: CODE: ...`) or a refused request (`answered InvalidArgument:
    # CODE: ...`).
    err=$(sed -n 's/.*rejected: \([A-Z_]*\).*/\1/p; s/.*answered [A-Za-z]*: \([A-Z_][A-Z_]*\):.*/\1/p' <<<"$err" | head -1)
    echo "${err:-error}"
  fi
}
# check WHAT GOT EXPECTED: prints the line, marks a difference.
check() {
  local mark=ok
  if [ "$2" != "$3" ]; then
    mark="UNEXPECTED (expected $3)"
    FAILED=1
  fi
  printf '  %-32s %-22s %s\n' "$1" "$2" "$mark"
}

# Three agents (`rollup agent create` signs the delegate with the owner's key), each with a
# card URI (its policy's body, published and proven with the batch):
# - capped:  at most 250 in all (a lifetime cap: window 0), 100 per payment
# - listed:  may pay the merchant only (one payee at a time: no split), no fee; revoked
#            after round 2
# - brief:   its policy expires 8 s from now
agent() {
  local name=$1
  shift
  $ROLLUP keygen --out "$DIR/$name.json" >/dev/null
  $ROLLUP agent create --key "$DIR/owner.json" --agent-key "$DIR/$name.json" --fund 1000 \
    --card-uri "https://agents.example/$name.json" "$@" >/dev/null
  index_of "$DIR/$name.json"
}
CAPPED=$(agent capped --cap 250 --window 0 --max-payment 100)
LISTED=$(agent listed --cap 10000 --max-fee 0 --allow "$MERCHANT")
BRIEF=$(agent brief --cap 10000 --lasts 8)
echo "==> agents: capped $CAPPED, listed $LISTED, brief $BRIEF (1,000 each from the owner)" >&2

# pay NAME TO AMOUNT EXPECTED [FEE]: one payment by agent NAME; EXPECTED is `accepted` or a
# reason code.
pay() {
  local name=$1 to=$2 amount=$3 expected=$4 fee=${5:-0}
  check "$name pays $to $amount (fee $fee)" \
    "$(outcome $ROLLUP pay --key "$DIR/$name.json" --to "$to" --amount "$amount" --fee "$fee")" \
    "$expected"
}

for round in 1 2 3 4; do
  echo "==> round $round" >&2
  case $round in
    1)
      pay capped "$MERCHANT" 100 accepted
      pay capped "$MERCHANT" 150 POLICY_PAYMENT # above its maximum per payment
      pay listed "$MERCHANT" 100 accepted
      pay listed "$STRANGER" 10 POLICY_PAYEE # not on its list
      pay listed "$MERCHANT" 10 POLICY_FEE 1 # a fee above its maximum of 0
      check "listed splits to the merchant" \
        "$(outcome $ROLLUP split --key "$DIR/listed.json" --to "$MERCHANT:5")" POLICY_PAYEE
      pay brief "$STRANGER" 10 accepted
      ;;
    2)
      pay capped "$MERCHANT" 100 accepted
      pay capped "$MERCHANT" 100 POLICY_CAP # 300 would pass its cap of 250
      pay capped "$MERCHANT" 50 accepted
      pay listed "$MERCHANT" 100 accepted
      check "owner revokes listed" \
        "$(outcome $ROLLUP agent revoke --key "$DIR/owner.json" --agent "$LISTED")" accepted
      ;;
    3)
      pay listed "$MERCHANT" 1 REVOKED
      pay capped "$MERCHANT" 1 POLICY_CAP
      echo "  (waiting for brief's policy to expire, and a batch to start after it)" >&2
      sleep $((8 + BATCH_SECS + 2))
      ;;
    4)
      pay brief "$MERCHANT" 10 POLICY_EXPIRED
      pay listed "$MERCHANT" 1 REVOKED
      check "owner sweeps 800 from listed" \
        "$(outcome $ROLLUP agent sweep --key "$DIR/owner.json" --agent "$LISTED" --amount 800)" accepted
      ;;
  esac
done

echo "==> the owner's agents" >&2
$ROLLUP agent list --owner "$OWNER"
echo "==> balances" >&2
for a in owner capped listed brief; do
  printf '  %-9s %s\n' "$a" "$($ROLLUP balance --account "$(index_of "$DIR/$a.json")" 2>&1 | head -1)"
done
for a in "merchant $MERCHANT" "stranger $STRANGER"; do
  set -- $a
  printf '  %-9s %s\n' "$1" "$($ROLLUP balance --account "$2" 2>&1 | head -1)"
done
if [ "$ON_DEVNET" = 1 ] && [ "$FAILED" = 0 ]; then
  # The batch open now holds the last transaction (the sweep): wait for it to be finalized.
  batches() { curl -fsS "$AGENTS_DEMO_HTTP/v1/status" | tr -d '\n ' | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
  target=$(($(batches last_batch) + 1))
  echo "==> waiting for batch $target (the sweep's) to be finalized on L1" >&2
  deadline=$((SECONDS + ${AGENTS_DEMO_FINALITY_SECS:-2400}))
  while true; do
    final=$(batches finalized)
    if [ "${final:-0}" -ge "$target" ]; then break; fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "batch $target not finalized in time (finalized: ${final:-none}, proven: $(batches proven))" >&2
      FAILED=1
      break
    fi
    echo "  sealed $(batches sealed), proven $(batches proven), finalized ${final:-0}" >&2
    sleep 30
  done
  if [ "$FAILED" = 0 ]; then
    echo "==> batch $target finalized: the delegations, spends, revocation and sweep are on L1" >&2
  fi
fi
if [ "$FAILED" != 0 ]; then
  echo "agents demo: an outcome differed from its policy (above)" >&2
  exit 1
fi
echo "==> agents demo: every outcome as its policy says" >&2
