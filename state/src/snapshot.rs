//! State snapshots: the whole [`State`] as bytes, so that a node restarts from its latest
//! snapshot plus the transactions after it instead of replaying its entire history.
//!
//! Format (version 4, all integers little-endian):
//!
//! | field | bytes |
//! |---|---|
//! | magic `"rollsnap"` | 8 |
//! | version (4) | 4 |
//! | domain: chain id, rollup address | 8 + 20 |
//! | number of accounts `n`, next deposit seq | 8 + 8 |
//! | deposited, withdrawn (u128) | 16 + 16 |
//! | `n` accounts: key encoding, balance, nonce, ext | 88 each |
//! | number of open streams `m` (u64), then `m` streams sorted strictly by (payer, slot): payer u32, slot u16, payee u32, price u64, max_ticks u32, expiry u64, opened_at u64, settled u32, head (32) | 8 + 74 each |
//! | number of passports `a` (u64), then `a` passport records sorted strictly by agent, each with its policy (the diff's record, SPEC 10.4 version 3) | 8 + 133 or more each |
//! | number of lanes records `l` (u64), then `l` lanes records sorted strictly by account (as in the diff) | 8 + 60 each |
//! | number of revenue-share accounts `h` (u64), then `h` shares records sorted strictly by account (as in the diff) | 8 + 6 + 6 per payee each |
//! | the tree: for each of the 33 levels, leaves first: dense length, nodes (32 bytes each), overflow length, (position u32, node) pairs | |
//!
//! Cost: ~88 bytes per account plus ~64 bytes per account of tree (two nodes per leaf), i.e.
//! ~150 MB at a million accounts; encoding is a linear copy (no hashing), and so is decoding
//! except for rebuilding the key index. Keys are read with [`EncodedKey::from_validated_bytes`]
//! (they were validated at registration) and the tree is taken as stored: a snapshot is the
//! node's own data, protected by the checksum the storage layer keeps beside it and by the
//! check of its root against the sealed block it claims to be (`sequencer::recovery`).
//!
//! The streams, passports, lanes and shares are checked against the accounts on decoding: each
//! field in range, every payer, payee, agent and owner an account, and every account's `ext` the
//! digest of its stream book and profile (`ZERO` without either, SPEC 18.3); the escrow total is
//! recomputed. Versions 1 (before streams: every `ext` zero), 2 (before agents) and 3 (before
//! shares) are still read.

use std::collections::BTreeMap;

use hashbrown::HashTable;

use crate::account::{Account, AccountIndex, Amount, Nonce};
use crate::apply::State;
use crate::crypto::schnorr::EncodedKey;
use crate::diff::{LanesRecord, PassportRecord, SharesRecord, LANES_RECORD_BYTES};
use crate::ext::{ext_digest, Profile};
use crate::hash::Digest;
use crate::lanes::LaneNonces;
use crate::passport::Passport;
use crate::smt::SparseMerkleTree;
use crate::split::Shares;
use crate::stream::{PayerStreams, Stream, StreamSlot, STREAM_FIELDS_BYTES};
use crate::tx::Domain;

const MAGIC: &[u8; 8] = b"rollsnap";
/// The format version written by [`State::encode_snapshot`].
pub const SNAPSHOT_VERSION: u32 = 4;
const ACCOUNT_BYTES: usize = 40 + 8 + 8 + 32;
const STREAM_BYTES: usize = 4 + 2 + STREAM_FIELDS_BYTES;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a state snapshot (bad magic)")]
    BadMagic,
    #[error("snapshot format version {0} is not supported (this build reads {SNAPSHOT_VERSION})")]
    UnsupportedVersion(u32),
    #[error("the snapshot is for another chain or rollup contract")]
    WrongDomain,
    #[error("the snapshot is truncated or malformed at byte {0}")]
    Malformed(usize),
    #[error("account {0} in the snapshot is out of bounds or repeats a key")]
    BadAccount(u32),
    #[error("the snapshot's tree does not hold the accounts' leaves")]
    TreeMismatch,
    #[error(
        "stream {0} of the snapshot is invalid, out of order, or disagrees with its payer's ext"
    )]
    BadStream(u64),
    #[error("agent record {0} of the snapshot is invalid or out of order")]
    BadAgent(u64),
    #[error("account {0}'s ext is not the digest of its streams and profile")]
    ExtMismatch(u32),
}

