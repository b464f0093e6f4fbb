-- The transaction id is a message hash: uniformly random 32-byte keys. In the unique B-tree of
-- 0001 every insert descended to a random leaf, compared 32-byte keys on the way and split
-- pages all over the index: the costliest of the log's index entries (docs/BENCHMARKS.md,
-- issue 10, "Postgres's share"). A hash index stores 4-byte hash codes in buckets and serves
-- the only query by id there is (equality: a receipt by id); it cannot be UNIQUE, and need not
-- be: the id is the hash of a message that holds the sender and its nonce (or the key of a
-- registration, or the L1 position of a deposit), which the rules accept at most once, and a
-- resubmission is answered from the writer's window or found by this index before the rules
-- refuse it.
ALTER TABLE transactions DROP CONSTRAINT IF EXISTS transactions_tx_id_key;
CREATE INDEX IF NOT EXISTS transactions_tx_id ON transactions USING hash (tx_id);
