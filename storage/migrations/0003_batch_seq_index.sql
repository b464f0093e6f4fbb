-- Receipts and queries report a transaction's finality from the batch holding it: find that
-- batch by its last seq with one index probe.
CREATE INDEX batches_last_seq ON batches (last_seq);