impl State {
    /// Encodes the whole state (brings the tree up to date first).
    pub fn encode_snapshot(&mut self) -> Vec<u8> {
        self.root();
        let tree_estimate = self.accounts.len() * 64 + 33 * 16;
        let mut out = Vec::with_capacity(96 + self.accounts.len() * ACCOUNT_BYTES + tree_estimate);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.domain.chain_id.to_le_bytes());
        out.extend_from_slice(&self.domain.rollup);
        out.extend_from_slice(&(self.accounts.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.next_deposit_seq.to_le_bytes());
        out.extend_from_slice(&self.deposited.to_le_bytes());
        out.extend_from_slice(&self.withdrawn.to_le_bytes());
        for a in &self.accounts {
            out.extend_from_slice(&a.pubkey.to_bytes());
            out.extend_from_slice(&a.balance.get().to_le_bytes());
            out.extend_from_slice(&a.nonce.get().to_le_bytes());
            out.extend_from_slice(&a.ext.to_bytes());
        }
        let streams: Vec<&Stream> = self.streams.values().flat_map(|b| b.iter()).collect();
        out.extend_from_slice(&(streams.len() as u64).to_le_bytes());
        for st in streams {
            out.extend_from_slice(&st.id.payer.0.to_le_bytes());
            out.extend_from_slice(&st.id.slot.0.to_le_bytes());
            st.write_fields(&mut out);
        }
        out.extend_from_slice(&(self.passports.len() as u64).to_le_bytes());
        for (&i, p) in &self.passports {
            PassportRecord::of(AccountIndex(i), p, true).encode_into(&mut out);
        }
        out.extend_from_slice(&(self.lanes.len() as u64).to_le_bytes());
        for (&i, &lanes) in &self.lanes {
            LanesRecord {
                account: AccountIndex(i),
                lanes,
            }
            .encode_into(&mut out);
        }
        out.extend_from_slice(&(self.shares.len() as u64).to_le_bytes());
        for s in self.shares.values() {
            SharesRecord(s.clone()).encode_into(&mut out);
        }
        self.tree.encode_into(&mut out);
        out
    }

    /// Decodes a snapshot for `domain`. The result is the state the snapshot was taken of;
    /// the caller checks its root against the block it belongs to.
    pub fn decode_snapshot(bytes: &[u8], domain: &Domain) -> Result<State, SnapshotError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(8)? != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = r.u32()?;
        // Version 1 is version 2 without the stream section (written before streams existed,
        // so it holds none): still read, so that an upgrade does not replay the whole log.
        if !(1..=SNAPSHOT_VERSION).contains(&version) {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let chain_id = r.u64()?;
        let rollup: [u8; 20] = r.array()?;
        if chain_id != domain.chain_id || rollup != domain.rollup {
            return Err(SnapshotError::WrongDomain);
        }
        let n = r.u64()?;
        let next_deposit_seq = r.u64()?;
        let deposited = u128::from_le_bytes(r.array()?);
        let withdrawn = u128::from_le_bytes(r.array()?);
        // Do not trust `n` for the allocation: the bytes must hold that many accounts.
        let n = usize::try_from(n).map_err(|_| r.malformed())?;
        let raw = r.take(n.checked_mul(ACCOUNT_BYTES).ok_or(r.malformed())?)?;
        let mut accounts = Vec::with_capacity(n);
        for (i, c) in raw.chunks_exact(ACCOUNT_BYTES).enumerate() {
            let bad = SnapshotError::BadAccount(i as u32);
            let key = c[..40]
                .try_into()
                .ok()
                .and_then(EncodedKey::from_validated_bytes);
            let balance = c[40..48]
                .try_into()
                .ok()
                .and_then(|b| Amount::new(u64::from_le_bytes(b)));
            let nonce = c[48..56]
                .try_into()
                .ok()
                .and_then(|b| Nonce::new(u64::from_le_bytes(b)));
            let ext = c[56..].try_into().ok().and_then(Digest::from_bytes);
            match (key, balance, nonce, ext) {
                (Some(pubkey), Some(balance), Some(nonce), Some(ext)) => accounts.push(Account {
                    pubkey,
                    balance,
                    nonce,
                    ext,
                }),
                _ => return Err(bad),
            }
        }
        let (streams, escrowed) = if version == 1 {
            (BTreeMap::new(), 0)
        } else {
            read_streams(&mut r, &accounts)?
        };
        let agents = if version >= 3 {
            read_agents(&mut r, &accounts, version >= 4)?
        } else {
            Agents::default()
        };
        check_exts(&accounts, &streams, &agents)?;
        let (tree, used) =
            SparseMerkleTree::decode_from(&bytes[r.at..]).ok_or(SnapshotError::Malformed(r.at))?;
        if r.at + used != bytes.len() {
            return Err(SnapshotError::Malformed(r.at + used));
        }
        // Cheap consistency: the tree holds exactly one non-empty leaf per account (a leaf
        // hash is never ZERO). Recomputing the leaves would cost two permutations each.
        if tree.len_nonempty() != accounts.len()
            || (!accounts.is_empty() && tree.leaf((accounts.len() - 1) as u32) == Digest::ZERO)
        {
            return Err(SnapshotError::TreeMismatch);
        }
        let mut state = State {
            domain: *domain,
            accounts,
            by_key: HashTable::with_capacity(n),
            key_hasher: Default::default(),
            tree,
            dirty: Vec::new(),
            next_deposit_seq,
            deposited,
            withdrawn,
            max_accounts: 1 << 32,
            streams,
            escrowed,
            passports: agents.passports,
            shares: agents.shares,
            lanes: agents.lanes,
            // Whether lanes are accepted is the node's configuration, not the state's data.
            lanes_enabled: false,
        };
        for i in 0..n {
            let index = AccountIndex(i as u32);
            if state.index_of_key(&state.accounts[i].pubkey).is_some() {
                return Err(SnapshotError::BadAccount(index.0));
            }
            state.insert_key(index);
        }
        Ok(state)
    }
}

