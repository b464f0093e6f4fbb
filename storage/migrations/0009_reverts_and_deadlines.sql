-- Following `Rollup.revertBatches` (SPEC 16.3) and keeping priority-op deadlines (SPEC 16.2).
--
-- The L1 deadline of each priority op (unix seconds, from its `Deposit` or
-- `ForcedWithdrawalRequested` log): the sequencer does not seal a batch that would leave an op
-- whose deadline falls before the batch can be committed unconsumed. NULL for ops recorded
-- before this migration (all of them consumed long since on a running deployment).
ALTER TABLE l1_priority_ops ADD COLUMN deadline BIGINT;

-- `superseded`: a mined (or mined and reverted) commit or finalization of a batch that
-- `Rollup.revertBatches` took off L1 afterwards. Kept for the record, no longer followed to
-- the confirmation depth and no longer counted as a failed attempt: the batch is committed again.
ALTER TABLE l1_submissions DROP CONSTRAINT l1_submissions_status_check;
ALTER TABLE l1_submissions ADD CONSTRAINT l1_submissions_status_check
    CHECK (status IN ('signed', 'sent', 'mined', 'replaced', 'failed', 'superseded'));
