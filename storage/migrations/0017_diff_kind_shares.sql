-- The grouped diff circuit with shares runs (SPEC 19.6 "Diff"): a batch whose version 4 diff
-- carries a shares record is proven by the `v4-shares` kind. The column's check gains it.
ALTER TABLE prover_jobs DROP CONSTRAINT IF EXISTS prover_jobs_diff_kind_check;
ALTER TABLE prover_jobs
    ADD CONSTRAINT prover_jobs_diff_kind_check
        CHECK (diff_kind IN ('v1', 'v4', 'v4-agents', 'v4-shares'));
