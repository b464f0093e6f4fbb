#!/usr/bin/env bash
# The issue 10 ratio (accepted transfers per second over the verification ceiling `loadtest`
# measures on the same machine, the higher of its measurements just before and just after the
# load), for one node binary or two against each other (docs/BENCHMARKS.md, "Issue 10: ceiling
# ratio and idle watchers"). ROUNDS alternations:
# a release `rollup-node --devnet` of NODE_A (then of NODE_B, if set) on a fresh database, loaded
# by the same release `loadtest` (closed loop, 1,000 agents, 16 streams x 512 in flight, SECS of
# load), then stopped. Prints each run's JSON report, then per binary the runs' tps, ceilings and
# ratios and their medians, and the ratio of the two tps medians. The 3 s ceiling moves by ±15%
# from run to run on a shared VM: compare medians of several rounds, and run it on a quiet
# machine (nothing else running; a build beside it makes every figure meaningless).
#
#   loadtest/ratio-ab.sh                                        # this tree's node, 5 rounds of 30 s
#   NODE_A=/tmp/node-main NODE_B=/tmp/node-change ROUNDS=5 loadtest/ratio-ab.sh
#
# NODE_A and NODE_B are copies of `target/release/rollup-node` built at two commits (copy the
# first aside before building the second).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
SECS=${SECS:-30}
NODE_A=${NODE_A:-target/release/rollup-node}
NODE_B=${NODE_B:-}

OUT=target/ratio-ab
rm -rf "$OUT" && mkdir -p "$OUT"
. loadtest/bench-node.sh

# One run: a fresh node of binary $2 on a fresh database (the same name, dropped and created
# again, so that no autovacuum of an earlier run's log works beside this one), one load.
run() {
  local label=$1 node=$2 round=$3
  echo "==> round $round: $label ($node)" >&2
  NODE_BIN=$node start_bench_node ratio_ab
  $BIN/loadtest --endpoint "http://127.0.0.1:$GRPC_PORT" --json --duration "$SECS" \
    | tee "$OUT/$label-$round.json"
  stop_bench_node
}

for round in $(seq 1 "$ROUNDS"); do
  run a "$NODE_A" "$round"
  if [ -n "$NODE_B" ]; then
    run b "$NODE_B" "$round"
  fi
done

python3 - "$OUT" <<'PY'
import glob, json, statistics, sys
out = sys.argv[1]
summary = {}
for label in ("a", "b"):
    runs = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/{label}-*.json"))]
    if not runs:
        continue
    summary[label] = {
        "tps": [round(r["tps"]) for r in runs],
        "ceiling_tps": [round(r["ceiling_tps"]) for r in runs],
        "ceiling_before_tps": [round(r["ceiling_before_tps"]) for r in runs],
        "ceiling_after_tps": [round(r["ceiling_after_tps"] or 0) for r in runs],
        "ratio": [round(r["ratio"], 3) for r in runs],
        "p99_ms": [round(r["p99_ms"]) for r in runs],
        "median_tps": round(statistics.median(r["tps"] for r in runs)),
        "median_ratio": round(statistics.median(r["ratio"] for r in runs), 3),
        "median_p99_ms": round(statistics.median(r["p99_ms"] for r in runs)),
    }
if "a" in summary and "b" in summary:
    summary["b_over_a_tps"] = round(summary["b"]["median_tps"] / summary["a"]["median_tps"], 3)
print(json.dumps(summary))
PY