/// What the agent sections of a snapshot hold.
#[derive(Default)]
struct Agents {
    passports: BTreeMap<u32, Passport>,
    lanes: BTreeMap<u32, LaneNonces>,
    shares: BTreeMap<u32, Shares>,
}

/// The passport, lanes and (`with_shares`: version 4 on) shares sections: every record valid
/// (as in a diff) and in order. A bad record is named by its position across the sections.
fn read_agents(
    r: &mut Reader<'_>,
    accounts: &[Account],
    with_shares: bool,
) -> Result<Agents, SnapshotError> {
    let count = accounts.len() as u64;
    let a = r.u64()?;
    let mut passports = BTreeMap::new();
    for i in 0..a {
        let bad = SnapshotError::BadAgent(i);
        let (rec, len) =
            PassportRecord::read_prefix(&r.bytes[r.at..], count).map_err(|_| bad.clone())?;
        r.take(len)?;
        let policy = rec.policy.ok_or(bad.clone())?;
        if passports
            .last_key_value()
            .is_some_and(|(&k, _)| k >= rec.agent.0)
        {
            return Err(bad);
        }
        let p = Passport::from_parts(rec.owner, policy, rec.revoked, rec.window_id, rec.spent);
        passports.insert(rec.agent.0, p);
    }
    let l = r.u64()?;
    let mut lanes = BTreeMap::new();
    for i in 0..l {
        let bad = SnapshotError::BadAgent(a + i);
        let raw = r.take(LANES_RECORD_BYTES)?;
        let rec = LanesRecord::read_prefix(raw, count).map_err(|_| bad.clone())?;
        if lanes
            .last_key_value()
            .is_some_and(|(&k, _)| k >= rec.account.0)
            || rec.lanes.is_unused()
        {
            return Err(bad);
        }
        lanes.insert(rec.account.0, rec.lanes);
    }
    let mut shares = BTreeMap::new();
    let h = if with_shares { r.u64()? } else { 0 };
    for i in 0..h {
        let bad = SnapshotError::BadAgent(a + l + i);
        let (rec, len) =
            SharesRecord::read_prefix(&r.bytes[r.at..], count).map_err(|_| bad.clone())?;
        r.take(len)?;
        let account = rec.account().0;
        if shares.last_key_value().is_some_and(|(&k, _)| k >= account) {
            return Err(bad);
        }
        shares.insert(account, rec.0);
    }
    Ok(Agents {
        passports,
        lanes,
        shares,
    })
}

/// Every account's `ext` is the digest of its stream book and profile (SPEC 18.3).
fn check_exts(
    accounts: &[Account],
    streams: &BTreeMap<u32, PayerStreams>,
    agents: &Agents,
) -> Result<(), SnapshotError> {
    let empty = crate::smt::empty_hashes()[crate::stream::SLOT_DEPTH];
    for (i, a) in accounts.iter().enumerate() {
        let k = i as u32;
        let profile = Profile {
            shares: agents.shares.get(&k).map_or(Digest::ZERO, Shares::digest),
            passport: agents
                .passports
                .get(&k)
                .map_or(Digest::ZERO, Passport::digest),
            lanes: agents
                .lanes
                .get(&k)
                .map_or(Digest::ZERO, LaneNonces::digest),
        };
        let root = streams.get(&k).map_or(empty, PayerStreams::root);
        if a.ext != ext_digest(root, profile.digest()) {
            return Err(SnapshotError::ExtMismatch(k));
        }
    }
    Ok(())
}

