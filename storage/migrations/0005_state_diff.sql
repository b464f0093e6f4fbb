-- Net state diffs (docs/SPEC.md 10.4): the bytes a batch publishes on L1 as the `pubdata`
-- argument of Rollup.commitBatch. Written by the writer together with the batch, after it
-- checked that the diff leads from the previous batch's root to this batch's root.
-- `pubdata` keeps the per-transaction ops (section 10) that the proof's commitment binds.
-- NULL for batches sealed before this migration: the submitter refuses to commit those
-- (their per-transaction ops are not what L1 expects any more).
ALTER TABLE batch_witness ADD COLUMN l1_pubdata BYTEA;
