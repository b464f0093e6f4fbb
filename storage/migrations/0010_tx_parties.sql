-- The accounts a transaction pays besides its sender and recipient columns: a split's payees
-- (SPEC 19.4, up to 1,024). Read by an account's receipt watch and history through the primary
-- key (account, seq), like the sender and recipient indexes of `transactions`.
CREATE TABLE IF NOT EXISTS tx_parties (
    account BIGINT NOT NULL,
    seq BIGINT NOT NULL REFERENCES transactions (seq) ON DELETE CASCADE,
    PRIMARY KEY (account, seq)
);
