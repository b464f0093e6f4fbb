-- The circuit that proves a batch's published state diff (SPEC 13.11): `v1` for version 1
-- diffs, `v4` and `v4-agents` for the grouped version 4 diffs without and with passport or
-- lanes records. The planner chooses it per batch and writes it on every job of the batch: the
-- diff tree's jobs prove with that kind's chunk and merge circuits, the final job with that
-- kind's settlement circuit. Jobs planned before this migration are version 1 diffs.
ALTER TABLE prover_jobs
    ADD COLUMN IF NOT EXISTS diff_kind TEXT NOT NULL DEFAULT 'v1'
        CHECK (diff_kind IN ('v1', 'v4', 'v4-agents'));
