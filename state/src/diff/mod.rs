//! Net state diffs: what a batch publishes on L1 for data availability (SPEC 10.4).
//!
//! Per-transaction ops (section 10) cost L1 calldata for every payment; agents that pay the same
//! counterparties again and again touch far fewer accounts than they make payments, so a batch
//! publishes one record per account it touched instead, with the account's values *after* the
//! batch. Anyone holding the state before the batch (ultimately: genesis plus every earlier
//! diff) rebuilds the state after it, and its root, from the diff alone.
//!
//! # Encoding, version 1
//!
//! ```text
//! header   version (1 byte) = 1 ‖ count_before LE64 ‖ n LE32                 13 bytes
//! record   index LE32 ‖ balance LE64 ‖ nonce LE64 [‖ pubkey (40 bytes)]       20 or 60 bytes
//! ```
//!
//! `count_before` is the number of accounts before the batch (at most 2^32) and `n` the number
//! of records that follow, sorted strictly by index. A record with `index >= count_before` is an
//! account created by the batch and carries its public key; accounts are dense, so these records
//! are exactly `count_before, count_before + 1, ...`. The header states `count_before` (8 bytes
//! per batch, mostly zeros) rather than leaving it to the decoder's knowledge of the previous
//! state, so that a blob parses on its own, and applying it to the wrong state is caught as a
//! count mismatch rather than misread. A decoder rejects, in byte order: an unknown version,
//! `count_before > 2^32`, a record cut short or missing, an index not above the previous one,
//! a new account out of sequence, a balance or nonce above 2^63 - 1, an invalid key, and bytes
//! after the last record. Hence every diff has exactly one encoding.
//!
//! The leaf's `ext` digest is not carried: a version 1 record leaves it as it is, and
//! [`StateDiff::from_accounts`] (a diff built from accounts alone) refuses an account with a
//! non-zero `ext` ([`DiffError::NonZeroExt`]). Versions 2 and 3 add the stream and agent records
//! `ext` is rebuilt from ([`streams`], [`agents`]); version 4 ([`grouped`]) carries the same
//! content grouped by account, the order a circuit rebuilds `ext` in.
//!
//! # Which accounts
//!
//! Every account the batch touched (from each accepted transaction's [`Effects`]) plus every
//! account it created. Under the v1 rules a touched account always ends the batch changed (a
//! sender's nonce only grows; an account that only receives only gains), so dropping
//! "touched but unchanged" records would save nothing and is not done; such a record would be
//! harmless (applying it rewrites the same values).
//!
//! # Checking a diff before publishing it
//!
//! [`BatchTouches::seal`] builds the diff from the state after the batch and checks it against
//! the root before the batch without a copy of the old state: it decodes its own blob, compares
//! every record with the state, and recomputes the *previous* root from Merkle proofs of the
//! touched leaves with their pre-batch values put back ([`root_after_replacing`]). If that gives
//! the previous batch's root, the two trees differ only at the diff's indices, so applying the
//! diff to the previous state yields exactly the new root.

use std::collections::BTreeSet;

use crate::account::{Account, AccountIndex, Amount, Nonce};
use crate::apply::State;
use crate::crypto::schnorr::{EncodedKey, KeyError, PublicKey};
use crate::hash::Digest;
use crate::stream::StreamSlot;

/// The encoding of a diff without stream records (the only one the diff circuit proves today).
pub const DIFF_VERSION: u8 = 1;
/// The encoding of a diff with stream records: version 1 followed by the stream section.
pub const DIFF_VERSION_STREAMS: u8 = 2;
/// The encoding of a diff with agent records (passports, nonce lanes, revenue shares): version
/// 2 (its stream section possibly empty) followed by the passport, lanes and shares sections
/// ([`agents`]).
pub const DIFF_VERSION_AGENTS: u8 = 3;
/// The encoding of the same content as versions 2 and 3 grouped by account: each account
/// record followed by its stream, passport, lanes and shares records ([`grouped`]), the order
/// in which the diff circuit rebuilds an account's `ext` (docs/PROVER.md, "Proving the agent
/// kinds").
pub const DIFF_VERSION_GROUPED: u8 = 4;
/// Bytes of the header: version, `count_before`, number of records.
pub const HEADER_BYTES: usize = 1 + 8 + 4;
/// Bytes of a record of an account that existed before the batch.
pub const RECORD_BYTES: usize = 4 + 8 + 8;
/// Bytes of a record of an account created by the batch (with its public key).
pub const NEW_RECORD_BYTES: usize = RECORD_BYTES + PublicKey::BYTES;
/// The number of account indices (the tree has depth 32).
pub const MAX_ACCOUNTS: u64 = 1 << 32;

