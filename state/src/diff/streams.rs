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
use crate::account::AccountIndex;
pub use crate::stream::STREAM_FIELDS_BYTES;
use crate::stream::{Stream, StreamSlot};

/// Bytes of the key and tag of a stream record.
pub const STREAM_KEY_BYTES: usize = 4 + 2 + 1;

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
        match &self.stream {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                s.write_fields(out);
            }
        }
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
            1 => Some(
                Stream::read_fields(AccountIndex(payer), slot, &r.take()?, count_after)
                    .map_err(at)?,
            ),
            _ => return Err(at("tag")),
        };
        Ok(StreamRecord {
            payer: AccountIndex(payer),
            slot,
            stream,
        })
    }
}
