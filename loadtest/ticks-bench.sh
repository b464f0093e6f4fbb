#!/usr/bin/env bash
# The tick relay under load (docs/BENCHMARKS.md, "Issue 14: the tick relay under load"): a
# release `rollup-node --devnet --experimental-streams` on a fresh database, then `loadtest
# --ticks` with 1,000 agents each streaming to the next over CALLS SendTicks calls: ROUNDS runs
# at RATE ticks per second (open loop: latency counts from each tick's scheduled time), and one
# closed-loop run (as fast as acknowledged, WINDOW in flight per call). Prints each run's JSON
# report, then the median p99 of the scheduled runs (the goal: under 5 ms at 50,000/s, half of
# the 100,000/s goal). Run it on a quiet machine: node, Postgres and generator share it.
#
#   loadtest/ticks-bench.sh
#   ROUNDS=4 RATE=50000 SECS=20 loadtest/ticks-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-4}
RATE=${RATE:-50000}
SECS=${SECS:-20}
WARMUP=${WARMUP:-3}
AGENTS=${AGENTS:-1000}
CALLS=${CALLS:-16}
WINDOW=${WINDOW:-256}

OUT=target/ticks-bench
rm -rf "$OUT" && mkdir -p "$OUT"
. loadtest/bench-node.sh
start_bench_node ticks_bench --experimental-streams

EP="http://127.0.0.1:$GRPC_PORT"
for round in $(seq 1 "$ROUNDS"); do
  echo "==> round $round: $RATE ticks/s scheduled for $SECS s" >&2
  $BIN/loadtest --endpoint "$EP" --json --ticks --agents "$AGENTS" --streams "$CALLS" \
    --duration "$SECS" --warmup "$WARMUP" --rate "$RATE" >"$OUT/rate-$round.json"
  cat "$OUT/rate-$round.json"
done
echo "==> closed loop, $WINDOW in flight per call" >&2
$BIN/loadtest --endpoint "$EP" --json --ticks --agents "$AGENTS" --streams "$CALLS" \
  --duration "$SECS" --warmup "$WARMUP" --window "$WINDOW" >"$OUT/closed.json"
cat "$OUT/closed.json"
python3 - "$OUT" <<'PY'
import glob, json, statistics, sys
runs = [json.load(open(f)) for f in sorted(glob.glob(f"{sys.argv[1]}/rate-*.json"))]
p99 = [r["latency_ms"]["p99"] for r in runs]
closed = json.load(open(f"{sys.argv[1]}/closed.json"))
print(json.dumps({
    "scheduled_per_second": runs[0]["target_tps"],
    "accepted_per_second": [round(r["accepted_per_second"]) for r in runs],
    "p99_ms": [round(x, 2) for x in p99],
    "p99_ms_median": round(statistics.median(p99), 2),
    "refused": sum(sum(r["refused"].values()) for r in runs + [closed]),
    "closed_loop_accepted_per_second": round(closed["accepted_per_second"]),
    "closed_loop_p99_ms": round(closed["latency_ms"]["p99"], 2),
}))
PY
