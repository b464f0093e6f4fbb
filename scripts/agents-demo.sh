#!/usr/bin/env bash
# Agent passports on a devnet node (issue 15; docs/API.md, "Agents"; SPEC 20): one owner, three
# agents under different policies paying a merchant for a few rounds, one of them revoked
# mid-run. Every attempt prints its outcome (accepted, or the node's reason code), and the
# script checks each one against what the policy says, exiting 1 on any difference.
#
#   scripts/agents-demo.sh            # debug build (scripts/build-bins.sh), about a minute
#   DEMO_PROFILE=release scripts/agents-demo.sh
#
# What it runs: a node with `--devnet --experimental-agents` on the devkit's Postgres (a
# private cluster unless DATABASE_URL is set), with no L1 and no prover, on free ports, sealing
# a batch every 2 s (the policies judge a spend at its batch's clock, SPEC 18.0). The
# policies are enforced by the node's rules, which are the rules the payment circuit with
# policy checks enforces (SPEC 20.8); but the diff of a batch that creates an agent publishes
# its policy's body, which no diff circuit proves yet (SPEC 20.9), so this node proves and
# finalizes nothing: a demo of the API and the rules, not of settlement.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${DEMO_PROFILE:-debug}
if [ "$PROFILE" = release ]; then
  scripts/build-bins.sh --release
  BIN=target/release
else
  scripts/build-bins.sh
  BIN=target/debug
fi
DIR=.devnet/agents-demo
rm -rf "$DIR"
mkdir -p "$DIR"

if [ -z "${DATABASE_URL:-}" ]; then
  ADMIN_URL=$($BIN/rollup-devkit postgres)
  DATABASE_URL=$($BIN/rollup-devkit create-db --admin-url "$ADMIN_URL" --name agents_demo --reset)
fi
GRPC_PORT=$($BIN/rollup-devkit free-port)
HTTP_PORT=$($BIN/rollup-devkit free-port)
export ROLLUP_ENDPOINT="http://127.0.0.1:$GRPC_PORT"

NODE_PID=""
cleanup() {
  if [ -n "$NODE_PID" ]; then
    kill -TERM "$NODE_PID" 2>/dev/null || true
    wait "$NODE_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> starting rollup-node --devnet --experimental-agents (log: $DIR/node.log)" >&2
$BIN/rollup-node --devnet --experimental-agents --database-url "$DATABASE_URL" \
  --grpc-addr "127.0.0.1:$GRPC_PORT" --http-addr "127.0.0.1:$HTTP_PORT" \
  --registration-work-bits 8 --batch-max-secs 2 >"$DIR/node.log" 2>&1 &
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

ROLLUP="$BIN/rollup"
index_of() { tr -d '\n ' <"$1" | sed -n 's/.*"account_index":\([0-9][0-9]*\).*/\1/p'; }
# A registered key at $DIR/$1.json; prints its account index.
account() {
  $ROLLUP keygen --out "$DIR/$1.json" >/dev/null
  $ROLLUP register --key "$DIR/$1.json" >/dev/null
  index_of "$DIR/$1.json"
}
OWNER=$(account owner)
MERCHANT=$(account merchant)
STRANGER=$(account stranger)
$ROLLUP faucet --account "$OWNER" --amount 1000000 >/dev/null
echo "==> owner $OWNER (1,000,000 from the faucet), merchant $MERCHANT, stranger $STRANGER" >&2

# Three agents (`rollup agent create` signs the delegate with the owner's key):
# - capped:  at most 250 in all (a lifetime cap: window 0), 100 per payment
# - listed:  may pay the merchant only; revoked after round 2
# - brief:   its policy expires 8 s from now
agent() {
  local name=$1
  shift
  $ROLLUP keygen --out "$DIR/$name.json" >/dev/null
  $ROLLUP agent create --key "$DIR/owner.json" --agent-key "$DIR/$name.json" --fund 1000 "$@" >/dev/null
  index_of "$DIR/$name.json"
}
CAPPED=$(agent capped --cap 250 --window 0 --max-payment 100)
LISTED=$(agent listed --cap 10000 --allow "$MERCHANT")
BRIEF=$(agent brief --cap 10000 --lasts 8)
echo "==> agents: capped $CAPPED, listed $LISTED, brief $BRIEF (1,000 each from the owner)" >&2

FAILED=0
# pay NAME TO AMOUNT EXPECTED: one payment by agent NAME; EXPECTED is `accepted` or a reason code.
pay() {
  local name=$1 to=$2 amount=$3 expected=$4 got err
  if err=$($ROLLUP pay --key "$DIR/$name.json" --to "$to" --amount "$amount" 2>&1 >/dev/null); then
    got=accepted
  else
    got=$(sed -n 's/.*rejected: \([A-Z_]*\).*/\1/p' <<<"$err")
    got=${got:-"error: $err"}
  fi
  local mark=ok
  if [ "$got" != "$expected" ]; then
    mark="UNEXPECTED (expected $expected)"
    FAILED=1
  fi
  printf '  %-7s pays %-9s %4s  %-15s %s\n' "$name" "$to" "$amount" "$got" "$mark"
}

for round in 1 2 3 4; do
  echo "==> round $round" >&2
  case $round in
    1)
      pay capped "$MERCHANT" 100 accepted
      pay capped "$MERCHANT" 150 POLICY_PAYMENT # above its maximum per payment
      pay listed "$MERCHANT" 100 accepted
      pay listed "$STRANGER" 10 POLICY_PAYEE # not on its list
      pay brief "$STRANGER" 10 accepted
      ;;
    2)
      pay capped "$MERCHANT" 100 accepted
      pay capped "$MERCHANT" 100 POLICY_CAP # 300 would pass its cap of 250
      pay capped "$MERCHANT" 50 accepted
      pay listed "$MERCHANT" 100 accepted
      echo "  owner revokes listed" >&2
      $ROLLUP agent revoke --key "$DIR/owner.json" --agent "$LISTED" >/dev/null
      ;;
    3)
      pay listed "$MERCHANT" 1 REVOKED
      pay capped "$MERCHANT" 1 POLICY_CAP
      echo "  (waiting for brief's policy to expire, and a batch to start after it)" >&2
      sleep 12
      ;;
    4)
      pay brief "$MERCHANT" 10 POLICY_EXPIRED
      pay listed "$MERCHANT" 1 REVOKED
      echo "  owner sweeps listed's balance back" >&2
      $ROLLUP agent sweep --key "$DIR/owner.json" --agent "$LISTED" --amount 800 >/dev/null
      ;;
  esac
done

echo "==> the owner's agents" >&2
$ROLLUP agent list --owner "$OWNER"
echo "==> balances" >&2
for a in owner merchant stranger capped listed brief; do
  printf '  %-9s %s\n' "$a" "$($ROLLUP balance --account "$(index_of "$DIR/$a.json")" 2>&1 | head -1)"
done
if [ "$FAILED" != 0 ]; then
  echo "agents demo: an outcome differed from its policy (above)" >&2
  exit 1
fi
echo "==> agents demo: every outcome as its policy says" >&2
