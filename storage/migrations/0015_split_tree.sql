-- A batch with a split has a fifth proof tree, its split-credit chain (`splits`, SPEC 19.5),
-- whose root the final job verifies beside the other four. Every job of such a batch says so
-- (`splits`), as every job says its diff kind: the final job's children and the final circuit
-- depend on it. Jobs planned before this migration belong to batches without splits.
ALTER TABLE prover_jobs DROP CONSTRAINT IF EXISTS prover_jobs_tree_check;
ALTER TABLE prover_jobs
    ADD CONSTRAINT prover_jobs_tree_check
        CHECK (tree IN ('range', 'diff', 'priority', 'payout', 'splits'));
ALTER TABLE prover_jobs ADD COLUMN IF NOT EXISTS splits BOOLEAN NOT NULL DEFAULT false;
