//! The committer's bulk insert of `transactions`: `COPY ... FROM STDIN (FORMAT binary)`.
//!
//! Why not `INSERT ... SELECT * FROM UNNEST($1, ...)`: an `INSERT` runs the executor once per
//! row and writes one WAL record per heap tuple, whereas `COPY` fills heap pages in batches
//! (`heap_multi_insert`, one WAL record per page). Index entries are inserted one by one either
//! way. Measured on the log's own rows with its five indexes (docs/BENCHMARKS.md, issue 10,
//! "The log's rows by `COPY`"): 259,000 rows in 1,000-row statements took 14% less server
//! time than the `UNNEST` insert (medians of eight), the client no longer copies every `raw`
//! and id into arrays, and the node sustained ~4% more transfers per second.
//!
//! The binary format (PostgreSQL manual, `COPY`, "Binary Format"): an 11-byte signature, a
//! 32-bit flags field (0: no OIDs) and a 32-bit header extension length (0); then per row a
//! 16-bit field count and per field a 32-bit length (-1 for NULL) followed by the value in
//! the type's binary send format (big-endian integers, raw bytes for `bytea`); then a 16-bit
//! -1 trailer. Every integer is network order. The column list of [`COPY_TXS`] and the order
//! of the writes in [`encode_txs`] are the one thing to keep in step; the round trip test in
//! `tests.rs` reads every column back.

use super::{BlockActivity, TxRow};
use crate::convert::i64_of;

/// The statement [`encode_txs`]'s bytes are the data of. Columns not listed take their
/// default (`accepted_at`: the transaction's `now()`).
pub(super) const COPY_TXS: &str = "COPY transactions (seq, tx_id, kind, sender, recipient, \
     account_index, raw, block_number, position, block_time, batch_time) \
     FROM STDIN (FORMAT binary)";

/// Columns per row of [`COPY_TXS`].
const TX_FIELDS: i16 = 11;

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// The rows in the binary `COPY` format, ready to send whole.
pub(super) fn encode_txs(rows: &[&TxRow]) -> Vec<u8> {
    // Fixed part of a row: the field count, eleven lengths, 8-byte integers for seven
    // columns, the 32-byte id, `kind` and `position`.
    const ROW_FIXED: usize = 2 + 11 * 4 + 7 * 8 + 32 + 2 + 4;
    let raw: usize = rows.iter().map(|r| r.raw.len()).sum();
    let mut out = Buffer::start(rows.len() * ROW_FIXED + raw);
    for r in rows {
        out.0.extend_from_slice(&TX_FIELDS.to_be_bytes());
        out.int8(i64_of(r.seq));
        out.bytes(&r.tx_id);
        out.int2(r.kind);
        out.opt_int8(r.sender.map(i64::from));
        out.opt_int8(r.recipient.map(i64::from));
        out.opt_int8(r.account_index.map(i64::from));
        out.bytes(&r.raw);
        out.int8(i64_of(r.block_number));
        // A block holds far fewer than 2^31 transactions; the clamp only keeps the encoding
        // total (as the `INSERT` it replaced did).
        out.int4(i32::try_from(r.position).unwrap_or(i32::MAX));
        out.int8(i64_of(r.block_time));
        out.int8(i64_of(r.batch_time));
    }
    out.finish()
}

/// The statement [`encode_account_blocks`]'s bytes are the data of.
pub(super) const COPY_ACCOUNT_BLOCKS: &str =
    "COPY account_blocks (account, last_seq, seqs) FROM STDIN (FORMAT binary)";

/// The `int8` type's OID, which a binary array names for its elements (`array_recv` refuses
/// an array whose element type is not the column's).
const INT8_OID: i32 = 20;

/// The `account_blocks` rows of `blocks`' activity in the binary `COPY` format: per account
/// named, its last seq and the array of its seqs. An account with no seq has no row.
pub(super) fn encode_account_blocks<'a>(
    blocks: impl IntoIterator<Item = &'a BlockActivity>,
) -> Vec<u8> {
    let mut out = Buffer::start(0);
    for activity in blocks {
        out.0
            .reserve(activity.len() * (2 + 12 + 24) + activity.entries() * 12);
        for (account, seqs) in activity.sorted() {
            let Some(&last) = seqs.last() else { continue };
            out.0.extend_from_slice(&3i16.to_be_bytes());
            out.int8(i64::from(account));
            out.int8(i64_of(last));
            out.int8_array(seqs);
        }
    }
    out.finish()
}

/// Runs `statement` (a `COPY ... FROM STDIN`) in `db` with `data` as its input.
pub(super) async fn send(
    db: &mut sqlx::PgConnection,
    statement: &str,
    data: Vec<u8>,
) -> crate::Result<()> {
    let mut copy = db.copy_in_raw(statement).await?;
    // On an error, dropping `copy` sends CopyFail, and the caller's transaction rolls back.
    copy.send(data).await?;
    copy.finish().await?;
    Ok(())
}

