#!/usr/bin/env bash
# Nonce lanes (docs/BENCHMARKS.md, "Issue 15: one account, eight lanes"): a release
# `rollup-node --devnet --experimental-agents` on a fresh database, one shared account
# registered and funded, then eight `loadtest --lane L` processes (L = 0..7) that share nothing
# but the account's key file, each paying at LANE_RATE per second for SECS seconds. Prints each
# worker's JSON report, then the sum: payments per second from the one account and every
# rejection by reason (the goal: 4,000/s for a minute with zero BAD_NONCE). Run it on a quiet
# machine: node, Postgres and the eight workers share it.
#
#   loadtest/lanes-bench.sh                      # 8 lanes x 500/s for 60 s
#   LANES=8 LANE_RATE=500 SECS=60 loadtest/lanes-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

LANES=${LANES:-8}
LANE_RATE=${LANE_RATE:-500}
SECS=${SECS:-60}
WARMUP=${WARMUP:-2}

OUT=target/lanes-bench
rm -rf "$OUT" && mkdir -p "$OUT"
. loadtest/bench-node.sh
start_bench_node lanes_bench --experimental-agents

export ROLLUP_ENDPOINT="http://127.0.0.1:$GRPC_PORT"
W="$BIN/rollup --json"
$W keygen --out "$OUT/shared.json" >/dev/null
$W keygen --out "$OUT/payee.json" >/dev/null
$W register --key "$OUT/shared.json" >/dev/null
PAYEE=$($W register --key "$OUT/payee.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["index"])')
PAYER=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["account_index"])' "$OUT/shared.json")
$W faucet --account "$PAYER" --amount $((LANES * LANE_RATE * (SECS + WARMUP) * 2)) >/dev/null

echo "==> $LANES workers of account $PAYER, one lane each, $LANE_RATE/s for $SECS s" >&2
PIDS=()
for lane in $(seq 0 $((LANES - 1))); do
  $BIN/loadtest --json --lane "$lane" --key "$OUT/shared.json" --to "$PAYEE" \
    --rate "$LANE_RATE" --duration "$SECS" --warmup "$WARMUP" \
    >"$OUT/lane-$lane.json" 2>"$OUT/lane-$lane.log" &
  PIDS+=($!)
done
FAILED=0
for pid in "${PIDS[@]}"; do wait "$pid" || FAILED=1; done
cat "$OUT"/lane-*.json
python3 - "$OUT" "$LANES" <<'PY'
import json, sys, glob
out, lanes = sys.argv[1], int(sys.argv[2])
reports = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/lane-*.json")) if open(f).read().strip()]
rejected = {}
for r in reports:
    for code, n in r["rejected_by_reason"].items():
        rejected[code] = rejected.get(code, 0) + n
print(json.dumps({
    "lanes": lanes,
    "reports": len(reports),
    "accepted": sum(r["accepted"] for r in reports),
    "tps_sum": round(sum(r["tps"] for r in reports), 1),
    "tps_per_lane": [round(r["tps"], 1) for r in reports],
    "p50_ms_max": max(r["p50_ms"] for r in reports),
    "p99_ms_max": max(r["p99_ms"] for r in reports),
    "rejected_by_reason": rejected,
    "bad_nonce": rejected.get("BAD_NONCE", 0),
}))
PY
exit $FAILED