/// An account's values after the batch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AccountRecord {
    pub index: AccountIndex,
    pub balance: Amount,
    pub nonce: Nonce,
    /// Present exactly for accounts created by the batch.
    pub pubkey: Option<EncodedKey>,
}

/// The net effect of a batch on the accounts: see the module docs. Always well formed: the
/// constructors check what the decoder checks.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StateDiff {
    count_before: u64,
    records: Vec<AccountRecord>,
    /// Sorted strictly by `(payer, slot)`; every payer has an account record.
    streams: Vec<StreamRecord>,
    /// Sorted strictly by agent; every agent has an account record.
    passports: Vec<PassportRecord>,
    /// Sorted strictly by account; every account has an account record.
    lanes: Vec<LanesRecord>,
    /// Sorted by account; every account has an account record.
    shares: Vec<SharesRecord>,
}

/// Why a state diff could not be built, parsed, applied or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error("state diff ends early")]
    Truncated,
    #[error("{0} bytes after the last record of the state diff")]
    TrailingBytes(usize),
    #[error("unsupported state diff version {0}")]
    UnsupportedVersion(u8),
    #[error("account count {0} is above 2^32")]
    CountOutOfRange(u64),
    #[error(
        "record of account {index} follows account {previous}: records must be sorted by index"
    )]
    Unsorted { previous: u32, index: u32 },
    #[error("account {0} has two records")]
    DuplicateIndex(u32),
    #[error("record of new account {index} where account {expected} was due (new accounts are consecutive)")]
    NewAccountGap { expected: u64, index: u32 },
    #[error("account {index}: {value} is above 2^63 - 1")]
    OutOfRange { index: u32, value: u64 },
    #[error("account {index}: invalid public key: {source}")]
    PublicKey {
        index: u32,
        #[source]
        source: KeyError,
    },
    #[error("record of existing account {0} carries a public key")]
    UnexpectedKey(u32),
    #[error("record of new account {0} has no public key")]
    MissingKey(u32),
    #[error("more records than account indices")]
    TooManyRecords,
    #[error("account {0} does not exist")]
    UnknownAccount(u32),
    #[error("account {0} has a non-zero ext digest, which a diff built from accounts alone cannot carry")]
    NonZeroExt(u32),
    #[error("stream record of payer {payer} slot {slot}: invalid {field}")]
    BadStream {
        payer: u32,
        slot: u16,
        field: &'static str,
    },
    #[error("stream record {index:?} is not after {previous:?}: stream records must be sorted by (payer, slot) without repeats")]
    StreamsUnsorted {
        previous: (u32, u16),
        index: (u32, u16),
    },
    #[error("stream record of payer {0}, which has no account record in the diff")]
    StreamWithoutAccount(u32),
    #[error("a version 2 diff with no stream record (it must be written as version 1)")]
    EmptyStreamSection,
    #[error("passport record of agent {agent}: invalid {field}")]
    BadAgent { agent: u32, field: &'static str },
    #[error(
        "lanes record of account {0}: an unknown account or a sequence number of 2^60 or more"
    )]
    BadLanes(u32),
    #[error("shares record of account {account}: invalid {field}")]
    BadShares { account: u32, field: &'static str },
    #[error("account {index}: a parts byte with an unknown bit (version 4)")]
    BadParts { index: u32 },
    #[error("agent record of {index} is not after {previous}: agent records must be sorted by index without repeats")]
    AgentsUnsorted { previous: u32, index: u32 },
    #[error("agent record of {0}, which has no account record in the diff")]
    AgentWithoutAccount(u32),
    #[error(
        "a version 3 diff with no passport, lanes or shares record (it must be written as version 1 or 2)"
    )]
    EmptyAgentSection,
    #[error("the passport, lanes or shares of account {0} differ from the state, or are missing")]
    AgentMismatch(u32),
    #[error("stream of payer {payer} slot {slot} differs from the state")]
    StreamMismatch { payer: u32, slot: u16 },
    #[error("the diff starts from {diff} accounts but the state has {state}")]
    CountMismatch { diff: u64, state: u64 },
    #[error("record of account {0} differs from the state")]
    RecordMismatch(u32),
    #[error("the diff does not start from the previous root {expected}: the touched accounts put back give {computed}")]
    OldRootMismatch { expected: Digest, computed: Digest },
}

