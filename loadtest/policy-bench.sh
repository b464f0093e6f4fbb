#!/usr/bin/env bash
# Passports under load (docs/BENCHMARKS.md, "Issue 15: every sender under a policy"): a release
# `rollup-node --devnet --experimental-agents` on a fresh database, then ROUNDS alternations of
# a plain `loadtest` run and a `loadtest --policies` run (every sender an agent whose payments
# its passport judges), same agents count, streams, amounts and duration, closed loop. Prints
# each run's JSON report, then the median throughput of each mode and their ratio (the goal:
# policies within 10% of plain). Run it on a quiet machine.
#
#   loadtest/policy-bench.sh                      # 3 rounds of 20 s, 1,000 agents
#   ROUNDS=3 SECS=20 AGENTS=1000 loadtest/policy-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-20}
AGENTS=${AGENTS:-1000}

OUT=target/policy-bench
rm -rf "$OUT" && mkdir -p "$OUT"
. loadtest/bench-node.sh
start_bench_node policy_bench --experimental-agents

LT=($BIN/loadtest --endpoint "http://127.0.0.1:$GRPC_PORT" --json --agents "$AGENTS"
  --duration "$SECS" --warmup 2 --ceiling-seconds 0 --max-presigned 400000)
for round in $(seq 1 "$ROUNDS"); do
  echo "==> round $round: plain" >&2
  "${LT[@]}" | tee "$OUT/plain-$round.json"
  echo "==> round $round: every sender under a policy" >&2
  "${LT[@]}" --policies | tee "$OUT/policies-$round.json"
done
python3 - "$OUT" <<'PY'
import json, sys, glob, statistics
out = sys.argv[1]
tps = {m: [json.load(open(f))["tps"] for f in sorted(glob.glob(f"{out}/{m}-*.json"))]
       for m in ("plain", "policies")}
med = {m: statistics.median(v) for m, v in tps.items()}
print(json.dumps({
    "plain_tps": [round(x) for x in tps["plain"]],
    "policies_tps": [round(x) for x in tps["policies"]],
    "plain_median": round(med["plain"]),
    "policies_median": round(med["policies"]),
    "ratio": round(med["policies"] / med["plain"], 3),
}))
PY
