-- The bridge (issue 5 part 2, docs/SPEC.md section 16): L1 priority ops seen by the watcher,
-- the watcher's L1 cursor, batch submissions to L1, and the event feed for exchanges.

-- L1 priority-queue ops (deposits and forced withdrawals) as seen in Rollup's logs. One row per
-- log occurrence: after a reorg the same serial can reappear in another block, as a new row.
-- At most one row per serial is not 'reorged'.
CREATE TABLE l1_priority_ops (
    id            BIGSERIAL PRIMARY KEY,
    serial        BIGINT NOT NULL,               -- queue serial = L2 deposit seq
    kind          TEXT NOT NULL CHECK (kind IN ('deposit', 'forced_withdrawal')),
    depositor     BYTEA NOT NULL,                -- L1 sender (20 bytes)
    recipient     BIGINT NOT NULL,               -- L2 account index
    amount        BIGINT NOT NULL,
    priority_hash BYTEA NOT NULL,                -- H_{serial+1} (SPEC 15.2)
    payload       BYTEA,                         -- forced withdrawal: the withdraw tx
    l1_block      BIGINT NOT NULL,
    l1_block_hash BYTEA NOT NULL,
    l1_tx_hash    BYTEA NOT NULL,
    log_index     BIGINT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'seen'
        CHECK (status IN ('seen', 'confirmed', 'credited', 'reorged')),
    l2_tx_id      BYTEA,                         -- the L2 deposit transaction, once credited
    seen_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (l1_block_hash, log_index)
);
CREATE UNIQUE INDEX l1_priority_ops_live_serial ON l1_priority_ops (serial) WHERE status <> 'reorged';
CREATE INDEX l1_priority_ops_status ON l1_priority_ops (status, serial);

-- Where the watcher is: every block <= final_block is past the confirmation depth and fully
-- processed; last_block/last_hash is the newest head it looked at.
CREATE TABLE l1_sync (
    id           BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    final_block  BIGINT NOT NULL,
    last_block   BIGINT NOT NULL,
    last_hash    BYTEA NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Batch submissions to L1. A row is written (status 'signed', with nonce and tx hash) before
-- the transaction is broadcast, so a restart finds it and never sends a second one blindly.
CREATE TABLE l1_submissions (
    id            BIGSERIAL PRIMARY KEY,
    batch_number  BIGINT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('commit', 'finalize')),
    nonce         BIGINT NOT NULL,
    l1_tx_hash    BYTEA NOT NULL,
    gas_price     NUMERIC NOT NULL,
    raw_tx        BYTEA NOT NULL,
    status        TEXT NOT NULL DEFAULT 'signed'
        CHECK (status IN ('signed', 'sent', 'mined', 'replaced', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 1,
    l1_block      BIGINT,
    error         TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX l1_submissions_batch ON l1_submissions (batch_number, kind, id);

-- L1 facts about batches (the batches table keeps the L2 side and its status).
CREATE TABLE l1_batches (
    batch_number     BIGINT PRIMARY KEY,
    header           BYTEA NOT NULL,                -- abi.encode(BatchHeader) as committed
    pubdata_hash     BYTEA NOT NULL,
    statement        BYTEA NOT NULL,
    withdrawals_root BYTEA NOT NULL,
    commit_tx        BYTEA,
    commit_block     BIGINT,
    finalize_tx      BYTEA,
    finalize_block   BIGINT,
    payouts          JSONB NOT NULL DEFAULT '[]'
);

-- The event feed for exchanges. `id` is the cursor. Writers take
-- pg_advisory_xact_lock(5_000_001) before inserting, so ids become visible in id order and a
-- reader following `id > cursor` never skips a row that commits late.
CREATE TABLE bridge_events (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT NOT NULL,
    payload     JSONB NOT NULL,
    finality    TEXT NOT NULL,
    l1_tx_hash  BYTEA,
    l1_block    BIGINT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