impl DiffError {
    /// Stable machine-readable name (docs/SPEC.md 10.4), e.g. for the rebuild tool's output.
    pub fn code(&self) -> &'static str {
        match self {
            DiffError::Truncated => "TRUNCATED",
            DiffError::TrailingBytes(_) => "TRAILING_BYTES",
            DiffError::UnsupportedVersion(_) => "UNSUPPORTED_VERSION",
            DiffError::CountOutOfRange(_) => "COUNT_OUT_OF_RANGE",
            DiffError::Unsorted { .. } => "UNSORTED",
            DiffError::DuplicateIndex(_) => "DUPLICATE_INDEX",
            DiffError::NewAccountGap { .. } => "NEW_ACCOUNT_GAP",
            DiffError::OutOfRange { .. } => "OUT_OF_RANGE",
            DiffError::PublicKey { source, .. } => match source {
                KeyError::NonCanonical => "PUBLIC_KEY_NON_CANONICAL",
                KeyError::NotOnCurve => "PUBLIC_KEY_NOT_ON_CURVE",
                KeyError::Neutral => "PUBLIC_KEY_NEUTRAL",
                // `PublicKey::from_bytes` reports no other error for 40 bytes.
                _ => "PUBLIC_KEY_INVALID",
            },
            DiffError::UnexpectedKey(_) => "UNEXPECTED_KEY",
            DiffError::MissingKey(_) => "MISSING_KEY",
            DiffError::TooManyRecords => "TOO_MANY_RECORDS",
            DiffError::UnknownAccount(_) => "UNKNOWN_ACCOUNT",
            DiffError::NonZeroExt(_) => "NON_ZERO_EXT",
            DiffError::BadStream { .. } => "BAD_STREAM",
            DiffError::StreamsUnsorted { .. } => "STREAMS_UNSORTED",
            DiffError::StreamWithoutAccount(_) => "STREAM_WITHOUT_ACCOUNT",
            DiffError::EmptyStreamSection => "EMPTY_STREAM_SECTION",
            DiffError::StreamMismatch { .. } => "STREAM_MISMATCH",
            DiffError::BadAgent { .. } => "BAD_AGENT",
            DiffError::BadLanes(_) => "BAD_LANES",
            DiffError::BadShares { .. } => "BAD_SHARES",
            DiffError::BadParts { .. } => "BAD_PARTS",
            DiffError::AgentsUnsorted { .. } => "AGENTS_UNSORTED",
            DiffError::AgentWithoutAccount(_) => "AGENT_WITHOUT_ACCOUNT",
            DiffError::EmptyAgentSection => "EMPTY_AGENT_SECTION",
            DiffError::AgentMismatch(_) => "AGENT_MISMATCH",
            DiffError::CountMismatch { .. } => "COUNT_MISMATCH",
            DiffError::RecordMismatch(_) => "RECORD_MISMATCH",
            DiffError::OldRootMismatch { .. } => "OLD_ROOT_MISMATCH",
        }
    }
}

/// The rules every sequence of records obeys, applied one record at a time (by the decoder as
/// it reads, so the first bad field decides the error, and by [`StateDiff::new`]).
struct Sequence {
    count_before: u64,
    previous: Option<u32>,
    next_new: u64,
}

impl Sequence {
    fn new(count_before: u64) -> Result<Self, DiffError> {
        if count_before > MAX_ACCOUNTS {
            return Err(DiffError::CountOutOfRange(count_before));
        }
        Ok(Sequence {
            count_before,
            previous: None,
            next_new: count_before,
        })
    }

    /// Checks the next record's index; returns whether it is a new account (carries a key).
    fn next(&mut self, index: u32) -> Result<bool, DiffError> {
        if let Some(previous) = self.previous {
            if index == previous {
                return Err(DiffError::DuplicateIndex(index));
            }
            if index < previous {
                return Err(DiffError::Unsorted { previous, index });
            }
        }
        self.previous = Some(index);
        let is_new = u64::from(index) >= self.count_before;
        if is_new {
            if u64::from(index) != self.next_new {
                return Err(DiffError::NewAccountGap {
                    expected: self.next_new,
                    index,
                });
            }
            self.next_new += 1;
        }
        Ok(is_new)
    }
}

