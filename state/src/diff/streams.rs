//! Stream records: the section version 2 of a diff adds (SPEC 10.4, "Version 2").
//!
//! A batch that opened, settled or closed streams publishes, per stream slot it changed, the
//! slot's content after the batch: empty, or the open stream. Several settlements of one stream
//! in a batch are one record (the net diff nets ticks). With the account records this is what a
//! replica needs to rebuild every payer's stream book, hence its `ext` (SPEC 18.3), and what an
//! exit without the operator needs to pay escrows back.
//!
//! ```text
//! record   payer LE32 ‖ slot LE16 ‖ tag (0 = empty, 1 = open)                     7 bytes
//!          [‖ payee LE32 ‖ price LE64 ‖ max_ticks LE32 ‖ expiry LE64
//!             ‖ opened_at LE64 ‖ settled LE32 ‖ head (4 x LE64)]                  +68 bytes
//! ```

use super::{DiffError, Reader};
use crate::account::{AccountIndex, Amount, Nonce, Timestamp};
use crate::hash::Digest;
use crate::stream::{Stream, StreamId, StreamSlot, TickCount};

/// Bytes of the key and tag of a stream record.
pub const STREAM_KEY_BYTES: usize = 4 + 2 + 1;
/// Bytes of an open stream's fields after the tag.
pub const STREAM_FIELDS_BYTES: usize = 4 + 8 + 4 + 8 + 8 + 4 + 32;

/// One stream slot's content after the batch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StreamRecord {
    pub payer: AccountIndex,
    pub slot: StreamSlot,
    /// `None`: the slot is empty after the batch (the stream closed).
    pub stream: Option<Stream>,
}

impl StreamRecord {
    /// The sort key of the stream section.
    pub fn key(&self) -> (u32, u16) {
        (self.payer.0, self.slot.0)
    }

    pub fn encoded_len(&self) -> usize {
        STREAM_KEY_BYTES
            + if self.stream.is_some() {
                STREAM_FIELDS_BYTES
            } else {
                0
            }
    }

    pub(super) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.payer.0.to_le_bytes());
        out.extend_from_slice(&self.slot.0.to_le_bytes());
        let Some(s) = &self.stream else {
            out.push(0);
            return;
        };
        out.push(1);
        out.extend_from_slice(&s.payee.0.to_le_bytes());
        out.extend_from_slice(&s.price.get().to_le_bytes());
        out.extend_from_slice(&s.max_ticks.get().to_le_bytes());
        out.extend_from_slice(&s.expiry.get().to_le_bytes());
        out.extend_from_slice(&s.id.opened_at.get().to_le_bytes());
        out.extend_from_slice(&s.settled.get().to_le_bytes());
        out.extend_from_slice(&s.head.to_bytes());
    }

    /// Reads one record; `count_after` bounds the payer and the payee.
    pub(super) fn read(r: &mut Reader<'_>, count_after: u64) -> Result<Self, DiffError> {
        let payer = u32::from_le_bytes(r.take()?);
        let slot = StreamSlot(u16::from_le_bytes(r.take()?));
        let at = |field| DiffError::BadStream {
            payer,
            slot: slot.0,
            field,
        };
        if u64::from(payer) >= count_after {
            return Err(at("payer"));
        }
        let [tag] = r.take::<1>()?;
        let stream = match tag {
            0 => None,
            1 => {
                let payee = u32::from_le_bytes(r.take()?);
                if u64::from(payee) >= count_after || payee == payer {
                    return Err(at("payee"));
                }
                let price = Amount::new(u64::from_le_bytes(r.take()?))
                    .filter(|p| p.get() > 0)
                    .ok_or(at("price"))?;
                let max_ticks = TickCount::new(u32::from_le_bytes(r.take()?))
                    .filter(|m| m.get() > 0)
                    .ok_or(at("max_ticks"))?;
                if price
                    .get()
                    .checked_mul(u64::from(max_ticks.get()))
                    .is_none_or(|e| Amount::new(e).is_none())
                {
                    return Err(at("price"));
                }
                let expiry = Timestamp::new(u64::from_le_bytes(r.take()?)).ok_or(at("expiry"))?;
                let opened_at = Nonce::new(u64::from_le_bytes(r.take()?)).ok_or(at("opened_at"))?;
                let settled = TickCount::new(u32::from_le_bytes(r.take()?))
                    .filter(|s| s.get() <= max_ticks.get())
                    .ok_or(at("settled"))?;
                let head = Digest::from_bytes(&r.take()?).ok_or(at("head"))?;
                Some(Stream {
                    id: StreamId {
                        payer: AccountIndex(payer),
                        slot,
                        opened_at,
                    },
                    payee: AccountIndex(payee),
                    price,
                    max_ticks,
                    expiry,
                    settled,
                    head,
                })
            }
            _ => return Err(at("tag")),
        };
        Ok(StreamRecord {
            payer: AccountIndex(payer),
            slot,
            stream,
        })
    }
}
