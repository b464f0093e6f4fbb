//! Version 4 of a diff: the content of versions 2 and 3 grouped by account (SPEC 10.4,
//! "Version 4").
//!
//! Versions 2 and 3 list every account record, then every stream record, then the passport,
//! lanes and shares sections. A circuit that rebuilds an account's leaf must know the
//! account's new `ext` when it reads the account's record, and in that order the parts of
//! `ext` come later, in other sections; matching them back needs a permutation argument.
//! Version 4 puts each account's parts right after its record, so a chunk circuit opens the old
//! `ext`, applies the parts and writes the new leaf in one pass (docs/PROVER.md).
//!
//! ```text
//! header   version (1 byte) = 4 ‖ count_before LE64 ‖ n LE32                      13 bytes
//! group    record (20 or 60 bytes, as version 1) ‖ parts (1 byte)
//!          [‖ lanes record]     if parts & 4   (as version 3, account = the group's index)
//!          [‖ passport record]  if parts & 2   (as version 3, agent = the group's index)
//!          [‖ shares record]    if parts & 8   (as version 3, account = the group's index)
//!          [‖ stream records]   if parts & 1
//! stream   slot LE16 ‖ tag [‖ fields (68 bytes, as version 2)]                  3 or 71 bytes
//!          tag bit 0: the slot holds an open stream after the batch (else: emptied);
//!          tag bit 1: another stream record of the same account follows
//! ```
//!
//! Why a "more" bit rather than a count before the stream records: a chunk circuit with a fixed
//! number of stream slots per account continues an account with many records in the next slot
//! and learns only there whether more follow; a count would have to be carried and checked
//! across slots. Why the stream records last: the profile parts' fixed fields then all come in
//! a group's first slot, and only the variable-length lists (a shares record's entries, an
//! allow-list) and the stream records continue into the next ones. Why the lanes record
//! before the passport record (version 3 has them the other way): a passport record may end
//! with its policy's allow-list, up to 4 KiB, which a chunk circuit reads in runs across
//! slots like the shares record's items; every fixed-size part then comes before the first
//! run. The payer of a stream record is the group's account (not repeated: 4 bytes per
//! record saved on the most frequent agent record); the rare passport, lanes and shares records
//! keep their version 3 encoding with its index, which must be the group's.
//!
//! A decoder rejects what versions 1 to 3 reject, in byte order, plus: a parts byte with a bit
//! above 3 (`BAD_PARTS`), a tag with a bit above 1 (`BAD_STREAM`, field `tag`), stream slots not
//! strictly increasing within a group (`STREAMS_UNSORTED`), a passport, lanes or shares record
//! of another account (`BAD_AGENT` field `agent`, `BAD_LANES`, `BAD_SHARES` field `account`).
//! The bounds that depend on the number of accounts after the batch (a stream's payee, a
//! passport's owner, a share's payee), unknown until the last group is read, are checked after
//! it, in group order. Every diff has one version 4 encoding.

use super::{
    AccountRecord, DiffError, LanesRecord, PassportRecord, Reader, Sequence, SharesRecord,
    StateDiff, StreamRecord, DIFF_VERSION_GROUPED, MAX_ACCOUNTS, RECORD_BYTES,
};
use crate::account::AccountIndex;
use crate::stream::{Stream, StreamSlot};

/// Bit of the parts byte: stream records follow.
pub const PART_STREAMS: u8 = 1;
/// Bit of the parts byte: a passport record follows.
pub const PART_PASSPORT: u8 = 2;
/// Bit of the parts byte: a lanes record follows.
pub const PART_LANES: u8 = 4;
/// Bit of the parts byte: a shares record follows.
pub const PART_SHARES: u8 = 8;
/// Bit of a stream record's tag: the slot holds an open stream (its fields follow).
pub const STREAM_OPEN: u8 = 1;
/// Bit of a stream record's tag: another stream record of the account follows.
pub const STREAM_MORE: u8 = 2;
/// Bytes of a version 4 stream record before its fields: slot and tag.
pub const GROUPED_STREAM_KEY_BYTES: usize = 2 + 1;