/// The records of `touched` and of every account from `count_before` on, with their values in
/// `accounts` (the state after the batch). `refuse_ext`: an account with a non-zero `ext` is an
/// error (`NON_ZERO_EXT`), for a diff that will carry no stream records to derive it from.
fn account_records(
    accounts: &[Account],
    touched: impl IntoIterator<Item = AccountIndex>,
    count_before: u64,
    refuse_ext: bool,
) -> Result<Vec<AccountRecord>, DiffError> {
    let count = accounts.len() as u64;
    if count_before > count {
        return Err(DiffError::CountMismatch {
            diff: count_before,
            state: count,
        });
    }
    let mut indices: BTreeSet<u32> = touched.into_iter().map(|i| i.0).collect();
    // count <= 2^32, so every index below it is a u32.
    indices.extend((count_before..count).map(|i| i as u32));
    indices
        .into_iter()
        .map(|i| {
            let a = accounts
                .get(i as usize)
                .ok_or(DiffError::UnknownAccount(i))?;
            if refuse_ext && a.ext != Digest::ZERO {
                return Err(DiffError::NonZeroExt(i));
            }
            Ok(AccountRecord {
                index: AccountIndex(i),
                balance: a.balance,
                nonce: a.nonce,
                pubkey: (u64::from(i) >= count_before).then_some(a.pubkey),
            })
        })
        .collect()
}

impl StateDiff {
    /// A diff from its parts, checked like a decoded one.
    pub fn new(count_before: u64, records: Vec<AccountRecord>) -> Result<Self, DiffError> {
        if records.len() as u64 > MAX_ACCOUNTS - 1 {
            return Err(DiffError::TooManyRecords);
        }
        let mut seq = Sequence::new(count_before)?;
        for r in &records {
            match (seq.next(r.index.0)?, r.pubkey.is_some()) {
                (true, false) => return Err(DiffError::MissingKey(r.index.0)),
                (false, true) => return Err(DiffError::UnexpectedKey(r.index.0)),
                _ => {}
            }
        }
        Ok(StateDiff {
            count_before,
            records,
            streams: Vec::new(),
            passports: Vec::new(),
            lanes: Vec::new(),
            shares: Vec::new(),
        })
    }

