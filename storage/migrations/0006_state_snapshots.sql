-- State snapshots (docs/SPEC.md, "Node storage"): the whole state at the end of a sealed
-- batch, so that a restart replays only the transactions after the latest snapshot.
-- A snapshot is written in one transaction (its row and all its chunks) after the batch it
-- belongs to is durable, so a row here is always complete; `sha256` covers the bytes of all
-- chunks in order and is checked before the bytes are decoded.
CREATE TABLE state_snapshots (
    batch_number    BIGINT PRIMARY KEY REFERENCES batches (number),
    block_number    BIGINT NOT NULL,         -- the batch's last block
    last_seq        BIGINT NOT NULL,         -- the batch's last transaction seq
    block_time      BIGINT NOT NULL,         -- that block's time (block times never go back)
    state_root      BYTEA NOT NULL,          -- == blocks.state_root of block_number
    format_version  INTEGER NOT NULL,
    byte_len        BIGINT NOT NULL,
    sha256          BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE state_snapshot_chunks (
    batch_number    BIGINT NOT NULL REFERENCES state_snapshots (batch_number) ON DELETE CASCADE,
    chunk           INTEGER NOT NULL,
    data            BYTEA NOT NULL,
    PRIMARY KEY (batch_number, chunk)
);
-- Digests and keys do not compress: skip TOAST's compression attempt on every chunk.
ALTER TABLE state_snapshot_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