/// The stream section: every stream valid and in order.
fn read_streams(
    r: &mut Reader<'_>,
    accounts: &[Account],
) -> Result<(BTreeMap<u32, PayerStreams>, u128), SnapshotError> {
    let m = r.u64()?;
    let len = usize::try_from(m)
        .ok()
        .and_then(|m| m.checked_mul(STREAM_BYTES))
        .ok_or(r.malformed())?;
    let raw = r.take(len)?;
    let mut books: BTreeMap<u32, PayerStreams> = BTreeMap::new();
    let mut escrowed = 0u128;
    let mut last: Option<(u32, u16)> = None;
    for (i, c) in raw.chunks_exact(STREAM_BYTES).enumerate() {
        let bad = SnapshotError::BadStream(i as u64);
        let payer = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let slot = u16::from_le_bytes([c[4], c[5]]);
        if last.is_some_and(|l| l >= (payer, slot)) {
            return Err(bad);
        }
        last = Some((payer, slot));
        let fields: &[u8; STREAM_FIELDS_BYTES] = c[6..].try_into().map_err(|_| bad.clone())?;
        if payer as usize >= accounts.len() {
            return Err(bad);
        }
        let stream = Stream::read_fields(
            AccountIndex(payer),
            StreamSlot(slot),
            fields,
            accounts.len() as u64,
        )
        .map_err(|_| bad.clone())?;
        escrowed += u128::from(stream.escrow().get());
        books.entry(payer).or_default().put(stream);
    }
    Ok((books, escrowed))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn malformed(&self) -> SnapshotError {
        SnapshotError::Malformed(self.at)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self.at.checked_add(n).ok_or(self.malformed())?;
        let s = self.bytes.get(self.at..end).ok_or(self.malformed())?;
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let s = self.take(N)?;
        s.try_into().map_err(|_| self.malformed())
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        self.array().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::Timestamp;
    use crate::apply::BlockContext;
    use crate::crypto::schnorr::SecretKey;
    use crate::tx::{Deposit, Transaction, UnsignedRegister, UnsignedTransfer};
    use rand::SeedableRng;

    const DOMAIN: Domain = Domain {
        chain_id: 31337,
        rollup: [7; 20],
    };

    /// A state with registrations, a deposit and transfers, and the keys that signed them.
    fn busy_state() -> (State, Vec<SecretKey>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let op = SecretKey::random(&mut rng);
        let mut s = State::genesis(DOMAIN, op.public_key());
        let ctx = BlockContext::at(Timestamp::new(1_000).unwrap());
        let keys: Vec<SecretKey> = (0..40).map(|_| SecretKey::random(&mut rng)).collect();
        for k in &keys {
            let tx = UnsignedRegister {
                pubkey: k.public_key(),
                valid_until: Timestamp::new(2_000).unwrap(),
            }
            .sign(&DOMAIN, k);
            s.apply(&Transaction::Register(tx), &ctx).unwrap();
        }
        let dep = Deposit {
            seq: 0,
            to: AccountIndex(1),
            amount: Amount::new(1_000_000).unwrap(),
        };
        s.apply(&Transaction::Deposit(dep), &ctx).unwrap();
        for i in 0..10u64 {
            let tx = UnsignedTransfer {
                from: AccountIndex(1),
                to: AccountIndex(2 + i as u32),
                amount: Amount::new(100 + i).unwrap(),
                fee: Amount::new(1).unwrap(),
                nonce: Nonce::new(i).unwrap(),
                valid_until: Timestamp::new(2_000).unwrap(),
            }
            .sign(&DOMAIN, &keys[0]);
            s.apply(&Transaction::Transfer(tx), &ctx).unwrap();
        }
        (s, keys)
    }

    #[test]
    fn a_snapshot_restores_the_same_state_and_it_keeps_working() {
        let (mut s, keys) = busy_state();
        let bytes = s.encode_snapshot();
        let mut back = State::decode_snapshot(&bytes, &DOMAIN).unwrap();
        assert_eq!(back.root(), s.root());
        assert_eq!(back.accounts(), s.accounts());
        assert_eq!(back.next_deposit_seq(), s.next_deposit_seq());
        assert_eq!(back.deposited(), s.deposited());
        assert_eq!(back.withdrawn(), s.withdrawn());
        assert_eq!(
            back.account_by_key(keys[5].public_key()).map(|x| x.0),
            Some(AccountIndex(6))
        );
        assert_eq!(back.encode_snapshot(), bytes, "encoding is canonical");
        // The restored state applies the next transaction exactly like the original.
        let ctx = BlockContext::at(Timestamp::new(1_001).unwrap());
        let tx = Transaction::Transfer(
            UnsignedTransfer {
                from: AccountIndex(1),
                to: AccountIndex(30),
                amount: Amount::new(5).unwrap(),
                fee: Amount::ZERO,
                nonce: Nonce::new(10).unwrap(),
                valid_until: Timestamp::new(2_000).unwrap(),
            }
            .sign(&DOMAIN, &keys[0]),
        );
        assert_eq!(back.apply(&tx, &ctx), s.apply(&tx, &ctx));
        assert_eq!(back.root(), s.root());
        // A key registered before the snapshot is still a duplicate after it.
        let dup = UnsignedRegister {
            pubkey: keys[3].public_key(),
            valid_until: Timestamp::new(2_000).unwrap(),
        }
        .sign(&DOMAIN, &keys[3]);
        assert!(back.apply(&Transaction::Register(dup), &ctx).is_err());
    }

    #[test]
    fn versions_1_to_3_without_streams_agents_or_shares_are_still_read() {
        let (mut s, _) = busy_state();
        let v4 = s.encode_snapshot();
        // Version 3 = version 4 without the (here empty) shares section, version 2 without the
        // agent sections after the streams either, version 1 without the stream section too.
        let streams_at = 8 + 4 + 28 + 16 + 32 + s.accounts().len() * ACCOUNT_BYTES;
        assert_eq!(v4[streams_at..streams_at + 32], [0u8; 32]);
        for (version, cut) in [(1u32, 32), (2, 24), (3, 8)] {
            let mut old = v4[..streams_at + 32 - cut].to_vec();
            old.extend_from_slice(&v4[streams_at + 32..]);
            old[8..12].copy_from_slice(&version.to_le_bytes());
            let mut back = State::decode_snapshot(&old, &DOMAIN).unwrap();
            assert_eq!(back.root(), s.root());
            assert_eq!(back.encode_snapshot(), v4, "written back as version 4");
        }
    }

    #[test]
    fn damaged_or_foreign_snapshots_are_refused() {
        let (mut s, _) = busy_state();
        let bytes = s.encode_snapshot();
        let other = Domain {
            chain_id: 1,
            rollup: [7; 20],
        };
        assert_eq!(
            State::decode_snapshot(&bytes, &other).err(),
            Some(SnapshotError::WrongDomain)
        );
        let mut magic = bytes.clone();
        magic[0] ^= 1;
        assert_eq!(
            State::decode_snapshot(&magic, &DOMAIN).err(),
            Some(SnapshotError::BadMagic)
        );
        let mut version = bytes.clone();
        version[8] = 9;
        assert_eq!(
            State::decode_snapshot(&version, &DOMAIN).err(),
            Some(SnapshotError::UnsupportedVersion(9))
        );
        for cut in [20, 100, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                State::decode_snapshot(&bytes[..cut], &DOMAIN).is_err(),
                "truncated at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            State::decode_snapshot(&longer, &DOMAIN),
            Err(SnapshotError::Malformed(_))
        ));
        // An account count that claims more accounts than the bytes hold.
        let mut count = bytes.clone();
        count[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(State::decode_snapshot(&count, &DOMAIN).is_err());
        // A balance above the bound (first account's balance field).
        let mut balance = bytes.clone();
        let first = 8 + 4 + 8 + 20 + 8 + 8 + 16 + 16;
        balance[first + 40..first + 48].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            State::decode_snapshot(&balance, &DOMAIN).err(),
            Some(SnapshotError::BadAccount(0))
        );
        // Two accounts with the same key.
        let mut dup = bytes.clone();
        let second = first + ACCOUNT_BYTES;
        let k: Vec<u8> = dup[first..first + 40].to_vec();
        dup[second..second + 40].copy_from_slice(&k);
        assert_eq!(
            State::decode_snapshot(&dup, &DOMAIN).err(),
            Some(SnapshotError::BadAccount(1))
        );
    }
}