    /// This diff with agent records, checked like decoded ones (all empty: unchanged).
    pub fn with_agents(
        mut self,
        passports: Vec<PassportRecord>,
        lanes: Vec<LanesRecord>,
        shares: Vec<SharesRecord>,
    ) -> Result<Self, DiffError> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(passports.len() as u32).to_le_bytes());
        for r in &passports {
            r.encode_into(&mut bytes);
        }
        bytes.extend_from_slice(&(lanes.len() as u32).to_le_bytes());
        for r in &lanes {
            r.encode_into(&mut bytes);
        }
        bytes.extend_from_slice(&(shares.len() as u32).to_le_bytes());
        for r in &shares {
            r.encode_into(&mut bytes);
        }
        let mut reader = Reader(&bytes);
        self.read_agents(&mut reader)?;
        // `Shares` are valid by construction and read back as written.
        if self.passports != passports || self.lanes != lanes {
            // Only a record whose digest and policy disagree reads back differently.
            let agent = passports.first().map_or(0, |p| p.agent.0);
            return Err(DiffError::BadAgent {
                agent,
                field: "policy",
            });
        }
        Ok(self)
    }

    /// Reads the passport, lanes and shares sections (each a LE32 count and its records), with
    /// every check of the decoder.
    fn read_agents(&mut self, r: &mut Reader<'_>) -> Result<(), DiffError> {
        let count_after = self.count_after();
        let order = |previous: &mut Option<u32>, index: u32| -> Result<(), DiffError> {
            if let Some(p) = *previous {
                if index <= p {
                    return Err(DiffError::AgentsUnsorted { previous: p, index });
                }
            }
            *previous = Some(index);
            if self
                .records
                .binary_search_by_key(&index, |a| a.index.0)
                .is_err()
            {
                return Err(DiffError::AgentWithoutAccount(index));
            }
            Ok(())
        };
        let mut passports = Vec::new();
        let mut previous = None;
        let p = u32::from_le_bytes(r.take()?);
        for _ in 0..p {
            let rec = PassportRecord::read(r, count_after)?;
            order(&mut previous, rec.agent.0)?;
            passports.push(rec);
        }
        let mut lanes = Vec::new();
        let mut previous = None;
        let l = u32::from_le_bytes(r.take()?);
        for _ in 0..l {
            let rec = LanesRecord::read(r, count_after)?;
            order(&mut previous, rec.account.0)?;
            lanes.push(rec);
        }
        let mut shares = Vec::new();
        let mut previous = None;
        let h = u32::from_le_bytes(r.take()?);
        for _ in 0..h {
            let rec = SharesRecord::read(r, count_after)?;
            order(&mut previous, rec.account().0)?;
            shares.push(rec);
        }
        self.passports = passports;
        self.lanes = lanes;
        self.shares = shares;
        Ok(())
    }

    /// A diff with stream records, checked like a decoded one (an empty `streams` is a
    /// version 1 diff).
    pub fn with_streams(
        count_before: u64,
        records: Vec<AccountRecord>,
        streams: Vec<StreamRecord>,
    ) -> Result<Self, DiffError> {
        let mut d = StateDiff::new(count_before, records)?;
        let mut bytes = Vec::new();
        for r in &streams {
            r.encode_into(&mut bytes);
        }
        let mut reader = Reader(&bytes);
        d.read_streams(&mut reader, streams.len() as u32)?;
        // Re-read from their bytes, the records equal the given ones unless a stream's own
        // id names another payer or slot than its record.
        if let Some(r) = d.streams.iter().zip(&streams).find(|(a, b)| a != b) {
            return Err(DiffError::BadStream {
                payer: r.1.payer.0,
                slot: r.1.slot.0,
                field: "id",
            });
        }
        Ok(d)
    }

    /// Reads `n` stream records after the account records, with every check of the decoder.
    fn read_streams(&mut self, r: &mut Reader<'_>, n: u32) -> Result<(), DiffError> {
        let count_after = self.count_after();
        let mut streams = Vec::with_capacity((n as usize).min(r.0.len() / STREAM_KEY_BYTES));
        let mut previous: Option<(u32, u16)> = None;
        for _ in 0..n {
            let rec = StreamRecord::read(r, count_after)?;
            if let Some(p) = previous {
                if rec.key() <= p {
                    return Err(DiffError::StreamsUnsorted {
                        previous: p,
                        index: rec.key(),
                    });
                }
            }
            previous = Some(rec.key());
            if self
                .records
                .binary_search_by_key(&rec.payer.0, |a| a.index.0)
                .is_err()
            {
                return Err(DiffError::StreamWithoutAccount(rec.payer.0));
            }
            streams.push(rec);
        }
        self.streams = streams;
        Ok(())
    }

    /// The diff that takes a state with `count_before` accounts to `accounts`, given the indices
    /// the batch touched. Every account at `count_before` or above is included whether listed or
    /// not (a created account is always part of the diff).
    pub fn from_accounts(
        accounts: &[Account],
        touched: impl IntoIterator<Item = AccountIndex>,
        count_before: u64,
    ) -> Result<Self, DiffError> {
        let records = account_records(accounts, touched, count_before, true)?;
        StateDiff::new(count_before, records)
    }

    /// The diff that takes a state with `count_before` accounts to `state` (the state after the
    /// batch), given the accounts and the stream slots the batch touched: the account records
    /// as [`StateDiff::from_accounts`] (whatever their `ext`, which a replica derives from the
    /// stream records) and one stream record per touched slot, with the slot's content in
    /// `state`.
    /// `agents`: the accounts whose `ext` the batch changed, which get a passport or lanes record
    /// if they have one; `policies`: the agents whose policy the batch set (their records carry
    /// it); `registered`: the accounts that registered their shares in the batch.
    pub fn from_state(
        state: &State,
        touched: impl IntoIterator<Item = AccountIndex>,
        slots: impl IntoIterator<Item = (AccountIndex, StreamSlot)>,
        agents: impl IntoIterator<Item = AccountIndex>,
        policies: &BTreeSet<AccountIndex>,
        registered: &BTreeSet<AccountIndex>,
        count_before: u64,
    ) -> Result<Self, DiffError> {
        let records = account_records(state.accounts(), touched, count_before, false)?;
        let keys: BTreeSet<(AccountIndex, StreamSlot)> = slots.into_iter().collect();
        let streams = keys
            .into_iter()
            .map(|(payer, slot)| StreamRecord {
                payer,
                slot,
                stream: state.streams_of(payer).get(slot).copied(),
            })
            .collect();
        let agents: BTreeSet<AccountIndex> = agents.into_iter().collect();
        let passports = agents
            .iter()
            .filter_map(|&a| {
                let p = state.passport(a)?;
                Some(PassportRecord::of(a, p, policies.contains(&a)))
            })
            .collect();
        let lanes = agents
            .iter()
            .map(|&a| LanesRecord {
                account: a,
                lanes: state.lanes_of(a),
            })
            .filter(|r| !r.lanes.is_unused())
            .collect();
        let shares = registered
            .iter()
            .map(|&a| {
                state
                    .shares_of(a)
                    .map(|s| SharesRecord(s.clone()))
                    .ok_or(DiffError::AgentMismatch(a.0))
            })
            .collect::<Result<_, _>>()?;
        StateDiff::with_streams(count_before, records, streams)?
            .with_agents(passports, lanes, shares)
    }

    /// The number of accounts before the batch.
    pub fn count_before(&self) -> u64 {
        self.count_before
    }

    /// The number of accounts after the batch.
    pub fn count_after(&self) -> u64 {
        self.count_before + self.records.iter().filter(|r| r.pubkey.is_some()).count() as u64
    }

    /// The records, sorted by index.
    pub fn records(&self) -> &[AccountRecord] {
        &self.records
    }

    /// The stream records, sorted by `(payer, slot)` (empty in a version 1 diff).
    pub fn streams(&self) -> &[StreamRecord] {
        &self.streams
    }

    /// The passport records, sorted by agent (empty below version 3).
    pub fn passports(&self) -> &[PassportRecord] {
        &self.passports
    }

    /// The lanes records, sorted by account (empty below version 3).
    pub fn lanes(&self) -> &[LanesRecord] {
        &self.lanes
    }

    /// The shares records, sorted by account (empty below version 3).
    pub fn shares(&self) -> &[SharesRecord] {
        &self.shares
    }

    /// The version [`StateDiff::encode`] writes: 3 when there are agent records, else 2 when
    /// there are stream records, else 1.
    pub fn version(&self) -> u8 {
        if !self.passports.is_empty() || !self.lanes.is_empty() || !self.shares.is_empty() {
            DIFF_VERSION_AGENTS
        } else if !self.streams.is_empty() {
            DIFF_VERSION_STREAMS
        } else {
            DIFF_VERSION
        }
    }

    /// The length of [`StateDiff::encode`].
    pub fn encoded_len(&self) -> usize {
        HEADER_BYTES
            + self
                .records
                .iter()
                .map(|r| {
                    if r.pubkey.is_some() {
                        NEW_RECORD_BYTES
                    } else {
                        RECORD_BYTES
                    }
                })
                .sum::<usize>()
            + if self.version() == DIFF_VERSION {
                0
            } else {
                4 + self
                    .streams
                    .iter()
                    .map(StreamRecord::encoded_len)
                    .sum::<usize>()
            }
            + if self.version() == DIFF_VERSION_AGENTS {
                12 + self
                    .passports
                    .iter()
                    .map(PassportRecord::encoded_len)
                    .sum::<usize>()
                    + LANES_RECORD_BYTES * self.lanes.len()
                    + self
                        .shares
                        .iter()
                        .map(SharesRecord::encoded_len)
                        .sum::<usize>()
            } else {
                0
            }
    }

    /// The canonical bytes (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(self.version());
        out.extend_from_slice(&self.count_before.to_le_bytes());
        // `new` bounds the number of records below 2^32.
        out.extend_from_slice(&(self.records.len() as u32).to_le_bytes());
        for r in &self.records {
            r.encode_into(&mut out);
        }
        let version = self.version();
        if version != DIFF_VERSION {
            out.extend_from_slice(&(self.streams.len() as u32).to_le_bytes());
            for r in &self.streams {
                r.encode_into(&mut out);
            }
        }
        if version == DIFF_VERSION_AGENTS {
            out.extend_from_slice(&(self.passports.len() as u32).to_le_bytes());
            for r in &self.passports {
                r.encode_into(&mut out);
            }
            out.extend_from_slice(&(self.lanes.len() as u32).to_le_bytes());
            for r in &self.lanes {
                r.encode_into(&mut out);
            }
            out.extend_from_slice(&(self.shares.len() as u32).to_le_bytes());
            for r in &self.shares {
                r.encode_into(&mut out);
            }
        }
        debug_assert_eq!(out.len(), self.encoded_len());
        out
    }

    /// Parses and checks an encoded diff (see the module docs for what is rejected).
    pub fn decode(bytes: &[u8]) -> Result<Self, DiffError> {
        let mut r = Reader(bytes);
        let [version] = r.take::<1>()?;
        if !(DIFF_VERSION..=DIFF_VERSION_GROUPED).contains(&version) {
            return Err(DiffError::UnsupportedVersion(version));
        }
        let count_before = u64::from_le_bytes(r.take()?);
        let mut seq = Sequence::new(count_before)?;
        let n = u32::from_le_bytes(r.take()?);
        if version == DIFF_VERSION_GROUPED {
            let diff = StateDiff::read_grouped(&mut r, count_before, seq, n)?;
            if !r.0.is_empty() {
                return Err(DiffError::TrailingBytes(r.0.len()));
            }
            return Ok(diff);
        }
        // Do not trust `n` for the allocation: it is bounded by what the bytes can hold.
        let mut records = Vec::with_capacity((n as usize).min(bytes.len() / RECORD_BYTES));
        for _ in 0..n {
            records.push(AccountRecord::read(&mut r, &mut seq)?);
        }
        let mut diff = StateDiff {
            count_before,
            records,
            streams: Vec::new(),
            passports: Vec::new(),
            lanes: Vec::new(),
            shares: Vec::new(),
        };
        if version >= DIFF_VERSION_STREAMS {
            let s = u32::from_le_bytes(r.take()?);
            // Version 3 may have no stream; version 2 exists for its streams.
            if s == 0 && version == DIFF_VERSION_STREAMS {
                return Err(DiffError::EmptyStreamSection);
            }
            diff.read_streams(&mut r, s)?;
        }
        if version == DIFF_VERSION_AGENTS {
            diff.read_agents(&mut r)?;
            if diff.passports.is_empty() && diff.lanes.is_empty() && diff.shares.is_empty() {
                return Err(DiffError::EmptyAgentSection);
            }
        }
        if !r.0.is_empty() {
            return Err(DiffError::TrailingBytes(r.0.len()));
        }
        Ok(diff)
    }
}

