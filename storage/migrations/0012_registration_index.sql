-- An account's registration is the one row whose `account_index` is the account. Reads of an
-- account's transactions (a receipt watch, a history page) find it through this index; without
-- it, every history page scanned the whole log for that one row. Partial: only registrations
-- (and an agent's delegation) carry the column, so a transfer's insert does not touch it.
CREATE INDEX IF NOT EXISTS transactions_registered
    ON transactions (account_index, seq) WHERE account_index IS NOT NULL;