struct Buffer(Vec<u8>);

impl Buffer {
    /// The file header (signature, flags 0: no OIDs, header extension length 0), with room
    /// for `rows` more bytes.
    fn start(rows: usize) -> Self {
        let mut b = Vec::with_capacity(SIGNATURE.len() + 8 + rows + 2);
        b.extend_from_slice(SIGNATURE);
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        Buffer(b)
    }

    /// The trailer (a field count of -1): the data, ready to send whole.
    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&(-1i16).to_be_bytes());
        self.0
    }

    fn int2(&mut self, v: i16) {
        self.0.extend_from_slice(&2i32.to_be_bytes());
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn int4(&mut self, v: i32) {
        self.0.extend_from_slice(&4i32.to_be_bytes());
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn int8(&mut self, v: i64) {
        self.0.extend_from_slice(&8i32.to_be_bytes());
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn opt_int8(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.int8(v),
            None => self.0.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }

    /// A one-dimensional `int8[]` without NULLs, in `array_send`'s layout: the number of
    /// dimensions (1), a flags word (0: no NULLs), the element type's OID, the dimension's
    /// length and lower bound (1), then each element as a length (8) and its value. A block
    /// holds far fewer than 2^31 transactions, so the lengths fit.
    fn int8_array(&mut self, values: &[u64]) {
        let n = i32::try_from(values.len()).unwrap_or(i32::MAX);
        let bytes = 20 + 12 * n;
        self.0.extend_from_slice(&bytes.to_be_bytes());
        for word in [1, 0, INT8_OID, n, 1] {
            self.0.extend_from_slice(&word.to_be_bytes());
        }
        for &v in values {
            self.int8(i64_of(v));
        }
    }

    /// A `bytea`. Its length is a 32-bit field: a row's `raw` is a few hundred bytes at most
    /// (a split's list is the longest, 12 KiB), far below the 1 GiB a field may hold.
    fn bytes(&mut self, v: &[u8]) {
        let len = i32::try_from(v.len()).unwrap_or(i32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 19-byte file header, as the manual spells it.
    fn header() -> Vec<u8> {
        let mut want = b"PGCOPY\n\xff\r\n\0".to_vec();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        want
    }

    /// A non-NULL `int8` field: its length (8) and its value.
    fn int8(want: &mut Vec<u8>, v: i64) {
        want.extend_from_slice(&[0, 0, 0, 8]);
        want.extend_from_slice(&v.to_be_bytes());
    }

    /// The layout, byte by byte, for one row with a NULL: what Postgres's `CopyFrom` parses.
    #[test]
    fn one_row_in_the_binary_copy_layout() {
        let row = TxRow {
            seq: 7,
            tx_id: [0xAB; 32],
            kind: 2,
            sender: Some(1),
            recipient: Some(258),
            account_index: None,
            raw: vec![1, 2, 3],
            block_number: 5,
            position: 9,
            block_time: 1_000,
            batch_time: 999,
            batch_status: None,
            parties: Vec::new(),
        };
        let bytes = encode_txs(&[&row]);
        let mut want = header();
        want.extend_from_slice(&[0, 11]);
        int8(&mut want, 7);
        want.extend_from_slice(&[0, 0, 0, 32]);
        want.extend_from_slice(&[0xAB; 32]);
        want.extend_from_slice(&[0, 0, 0, 2, 0, 2]);
        int8(&mut want, 1);
        int8(&mut want, 258);
        want.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        want.extend_from_slice(&[0, 0, 0, 3, 1, 2, 3]);
        int8(&mut want, 5);
        want.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 9]);
        int8(&mut want, 1_000);
        int8(&mut want, 999);
        want.extend_from_slice(&[0xFF, 0xFF]);
        assert_eq!(bytes, want);
    }

    /// An `account_blocks` row: the account, its last seq and the `int8[]` of its seqs.
    #[test]
    fn an_account_blocks_row_in_the_binary_copy_layout() {
        let row = |seq| super::super::tests::row(seq, Some(2), None, None);
        let activity = BlockActivity::of_rows(&[row(7), row(9)]);
        let bytes = encode_account_blocks([&activity, &BlockActivity::default()]);
        let mut want = header();
        want.extend_from_slice(&[0, 3]);
        int8(&mut want, 2);
        int8(&mut want, 9);
        // 20 bytes of header and two 12-byte elements.
        want.extend_from_slice(&[0, 0, 0, 44]);
        for word in [1i32, 0, 20, 2, 1] {
            want.extend_from_slice(&word.to_be_bytes());
        }
        int8(&mut want, 7);
        int8(&mut want, 9);
        want.extend_from_slice(&[0xFF, 0xFF]);
        assert_eq!(bytes, want);
    }
}