impl AccountRecord {
    /// `index ‖ balance ‖ nonce [‖ pubkey]` (module docs).
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.index.0.to_le_bytes());
        out.extend_from_slice(&self.balance.get().to_le_bytes());
        out.extend_from_slice(&self.nonce.get().to_le_bytes());
        if let Some(k) = &self.pubkey {
            out.extend_from_slice(&k.to_bytes());
        }
    }

    /// Reads the next record, its index checked by `seq`.
    fn read(r: &mut Reader<'_>, seq: &mut Sequence) -> Result<AccountRecord, DiffError> {
        let index = u32::from_le_bytes(r.take()?);
        let is_new = seq.next(index)?;
        let balance = r.bounded(index, Amount::new)?;
        let nonce = r.bounded(index, Nonce::new)?;
        let pubkey = if is_new {
            let k = EncodedKey::from_bytes(&r.take()?)
                .map_err(|source| DiffError::PublicKey { index, source })?;
            Some(k)
        } else {
            None
        };
        Ok(AccountRecord {
            index: AccountIndex(index),
            balance,
            nonce,
            pubkey,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DiffError> {
        let (head, tail) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(DiffError::Truncated)?;
        self.0 = tail;
        Ok(*head)
    }

    fn bounded<T>(&mut self, index: u32, new: impl Fn(u64) -> Option<T>) -> Result<T, DiffError> {
        let value = u64::from_le_bytes(self.take()?);
        new(value).ok_or(DiffError::OutOfRange { index, value })
    }
}

mod agents;
pub mod grouped;
mod streams;
mod touches;
mod tree;

pub use agents::{
    LanesRecord, PassportRecord, SharesRecord, LANES_RECORD_BYTES, PASSPORT_RECORD_BYTES,
    SHARES_RECORD_BYTES,
};
pub use streams::{StreamRecord, STREAM_FIELDS_BYTES, STREAM_KEY_BYTES};
pub use touches::BatchTouches;
pub use tree::AccountTree;

#[cfg(test)]
mod tests;
