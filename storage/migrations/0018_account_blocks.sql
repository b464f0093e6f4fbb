-- An account's transfers, withdrawals and deposits by block instead of one index entry per
-- transaction and side. The `(sender, seq)` and `(recipient, seq)` indexes of 0001 put two
-- B-tree entries into the log per transfer, about a third of what Postgres spends on a
-- saturated node's writes (docs/BENCHMARKS.md, issue 10, "An account's transactions by
-- block"). Here a sealed block adds one row per account it names as sender or recipient,
-- holding the seqs of those transactions (ascending, each once: a transfer to oneself is
-- listed once); an agent paying several times per block costs one row instead of one entry
-- per payment. The key is (account, last seq of the row), so a reader finds the rows on
-- either side of a seq cursor by one range scan of it.
--
-- Rows are written with the block's row, in the same database transaction, so a sealed block
-- is indexed exactly when it exists. The transactions of the block still open are in the
-- node's memory (the sequencer's `unsealed` module), which reads merge; a block sealed by
-- recovery after a crash gets its rows then.
CREATE TABLE IF NOT EXISTS account_blocks (
    account  BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    seqs     BIGINT[] NOT NULL,
    PRIMARY KEY (account, last_seq)
);

-- Existing logs: every sealed block's rows (the open block, after the last sealed one, is
-- sealed by recovery at the next start, which writes its rows).
INSERT INTO account_blocks (account, last_seq, seqs)
SELECT account, max(seq), array_agg(seq ORDER BY seq)
FROM (
    SELECT sender AS account, block_number, seq FROM transactions
    WHERE sender IS NOT NULL
      AND block_number <= (SELECT coalesce(max(number), 0) FROM blocks)
    UNION
    SELECT recipient, block_number, seq FROM transactions
    WHERE recipient IS NOT NULL
      AND block_number <= (SELECT coalesce(max(number), 0) FROM blocks)
) sides
GROUP BY account, block_number
ON CONFLICT DO NOTHING;

DROP INDEX IF EXISTS transactions_sender;
DROP INDEX IF EXISTS transactions_recipient;
