-- A block's transactions are the seq range [first_seq, first_seq + tx_count) of its row in
-- `blocks`, read through the primary key; the (block_number, position) index only cost every
-- insert a fifth b-tree update (docs/BENCHMARKS.md, issue 10: Postgres's share of the load).
DROP INDEX IF EXISTS transactions_block;