/// An account's parts in a diff: where its records are in each sorted section.
struct Parts<'a> {
    streams: &'a [StreamRecord],
    passport: Option<&'a PassportRecord>,
    lanes: Option<&'a LanesRecord>,
    shares: Option<&'a SharesRecord>,
}

impl Parts<'_> {
    fn flags(&self) -> u8 {
        let mut f = 0;
        if !self.streams.is_empty() {
            f |= PART_STREAMS;
        }
        if self.passport.is_some() {
            f |= PART_PASSPORT;
        }
        if self.lanes.is_some() {
            f |= PART_LANES;
        }
        if self.shares.is_some() {
            f |= PART_SHARES;
        }
        f
    }
}

/// The next item of a section sorted by account if it is `index`'s, advancing past it.
fn take_if<'a, T>(
    items: &'a [T],
    at: &mut usize,
    index: u32,
    key: impl Fn(&T) -> u32,
) -> Option<&'a T> {
    let item = items.get(*at).filter(|x| key(x) == index)?;
    *at += 1;
    Some(item)
}

impl StateDiff {
    /// The bytes a batch publishes (SPEC 10.4): version 1 when the diff holds account records
    /// only, else version 4, the layout the grouped diff circuit proves. Versions 2 and 3 are
    /// what earlier nodes published for the same content; [`StateDiff::decode`] reads all four.
    pub fn encode_published(&self) -> Vec<u8> {
        if self.version() == super::DIFF_VERSION {
            self.encode()
        } else {
            self.encode_grouped()
        }
    }

