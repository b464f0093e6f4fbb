-- A batch is proven by four trees of jobs (SPEC 13.11): the transactions (`range`), the state
-- diff, the priority ops consumed and the payout tree, each with the same number of leaves,
-- and one final job over their four roots (filed under `range`).
--
-- Jobs planned before this migration belong to the previous final circuit (one tree, a Poseidon
-- statement the L1 does not compute): batches being proven, or proven but not yet committed,
-- go back to `sealed` and are planned again; their jobs and proofs are dropped.
DELETE FROM batch_proofs WHERE batch_number IN
    (SELECT number FROM batches WHERE status IN ('proving', 'proven'));
DELETE FROM prover_jobs WHERE batch_number IN
    (SELECT number FROM batches WHERE status IN ('proving', 'proven'));
UPDATE batches SET status = 'sealed' WHERE status IN ('proving', 'proven');

ALTER TABLE prover_jobs
    ADD COLUMN tree TEXT NOT NULL DEFAULT 'range'
        CHECK (tree IN ('range', 'diff', 'priority', 'payout'));
ALTER TABLE prover_jobs DROP CONSTRAINT prover_jobs_batch_number_kind_level_position_key;
ALTER TABLE prover_jobs ADD CONSTRAINT prover_jobs_node
    UNIQUE (batch_number, tree, kind, level, position);

-- The final proof's public input is now the SHA-256 of the L1 statement (32 bytes).
COMMENT ON COLUMN batch_proofs.digest IS 'sha256 of the 252-byte L1 statement (SPEC 15.3)';
