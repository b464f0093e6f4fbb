#!/usr/bin/env bash
# Smoke test of the bridge from the command line (debug build, anvil, local Postgres on 5432):
# rollup deposit -> credited; rollup withdraw; batches marked proven by hand (no prover here) ->
# committed and finalized by the node; rollup claim once, a second claim rejected; the SSE feed.
set -e
cd "$(dirname "$0")/.."
B=target/debug
D=/tmp/clismoke; rm -rf $D; mkdir -p $D
bridge/node_modules/.bin/anvil --port 18645 --block-time 1 > $D/anvil.log 2>&1 &
AP=$!
trap 'kill $AP $NP 2>/dev/null || true' EXIT
export ROLLUP_L1_RPC=http://127.0.0.1:18645
sleep 1
G=$($B/rollup-node --devnet --print-genesis-root)
DEP=$($B/rollup-l1 deploy --genesis-root $G)
R=$(echo "$DEP" | sed -n 's/.*"rollup":"\(0x[0-9a-fA-F]*\)".*/\1/p')
T=$(echo "$DEP" | sed -n 's/.*"token":"\(0x[0-9a-fA-F]*\)".*/\1/p')
DB=$($B/rollup-devkit create-db --admin-url "${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}" --name clismoke --reset 2>/dev/null)
$B/rollup-node --devnet --database-url $DB --grpc-addr 127.0.0.1:51961 --http-addr 127.0.0.1:18991 --l1-rpc $ROLLUP_L1_RPC --rollup-address $R --l1-confirmations 1 --l1-poll-ms 200 --batch-max-blocks 1 --batch-max-secs 1 > $D/node.log 2>&1 &
NP=$!
for i in $(seq 50); do curl -fs http://127.0.0.1:18991/readyz >/dev/null 2>&1 && break; sleep 0.2; done
export ROLLUP_ENDPOINT=http://127.0.0.1:51961
echo 0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d > $D/k1
$B/rollup-l1 mint --token $T --to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --amount 5000000
$B/rollup keygen --out $D/a.json >/dev/null
$B/rollup register --key $D/a.json
$B/rollup faucet --account 1 --amount 5 || echo "(faucet refused as expected)"
$B/rollup deposit --account 1 --amount 1000000 --l1-key $D/k1
for i in $(seq 30); do $B/rollup balance --account 1 | grep -q 1000000 && break; sleep 0.5; done
$B/rollup balance --account 1
$B/rollup withdraw --key $D/a.json --to-l1 0x00000000000000000000000000000000000000b0 --amount 300000
for i in $(seq 60); do
  psql -q "$DB" -c "INSERT INTO prover_jobs (batch_number, kind, state, proof) SELECT number, 'final', 'done', '\x01'::bytea FROM batches WHERE status = 'sealed' ON CONFLICT DO NOTHING; UPDATE batches SET status='proven' WHERE status='sealed';" >/dev/null
  B2=$(psql -tAq "$DB" -c "SELECT l.batch_number FROM l1_batches l WHERE jsonb_array_length(payouts) > 0 AND finalize_block IS NOT NULL")
  [ -n "$B2" ] && break; sleep 0.5
done
echo "withdrawal batch: $B2"
$B/rollup claim --batch $B2 --index 0 --l1-key $D/k1 --http http://127.0.0.1:18991
$B/rollup claim --batch $B2 --index 0 --l1-key $D/k1 --http http://127.0.0.1:18991 && echo "SECOND CLAIM WORKED?!" || echo "(second claim rejected as expected)"
curl -s -N --max-time 2 'http://127.0.0.1:18991/v1/bridge/events?cursor=0' | grep '^event:' | sort | uniq -c