    /// The version 4 encoding (module docs).
    pub fn encode_grouped(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len() + self.records.len());
        out.push(DIFF_VERSION_GROUPED);
        out.extend_from_slice(&self.count_before.to_le_bytes());
        // `new` bounds the number of records below 2^32.
        out.extend_from_slice(&(self.records.len() as u32).to_le_bytes());
        let (mut s, mut p, mut l, mut h) = (0usize, 0usize, 0usize, 0usize);
        for r in &self.records {
            let index = r.index.0;
            let first = s;
            while self.streams.get(s).is_some_and(|x| x.payer.0 == index) {
                s += 1;
            }
            let parts = Parts {
                streams: &self.streams[first..s],
                passport: take_if(&self.passports, &mut p, index, |x| x.agent.0),
                lanes: take_if(&self.lanes, &mut l, index, |x| x.account.0),
                shares: take_if(&self.shares, &mut h, index, |x| x.account().0),
            };
            r.encode_into(&mut out);
            out.push(parts.flags());
            if let Some(x) = parts.lanes {
                x.encode_into(&mut out);
            }
            if let Some(x) = parts.passport {
                x.encode_into(&mut out);
            }
            if let Some(x) = parts.shares {
                x.encode_into(&mut out);
            }
            for (k, rec) in parts.streams.iter().enumerate() {
                out.extend_from_slice(&rec.slot.0.to_le_bytes());
                let more = if k + 1 < parts.streams.len() {
                    STREAM_MORE
                } else {
                    0
                };
                match &rec.stream {
                    None => out.push(more),
                    Some(stream) => {
                        out.push(STREAM_OPEN | more);
                        stream.write_fields(&mut out);
                    }
                }
            }
        }
        out
    }

    /// Reads `n` groups after a version 4 header (module docs for what is rejected).
    pub(super) fn read_grouped(
        r: &mut Reader<'_>,
        count_before: u64,
        mut seq: Sequence,
        n: u32,
    ) -> Result<StateDiff, DiffError> {
        let mut diff = StateDiff {
            count_before,
            // Do not trust `n` for the allocation: it is bounded by what the bytes can hold.
            records: Vec::with_capacity((n as usize).min(r.0.len() / (RECORD_BYTES + 1))),
            streams: Vec::new(),
            passports: Vec::new(),
            lanes: Vec::new(),
            shares: Vec::new(),
        };
        for _ in 0..n {
            let record = AccountRecord::read(r, &mut seq)?;
            let index = record.index.0;
            diff.records.push(record);
            let [parts] = r.take::<1>()?;
            if parts & !(PART_STREAMS | PART_PASSPORT | PART_LANES | PART_SHARES) != 0 {
                return Err(DiffError::BadParts { index });
            }
            // The account count after the batch is not known yet: bounds that need it are
            // checked once every group is read.
            if parts & PART_LANES != 0 {
                let rec = LanesRecord::read(r, MAX_ACCOUNTS)?;
                if rec.account.0 != index {
                    return Err(DiffError::BadLanes(rec.account.0));
                }
                diff.lanes.push(rec);
            }
            if parts & PART_PASSPORT != 0 {
                let rec = PassportRecord::read(r, MAX_ACCOUNTS)?;
                if rec.agent.0 != index {
                    return Err(DiffError::BadAgent {
                        agent: rec.agent.0,
                        field: "agent",
                    });
                }
                diff.passports.push(rec);
            }
            if parts & PART_SHARES != 0 {
                let rec = SharesRecord::read(r, MAX_ACCOUNTS)?;
                if rec.account().0 != index {
                    return Err(DiffError::BadShares {
                        account: rec.account().0,
                        field: "account",
                    });
                }
                diff.shares.push(rec);
            }
            if parts & PART_STREAMS != 0 {
                read_streams(r, index, &mut diff.streams)?;
            }
        }
        diff.check_bounds_after()?;
        Ok(diff)
    }

    /// The bounds of a version 4 diff that need the account count after the batch, in group
    /// order: every stream's payee, passport's owner and share's payee names an account.
    fn check_bounds_after(&self) -> Result<(), DiffError> {
        let count_after = self.count_after();
        let known = |i: AccountIndex| u64::from(i.0) < count_after;
        let (mut s, mut p, mut h) = (0usize, 0usize, 0usize);
        for r in &self.records {
            let index = r.index.0;
            if let Some(rec) = take_if(&self.passports, &mut p, index, |x| x.agent.0) {
                if !known(rec.owner) {
                    return Err(DiffError::BadAgent {
                        agent: index,
                        field: "owner",
                    });
                }
            }
            if let Some(rec) = take_if(&self.shares, &mut h, index, |x| x.account().0) {
                if rec.0.parts().iter().any(|(payee, _)| !known(*payee)) {
                    return Err(DiffError::BadShares {
                        account: index,
                        field: "payee",
                    });
                }
            }
            while let Some(rec) = self.streams.get(s).filter(|x| x.payer.0 == index) {
                s += 1;
                if rec.stream.is_some_and(|st| !known(st.payee)) {
                    return Err(DiffError::BadStream {
                        payer: index,
                        slot: rec.slot.0,
                        field: "payee",
                    });
                }
            }
        }
        Ok(())
    }
}

/// Reads the stream records of account `payer` (at least one, until a tag without the "more"
/// bit), appending them to `out`.
fn read_streams(
    r: &mut Reader<'_>,
    payer: u32,
    out: &mut Vec<StreamRecord>,
) -> Result<(), DiffError> {
    let mut previous: Option<u16> = None;
    loop {
        let slot = StreamSlot(u16::from_le_bytes(r.take()?));
        let at = |field| DiffError::BadStream {
            payer,
            slot: slot.0,
            field,
        };
        let [tag] = r.take::<1>()?;
        if tag & !(STREAM_OPEN | STREAM_MORE) != 0 {
            return Err(at("tag"));
        }
        if let Some(p) = previous {
            if slot.0 <= p {
                return Err(DiffError::StreamsUnsorted {
                    previous: (payer, p),
                    index: (payer, slot.0),
                });
            }
        }
        previous = Some(slot.0);
        let stream = if tag & STREAM_OPEN != 0 {
            let fields = r.take()?;
            Some(
                Stream::read_fields(AccountIndex(payer), slot, &fields, MAX_ACCOUNTS)
                    .map_err(at)?,
            )
        } else {
            None
        };
        out.push(StreamRecord {
            payer: AccountIndex(payer),
            slot,
            stream,
        });
        if tag & STREAM_MORE == 0 {
            return Ok(());
        }
    }
}
