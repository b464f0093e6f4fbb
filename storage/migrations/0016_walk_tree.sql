-- A batch with a stream settlement has a tick-walk tree (`walks`, SPEC 18.7), whose root the
-- final job verifies after the other trees' (and the split-credit chain's, if any). Every job
-- of such a batch says so (`walks`), as it says its diff kind and `splits`. Jobs planned before
-- this migration belong to batches without walks.
ALTER TABLE prover_jobs DROP CONSTRAINT IF EXISTS prover_jobs_tree_check;
ALTER TABLE prover_jobs
    ADD CONSTRAINT prover_jobs_tree_check
        CHECK (tree IN ('range', 'diff', 'priority', 'payout', 'splits', 'walks'));
ALTER TABLE prover_jobs ADD COLUMN IF NOT EXISTS walks BOOLEAN NOT NULL DEFAULT false;
