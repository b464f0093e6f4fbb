#!/usr/bin/env bash
# CPU per accepted transfer of the node and of Postgres at a fixed rate below saturation,
# NODE_A against NODE_B (docs/BENCHMARKS.md, issue 10, "An account's transactions by block").
# At saturation the ratio moves with the VM's speed from minute to minute; CPU seconds per
# transaction at a fixed offered rate do not depend on it as much, and tell which process a
# change made cheaper. ROUNDS alternations of: a release `rollup-node --devnet` of the binary
# on a fresh database, `loadtest --rate RATE --duration SECS` (no ceiling), and the CPU time
# the node and every Postgres process of the cluster used meanwhile (/proc/<pid>/stat, utime +
# stime; the postmaster's children that exited count through its cutime + cstime), divided by
# the transfers accepted. The node's figure includes its verifier threads' spinning while they
# wait for work (rayon), which grows as the rate falls: compare it only at one rate.
#
#   NODE_A=/tmp/node-main NODE_B=/tmp/node-change ROUNDS=3 RATE=8000 loadtest/cpu-ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-30}
RATE=${RATE:-8000}
NODE_A=${NODE_A:-target/release/rollup-node}
NODE_B=${NODE_B:-}

OUT=target/cpu-ab
rm -rf "$OUT" && mkdir -p "$OUT"
. loadtest/bench-node.sh

# Clock ticks of process $1 (utime + stime; with $2 = 1, plus its waited-for children's).
ticks() {
  awk -v children="${2:-0}" '{ t = $14 + $15; if (children) t += $16 + $17; print t }' \
    "/proc/$1/stat" 2>/dev/null || echo 0
}

# Clock ticks of the Postgres cluster: the postmaster (with its exited children) and every
# live backend and auxiliary process.
pg_ticks() {
  local postmaster total pid
  postmaster=$(pgrep -o -x postgres) || { echo "no Postgres process" >&2; exit 1; }
  total=$(ticks "$postmaster" 1)
  for pid in $(pgrep -x postgres); do
    [ "$pid" = "$postmaster" ] && continue
    total=$((total + $(ticks "$pid")))
  done
  echo "$total"
}

run() {
  local label=$1 node=$2 round=$3 node0 pg0 node1 pg1
  echo "==> round $round: $label ($node)" >&2
  NODE_BIN=$node start_bench_node cpu_ab
  node0=$(ticks "$NODE_PID")
  pg0=$(pg_ticks)
  $BIN/loadtest --endpoint "http://127.0.0.1:$GRPC_PORT" --json --duration "$SECS" \
    --rate "$RATE" --ceiling-seconds 0 >"$OUT/$label-$round.json"
  node1=$(ticks "$NODE_PID")
  pg1=$(pg_ticks)
  stop_bench_node
  python3 - "$OUT/$label-$round.json" "$label" "$round" $((node1 - node0)) $((pg1 - pg0)) \
    "$(getconf CLK_TCK)" <<'PY' | tee -a "$OUT/runs.jsonl"
import json, sys
report, label, rnd, node, pg, hz = sys.argv[1:]
r = json.load(open(report))
n = r["accepted"]
us = lambda ticks: round(int(ticks) * 1e6 / int(hz) / n, 1)
print(json.dumps({"label": label, "round": int(rnd), "accepted": n, "tps": round(r["tps"]),
                  "node_us_per_tx": us(node), "postgres_us_per_tx": us(pg)}))
PY
}

for round in $(seq 1 "$ROUNDS"); do
  run a "$NODE_A" "$round"
  if [ -n "$NODE_B" ]; then
    run b "$NODE_B" "$round"
  fi
done

python3 - "$OUT/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
summary = {}
for label in ("a", "b"):
    mine = [r for r in runs if r["label"] == label]
    if mine:
        summary[label] = {k: statistics.median(r[k] for r in mine)
                          for k in ("node_us_per_tx", "postgres_us_per_tx", "tps")}
print(json.dumps(summary))
PY
