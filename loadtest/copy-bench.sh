#!/usr/bin/env bash
# The committer's insert of the log's rows, `INSERT ... SELECT * FROM UNNEST(arrays)` (before
# commit 30d4175) against `COPY ... FROM STDIN (FORMAT binary)` (since), on a load test's own
# rows (docs/BENCHMARKS.md, issue 10, "The log's rows by `COPY`"). Starts a release
# `rollup-node --devnet` on a fresh database, loads it for SECS with `loadtest`, stops it, then in
# that database: takes up to ROWS of the transfers it accepted in chunks of 1,000 (as arrays in
# a table for UNNEST, stored uncompressed; as binary COPY files for COPY), and ROUNDS times, for
# each form in turn, empties a copy of `transactions` (same columns, defaults and indexes),
# checkpoints, and inserts every chunk, one statement per chunk. Prints the server time of each
# (psql's \timing, summed) and the medians. Run it with nothing else on the machine.
#
#   loadtest/copy-bench.sh                      # 4 rounds on ~250,000 rows
#   ROUNDS=8 ROWS=259000 SECS=30 loadtest/copy-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-4}
SECS=${SECS:-20}
ROWS=${ROWS:-250000}

OUT=$PWD/target/copy-bench
rm -rf "$OUT" && mkdir -p "$OUT"
. loadtest/bench-node.sh
start_bench_node copy_bench
$BIN/loadtest --endpoint "http://127.0.0.1:$GRPC_PORT" --json --duration "$SECS" \
  --ceiling-seconds 0 >"$OUT/load.json"
stop_bench_node
COLS="seq, tx_id, kind, sender, recipient, account_index, raw, block_number, position, block_time, batch_time"

psql "$DB_URL" -q -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE bench_src AS
  SELECT $COLS, row_number() OVER (ORDER BY seq) - 1 AS n
  FROM transactions WHERE kind = 2 ORDER BY seq LIMIT $ROWS;
CREATE TABLE bench_arrays (chunk bigint, seq bigint[], tx_id bytea[], kind smallint[],
  sender bigint[], recipient bigint[], account_index bigint[], raw bytea[],
  block_number bigint[], position int[], block_time bigint[], batch_time bigint[]);
ALTER TABLE bench_arrays ALTER seq SET STORAGE EXTERNAL, ALTER tx_id SET STORAGE EXTERNAL,
  ALTER kind SET STORAGE EXTERNAL, ALTER sender SET STORAGE EXTERNAL,
  ALTER recipient SET STORAGE EXTERNAL, ALTER account_index SET STORAGE EXTERNAL,
  ALTER raw SET STORAGE EXTERNAL, ALTER block_number SET STORAGE EXTERNAL,
  ALTER position SET STORAGE EXTERNAL, ALTER block_time SET STORAGE EXTERNAL,
  ALTER batch_time SET STORAGE EXTERNAL;
INSERT INTO bench_arrays SELECT n / 1000, array_agg(seq ORDER BY n), array_agg(tx_id ORDER BY n),
  array_agg(kind ORDER BY n), array_agg(sender ORDER BY n), array_agg(recipient ORDER BY n),
  array_agg(account_index ORDER BY n), array_agg(raw ORDER BY n), array_agg(block_number ORDER BY n),
  array_agg(position ORDER BY n), array_agg(block_time ORDER BY n), array_agg(batch_time ORDER BY n)
  FROM bench_src GROUP BY n / 1000;
CREATE INDEX ON bench_arrays (chunk);
CREATE TABLE bench_log (LIKE transactions INCLUDING ALL);
SQL
chunks=$(psql "$DB_URL" -Atc "SELECT count(*) FROM bench_arrays")
rows=$(psql "$DB_URL" -Atc "SELECT count(*) FROM bench_src")
echo "==> $rows transfers in $chunks chunks; indexes: $(psql "$DB_URL" -Atc "SELECT count(*) FROM pg_indexes WHERE tablename = 'bench_log'")" >&2

for c in $(seq 0 $((chunks - 1))); do
  echo "\\copy (SELECT $COLS FROM bench_src WHERE n / 1000 = $c ORDER BY n) TO '$OUT/c$c.bin' WITH (FORMAT binary)"
done | psql "$DB_URL" -q -v ON_ERROR_STOP=1

{
  echo '\timing on'
  for c in $(seq 0 $((chunks - 1))); do
    echo "INSERT INTO bench_log ($COLS) SELECT u.* FROM bench_arrays a, unnest(a.seq, a.tx_id, \
a.kind, a.sender, a.recipient, a.account_index, a.raw, a.block_number, a.position, a.block_time, \
a.batch_time) u WHERE a.chunk = $c;"
  done
} >"$OUT/unnest.sql"
{
  echo '\timing on'
  for c in $(seq 0 $((chunks - 1))); do
    echo "\\copy bench_log ($COLS) FROM '$OUT/c$c.bin' WITH (FORMAT binary)"
  done
} >"$OUT/copy.sql"

# Server time of one form: empty table, checkpoint, every chunk; the sum of psql's timings.
one() {
  psql "$DB_URL" -q -v ON_ERROR_STOP=1 -c "TRUNCATE bench_log" -c "CHECKPOINT"
  psql "$DB_URL" -q -v ON_ERROR_STOP=1 -f "$OUT/$1.sql" | awk '/^Time:/ { s += $2 } END { printf "%.0f\n", s }'
}

: >"$OUT/times"
for round in $(seq 1 "$ROUNDS"); do
  u=$(one unnest)
  c=$(one copy)
  echo "round $round: unnest ${u} ms, copy ${c} ms" >&2
  echo "$u $c" >>"$OUT/times"
done

python3 - "$OUT/times" "$rows" <<'PY'
import json, statistics, sys
pairs = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
u = [p[0] for p in pairs]
c = [p[1] for p in pairs]
print(json.dumps({
    "rows": int(sys.argv[2]),
    "unnest_ms": u,
    "copy_ms": c,
    "median_unnest_ms": statistics.median(u),
    "median_copy_ms": statistics.median(c),
    "copy_over_unnest": round(statistics.median(c) / statistics.median(u), 3),
}))
PY
