-- The proving job system (rollup-prover): job inputs, timings, fencing, the final proofs, and
-- batches the native rules reject.

-- A batch the prover's re-execution of the rules rejects is never proven: 'rejected', with why.
ALTER TABLE batches DROP CONSTRAINT IF EXISTS batches_status_check;
ALTER TABLE batches ADD CONSTRAINT batches_status_check
    CHECK (status IN ('sealed', 'proving', 'proven', 'rejected', 'committed', 'finalized'));
ALTER TABLE batches ADD COLUMN rejection TEXT;
CREATE INDEX batches_status ON batches (status, number);

-- Jobs: a merge or final job waits ('waiting') until its children are done, then is 'queued'.
ALTER TABLE prover_jobs DROP CONSTRAINT IF EXISTS prover_jobs_state_check;
ALTER TABLE prover_jobs ADD CONSTRAINT prover_jobs_state_check
    CHECK (state IN ('waiting', 'queued', 'running', 'done', 'failed'));
ALTER TABLE prover_jobs
    ADD COLUMN input        BYTEA,        -- serialized leaf witness (leaf jobs)
    ADD COLUMN started_at   TIMESTAMPTZ,  -- when the current attempt was claimed
    ADD COLUMN prove_ms     BIGINT,       -- proving time of the attempt that completed the job
    ADD COLUMN statement    JSONB,        -- the RangeStatement (or BatchStatement) proven
    ADD COLUMN completions  INTEGER NOT NULL DEFAULT 0, -- times completed: must end at 1
    ADD COLUMN completed_by TEXT;         -- worker whose result was kept
CREATE INDEX prover_jobs_claim ON prover_jobs (kind, state, batch_number, id)
    WHERE state = 'queued';
CREATE INDEX prover_jobs_running ON prover_jobs (heartbeat_at) WHERE state = 'running';

-- The final (wrap-ready) proof of each proven batch.
CREATE TABLE batch_proofs (
    batch_number  BIGINT PRIMARY KEY REFERENCES batches (number),
    top_level     INTEGER NOT NULL,        -- aggregation levels under the final proof
    proof         BYTEA NOT NULL,          -- rollup_prover::verify batch proof encoding
    statement     JSONB NOT NULL,          -- the BatchStatement it proves
    digest        BYTEA NOT NULL,          -- BatchStatement::digest(), the public input
    leaves        INTEGER NOT NULL,
    prove_ms      BIGINT NOT NULL,         -- sum of proving times of all jobs of the batch
    proven_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
