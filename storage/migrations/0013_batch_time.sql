-- The agent rules' clock (docs/SPEC.md 18.0): the time of the first block of the batch a
-- transaction is in, the only time the batch proof knows. Recovery and the prover replay each
-- transaction at this time and at `block_time` (for `valid_until`). NULL in rows written
-- before this migration, which were judged at their block's time: they replay with
-- `COALESCE(batch_time, block_time)`, exactly as they were accepted.
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS batch_time BIGINT;
