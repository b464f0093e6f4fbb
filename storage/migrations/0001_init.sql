-- Initial schema of the sequencer. Amounts and indices are stored as BIGINT: every value is
-- below 2^63 by the protocol's rules (docs/SPEC.md section 5).

-- Chain parameters fixed at genesis (chain id, rollup address, operator key). A node refuses to
-- start against a database created for other parameters.
CREATE TABLE chain_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every accepted transaction, in acceptance order. This is the durable log the state is rebuilt
-- from; a row exists before its receipt is sent, and doubles as the receipt.
CREATE TABLE transactions (
    seq           BIGINT PRIMARY KEY,          -- global acceptance order, from 1
    tx_id         BYTEA NOT NULL UNIQUE,       -- message hash (32 bytes)
    kind          SMALLINT NOT NULL,           -- 1 register, 2 transfer, 3 withdraw, 4 deposit
    sender        BIGINT,                      -- signer's account (transfer, withdraw)
    recipient     BIGINT,                      -- credited account (transfer, deposit)
    account_index BIGINT,                      -- index assigned by a register
    raw           BYTEA NOT NULL,              -- canonical encoding (SPEC section 9)
    block_number  BIGINT NOT NULL,
    position      INTEGER NOT NULL,
    block_time    BIGINT NOT NULL,             -- unix seconds of the block (for replay)
    accepted_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX transactions_block ON transactions (block_number, position);
CREATE INDEX transactions_sender ON transactions (sender, seq) WHERE sender IS NOT NULL;
CREATE INDEX transactions_recipient ON transactions (recipient, seq) WHERE recipient IS NOT NULL;

-- Receipts are the durable transactions seen from the client's side.
CREATE VIEW receipts AS
    SELECT tx_id, seq, block_number, position, account_index, accepted_at FROM transactions;

-- Sealed blocks (every ~250 ms). The root is recomputed and checked at recovery.
CREATE TABLE blocks (
    number      BIGINT PRIMARY KEY,
    state_root  BYTEA NOT NULL,
    first_seq   BIGINT NOT NULL,               -- first transaction seq (== next seq when empty)
    tx_count    INTEGER NOT NULL,
    block_time  BIGINT NOT NULL,
    sealed_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Batches for the prover, sealed by size or time.
CREATE TABLE batches (
    number                 BIGINT PRIMARY KEY,
    first_block            BIGINT NOT NULL,
    last_block             BIGINT NOT NULL,
    first_seq              BIGINT NOT NULL,
    last_seq               BIGINT NOT NULL,    -- first_seq - 1 when the batch is empty
    old_root               BYTEA NOT NULL,
    new_root               BYTEA NOT NULL,
    pubdata_commitment     BYTEA NOT NULL,
    withdrawals_commitment BYTEA NOT NULL,
    first_deposit_seq      BIGINT NOT NULL,    -- L1 deposits consumed: [first, next)
    next_deposit_seq       BIGINT NOT NULL,
    tx_count               INTEGER NOT NULL,
    status                 TEXT NOT NULL DEFAULT 'sealed'
        CHECK (status IN ('sealed', 'proving', 'proven', 'committed', 'finalized')),
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- What the prover needs for a batch besides the transactions themselves: pubdata and the
-- commitments, as a versioned JSON document (see sequencer/src/batch.rs).
CREATE TABLE batch_witness (
    batch_number BIGINT PRIMARY KEY REFERENCES batches (number),
    pubdata      BYTEA NOT NULL,
    witness      JSONB NOT NULL
);

-- Proving jobs, claimed with FOR UPDATE SKIP LOCKED by prover workers (prover issue).
CREATE TABLE prover_jobs (
    id            BIGSERIAL PRIMARY KEY,
    batch_number  BIGINT NOT NULL REFERENCES batches (number),
    kind          TEXT NOT NULL CHECK (kind IN ('leaf', 'merge', 'final')),
    level         INTEGER NOT NULL DEFAULT 0,
    position      INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'done', 'failed')),
    worker        TEXT,
    heartbeat_at  TIMESTAMPTZ,
    attempts      INTEGER NOT NULL DEFAULT 0,
    proof         BYTEA,
    error         TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ,
    UNIQUE (batch_number, kind, level, position)
);
CREATE INDEX prover_jobs_queue ON prover_jobs (state, id);
