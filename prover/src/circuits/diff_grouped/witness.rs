//! The grouped diff circuit's witness: a version 4 diff cut into chunks of `cap` slots of
//! `subs` sub-slots each ([`grouped_chunks`]), every slot with the paths and old values the
//! circuit opens, and the statement each chunk must prove.

use anyhow::{ensure, Context};
use plonky2::field::types::PrimeField64;
use serde::{Deserialize, Serialize};
use state::diff::{AccountTree, StateDiff};
use state::hash::Digest;
use state::smt::DEPTH;
use state::stream::{PayerStreams, SLOT_DEPTH};

use crate::circuits::diff::{
    batch_start, diff_header_of, key_of, leaf_of, record_prefix, ChunkStart, DiffStatement, Key,
};
use crate::gadgets::sha256::stream::StreamState;

use super::{GroupedParts, GroupedStatement, PolicyCarry, SharesCarry, RUN_ITEMS, VERSION};
use crate::gadgets::allow::RUN_PAYEES;

/// One stream record of a slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSub {
    /// Whether the record exists. Not a witness: the circuit derives it from the `parts` byte
    /// (or the continuation) and the previous record's "more" bit; kept for the builder and
    /// the tests that edit witnesses.
    pub used: bool,
    /// The slot holds an open stream after the batch (else it was emptied).
    pub open: bool,
    /// Another stream record of the account follows (the tag's bit 1).
    pub more: bool,
    pub slot: u16,
    /// The open stream's ten leaf elements (`Stream::to_field_elements`), zeros otherwise.
    pub fields: [u64; 10],
    /// The slot's leaf before this record.
    pub old_leaf: Digest,
    /// Its 16 siblings in the book as it stands before this record.
    pub path: Vec<Digest>,
    /// In the shape with shares runs, the items of the group's shares record this sub-slot
    /// reads instead of a stream record (at most [`RUN_ITEMS`]; the header `(index, n)` first
    /// in the group's first run, then `(payee, bps)`); empty for a stream record.
    #[serde(default)]
    pub run: Vec<(u32, u16)>,
    /// In the full shape, the payees of the group's allow-list this sub-slot
    /// reads instead (at most [`RUN_PAYEES`], before any shares item or stream record).
    #[serde(default)]
    pub payees: Vec<u32>,
}

/// One slot: an account's group, or the continuation of the previous slot's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSlot {
    pub used: bool,
    pub cont: bool,
    pub is_new: bool,
    /// The `parts` byte's streams bit (ignored in a continuation).
    pub has_streams: bool,
    pub index: u32,
    pub key: Key,
    pub balance_before: u64,
    pub nonce_before: u64,
    pub balance: u64,
    pub nonce: u64,
    /// The account's book root before this slot's records.
    pub streams_root: Digest,
    /// Its profile parts before this slot (SPEC 18.3): shares, passport and lanes digests.
    pub parts: [Digest; 3],
    /// A passport record of the group (first slot only).
    pub passport: Option<PassportPart>,
    /// With it, the account's passport before the batch (`None`: it had none), which the
    /// circuit opens to see whether the record sets a policy (then its body must follow).
    #[serde(default)]
    pub passport_before: Option<PassportPart>,
    /// A lanes record of the group (first slot only): `s_1 .. s_7`.
    pub lanes: Option<[u64; 7]>,
    /// A shares record of the group (first slot only): its `n` and digest.
    #[serde(default)]
    pub shares: Option<SharesPart>,
    /// The passport record's policy body up to its payees (a chunk's first slot only).
    #[serde(default)]
    pub policy: Option<PolicyBody>,
    pub subs: Vec<StreamSub>,
    /// Against the running tree.
    pub siblings: Vec<Digest>,
}

/// A passport record without its policy body (SPEC 10.4, version 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassportPart {
    pub owner: u32,
    pub revoked: bool,
    pub window_id: u64,
    pub spent: u64,
    pub policy_digest: Digest,
}

impl PassportPart {
    pub fn of(p: &state::diff::PassportRecord) -> PassportPart {
        PassportPart {
            owner: p.owner.0,
            revoked: p.revoked,
            window_id: p.window_id,
            spent: p.spent.get(),
            policy_digest: p.policy_digest,
        }
    }
}

/// A passport record's policy body (SPEC 20.5) up to its payees, which runs read, and the
/// allow root they rebuild.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyBody {
    pub cap: u64,
    pub window: u32,
    pub max_payment: u64,
    pub max_fee: u64,
    pub expiry: u64,
    pub card_hash: [u8; 32],
    /// The card's URI bytes (at most 255).
    pub uri: Vec<u8>,
    /// The number of payees.
    pub n: u16,
    pub allow: Digest,
}

impl PolicyBody {
    pub fn of(p: &state::passport::Policy) -> anyhow::Result<PolicyBody> {
        Ok(PolicyBody {
            cap: p.cap.get(),
            window: p.window,
            max_payment: p.max_payment.get(),
            max_fee: p.max_fee.get(),
            expiry: p.expiry.get(),
            card_hash: p.card.hash,
            uri: p.card.uri().as_bytes().to_vec(),
            n: u16::try_from(p.allow.payees().len()).context("more than 2^16 payees")?,
            allow: p.allow.root(),
        })
    }
}

/// A shares record's declaration in its group's first slot (its entries are read by runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharesPart {
    pub n: u16,
    /// `H(TAG_SHARES, n, s)` (SPEC 19.2): the profile's shares part after the batch.
    pub digest: Digest,
}

/// Everything besides the public inputs, as plain data (a test edits it by hand).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupedWitness {
    /// Where the chunk starts (as in the version 1 circuit).
    #[serde(flatten)]
    pub start: ChunkStart,
    pub more_in: bool,
    pub next_slot_in: u32,
    /// The allow-list in progress before the chunk (the full shape; the default in the
    /// others).
    #[serde(default)]
    pub policy_in: PolicyCarry,
    /// The shares record in progress before the chunk (shape with shares runs; the default
    /// in the others).
    #[serde(default)]
    pub shares_in: SharesCarry,
    pub slots: Vec<GroupSlot>,
}

fn unused_sub() -> StreamSub {
    StreamSub {
        used: false,
        open: false,
        more: false,
        slot: 0,
        fields: [0; 10],
        old_leaf: Digest::ZERO,
        path: vec![Digest::ZERO; SLOT_DEPTH],
        run: Vec::new(),
        payees: Vec::new(),
    }
}

fn unused_slot(subs: usize) -> GroupSlot {
    GroupSlot {
        used: false,
        cont: false,
        is_new: false,
        has_streams: false,
        index: 0,
        key: [0; 5],
        balance_before: 0,
        nonce_before: 0,
        balance: 0,
        nonce: 0,
        streams_root: Digest::ZERO,
        parts: [Digest::ZERO; 3],
        passport: None,
        passport_before: None,
        lanes: None,
        shares: None,
        policy: None,
        subs: vec![unused_sub(); subs],
        siblings: vec![Digest::ZERO; DEPTH],
    }
}

/// What one sub-slot reads: a run of an allow-list's payees or of a shares record's items, or
/// a stream record.
enum Unit<'a> {
    Payees(Vec<u32>),
    Run(Vec<(u32, u16)>),
    Stream(&'a state::diff::StreamRecord),
}

/// Where the running values stand after a slot (what the next chunk starts from).
#[derive(Clone)]
struct Running {
    root: Digest,
    stream: StreamState,
    records: u64,
    lower: u64,
    new: u64,
    started: bool,
    more: bool,
    next_slot: u32,
    policy: PolicyCarry,
    shares: SharesCarry,
}

/// A batch's version 4 diff applied to `before` (the replica of the state before the batch:
/// accounts, books, profiles) in chunks of `cap` slots of `subs` sub-slots each for the shape
/// `parts`, padded with empty chunks to a power of two (at least `min_chunks`). A group whose
/// passport record carries its policy body starts a chunk (the circuit reads a body's header
/// in a chunk's first slot only). A record the shape has no room for is refused here (a
/// shares record) or by [`super::GroupedDiffCircuit::partial_witness`] (a passport or lanes
/// record).
pub fn grouped_chunks(
    before: &AccountTree,
    diff: &StateDiff,
    cap: usize,
    subs: usize,
    parts: GroupedParts,
    min_chunks: usize,
) -> anyhow::Result<Vec<(GroupedWitness, GroupedStatement)>> {
    ensure!(cap > 0 && subs > 0, "a chunk has slots with sub-slots");
    ensure!(
        parts.shares() || diff.shares().is_empty(),
        "a shares record, and this circuit shape has no shares runs"
    );
    let accounts = before.accounts();
    let (mut tree, count) = batch_start(accounts, diff.count_before())?;
    let count_before = count.count_before;
    let batch_old_root = tree.root();

    // The slots in order, each with its sub-slots, then the chunks.
    let records = diff.records();
    let n = u32::try_from(records.len()).context("more than 2^32 records")?;
    let mut header = StreamState::default();
    header.absorb(&diff_header_of(VERSION, count_before, n));
    let start = Running {
        root: batch_old_root,
        stream: header,
        records: 0,
        lower: 0,
        new: 0,
        started: false,
        more: false,
        next_slot: 0,
        policy: PolicyCarry::default(),
        shares: SharesCarry::default(),
    };
    let mut run = start.clone();
    let mut books: std::collections::BTreeMap<u32, PayerStreams> = Default::default();
    let mut plan: Vec<GroupSlot> = Vec::new();
    let mut states: Vec<Running> = Vec::new();
    let all_streams = diff.streams();
    let mut at = 0usize;
    for r in records {
        let i = r.index.0;
        let first = at;
        while all_streams.get(at).is_some_and(|s| s.payer.0 == i) {
            at += 1;
        }
        let own = &all_streams[first..at];
        let is_new = r.pubkey.is_some();
        let (key, old_profile) = match (&r.pubkey, accounts.get(i as usize)) {
            (Some(k), _) => (
                k.to_field_elements().map(|e| e.to_canonical_u64()),
                state::ext::Profile::default(),
            ),
            (None, Some(a)) => (key_of(a), before.profile_of(i)),
            (None, None) => anyhow::bail!("account {i} is not in the state"),
        };
        let passport = diff.passports().iter().find(|p| p.agent.0 == i);
        let lanes = diff.lanes().iter().find(|l| l.account.0 == i);
        let shares = diff.shares().iter().find(|h| h.account().0 == i);
        let new_profile = state::ext::Profile {
            shares: shares.map_or(old_profile.shares, |h| h.0.digest()),
            passport: passport.map_or(old_profile.passport, |p| p.digest()),
            lanes: lanes.map_or(old_profile.lanes, |l| l.lanes.digest()),
        };
        let profile = new_profile.digest();
        let book = books
            .entry(i)
            .or_insert_with(|| before.streams_of(i).cloned().unwrap_or_default());
        let declared = match shares {
            Some(h) => Some(SharesPart {
                n: u16::try_from(h.0.parts().len()).context("more than 2^16 shares")?,
                digest: h.0.digest(),
            }),
            None => None,
        };
        let body = match passport.and_then(|p| p.policy.as_ref()) {
            Some(policy) => Some((PolicyBody::of(policy)?, policy.allow.payees())),
            None => None,
        };
        // The allow-list's payees in runs, the shares record's items in runs (the header
        // first), then the stream records.
        let mut units: Vec<Unit<'_>> = Vec::new();
        if let Some((_, payees)) = &body {
            units.extend(
                payees
                    .chunks(RUN_PAYEES)
                    .map(|c| Unit::Payees(c.iter().map(|p| p.0).collect())),
            );
        }
        if let (Some(h), Some(d)) = (shares, declared) {
            let items: Vec<(u32, u16)> = std::iter::once((i, d.n))
                .chain(h.0.parts().iter().map(|&(to, bps)| (to.0, bps)))
                .collect();
            units.extend(items.chunks(RUN_ITEMS).map(|c| Unit::Run(c.to_vec())));
        }
        units.extend(own.iter().map(Unit::Stream));
        let pieces: Vec<&[Unit<'_>]> = if units.is_empty() {
            vec![&[]]
        } else {
            units.chunks(subs).collect()
        };
        let mut streams_left = own.len();
        for (k, piece) in pieces.iter().enumerate() {
            let cont = k > 0;
            let (balance_before, nonce_before) = match (cont, accounts.get(i as usize)) {
                (true, _) => (r.balance.get(), r.nonce.get()),
                (false, Some(a)) if !is_new => (a.balance.get(), a.nonce.get()),
                _ => (0, 0),
            };
            let streams_root = book.root();
            let slot_parts = if cont { new_profile } else { old_profile };
            // The group's passport record, in its first slot.
            let record = passport.filter(|_| !cont);
            let mut slot = GroupSlot {
                used: true,
                cont,
                is_new,
                has_streams: !own.is_empty(),
                index: i,
                key,
                balance_before,
                nonce_before,
                balance: r.balance.get(),
                nonce: r.nonce.get(),
                streams_root,
                parts: [slot_parts.shares, slot_parts.passport, slot_parts.lanes],
                passport: record.map(PassportPart::of),
                passport_before: record
                    .and_then(|_| before.passport_of(i))
                    .map(PassportPart::of),
                lanes: lanes.filter(|_| !cont).map(|l| l.lanes.seqs()),
                shares: declared.filter(|_| !cont),
                policy: body.as_ref().filter(|_| !cont).map(|(b, _)| b.clone()),
                subs: Vec::with_capacity(subs),
                siblings: tree.proof(i).siblings.to_vec(),
            };
            if !cont {
                run.stream
                    .absorb(&record_prefix(i, r.balance.get(), r.nonce.get()));
                if let Some(k) = &r.pubkey {
                    run.stream.absorb(&k.to_bytes());
                }
                let flags = u8::from(!own.is_empty())
                    | if passport.is_some() { 2 } else { 0 }
                    | if lanes.is_some() { 4 } else { 0 }
                    | if shares.is_some() { 8 } else { 0 };
                run.stream.absorb(&[flags]);
                run.stream.absorb(&part_bytes(passport, lanes));
                run.records += 1;
                run.next_slot = 0;
                if let Some((b, _)) = &body {
                    run.policy = PolicyCarry::start(b.n, b.allow);
                }
                if is_new {
                    run.new += 1;
                    run.started = true;
                } else {
                    run.lower = u64::from(i) + 1;
                }
                // What the circuit's first slot of a group resets the carry to.
                run.shares = SharesCarry {
                    left: declared.map_or(0, |d| d.n + 1),
                    n: declared.map_or(0, |d| d.n),
                    chain: Digest::ZERO,
                    digest: declared.map_or(Digest::ZERO, |d| d.digest),
                };
            }
            for unit in piece.iter() {
                let rec = match unit {
                    Unit::Payees(payees) => {
                        run.policy.read_run(payees)?;
                        for p in payees {
                            run.stream.absorb(&p.to_le_bytes());
                        }
                        slot.subs.push(StreamSub {
                            payees: payees.clone(),
                            ..unused_sub()
                        });
                        continue;
                    }
                    Unit::Run(items) => {
                        for &(x, y) in items {
                            let header = run.shares.left == run.shares.n + 1;
                            if !header {
                                run.shares.chain = state::split::shares_chain_step(
                                    run.shares.chain,
                                    state::account::AccountIndex(x),
                                    y,
                                );
                            }
                            run.shares.left -= 1;
                            run.stream.absorb(&x.to_le_bytes());
                            run.stream.absorb(&y.to_le_bytes());
                        }
                        slot.subs.push(StreamSub {
                            run: items.clone(),
                            ..unused_sub()
                        });
                        continue;
                    }
                    Unit::Stream(rec) => rec,
                };
                streams_left -= 1;
                let is_last = streams_left == 0;
                let old_leaf = book.get(rec.slot).map_or(Digest::ZERO, |s| s.leaf_hash());
                let path = book.path(rec.slot).to_vec();
                let fields = rec.stream.map_or([0; 10], |s| {
                    s.to_field_elements().map(|e| e.to_canonical_u64())
                });
                match rec.stream {
                    Some(s) => book.put(s),
                    None => {
                        book.remove(rec.slot);
                    }
                }
                slot.subs.push(StreamSub {
                    used: true,
                    open: rec.stream.is_some(),
                    more: !is_last,
                    slot: rec.slot.0,
                    fields,
                    old_leaf,
                    path,
                    run: Vec::new(),
                    payees: Vec::new(),
                });
                run.stream.absorb(&rec.slot.0.to_le_bytes());
                let tag = u8::from(rec.stream.is_some()) | if is_last { 0 } else { 2 };
                run.stream.absorb(&[tag]);
                if let Some(s) = rec.stream {
                    let mut bytes = Vec::new();
                    s.write_fields(&mut bytes);
                    run.stream.absorb(&bytes);
                }
                run.next_slot = u32::from(rec.slot.0) + 1;
            }
            // Another slot follows for the group's stream records still to come.
            run.more = streams_left > 0;
            slot.subs.resize(subs, unused_sub());
            let ext = state::ext::ext_digest(book.root(), profile);
            tree.set(i, leaf_of(&key, r.balance.get(), r.nonce.get(), ext));
            run.root = tree.root();
            plan.push(slot);
            states.push(run.clone());
        }
    }

    let unused_path = vec![Digest::ZERO; DEPTH];
    let mut out = Vec::new();
    let mut next = 0usize;
    loop {
        let from = if next == 0 { &start } else { &states[next - 1] };
        // A group with a policy body starts a chunk: this one ends before the next such slot.
        let end = (next + 1..(next + cap).min(plan.len()))
            .find(|&k| plan[k].policy.is_some())
            .unwrap_or((next + cap).min(plan.len()));
        let mut slots: Vec<GroupSlot> = plan[next..end].to_vec();
        let to = if end == 0 { &start } else { &states[end - 1] };
        next = end;
        slots.resize(cap, unused_slot(subs));
        for s in slots.iter_mut().filter(|s| !s.used) {
            s.siblings = unused_path.clone();
        }
        let w = GroupedWitness {
            start: ChunkStart {
                batch_old_root,
                count: count.clone(),
                root_in: from.root,
                stream_in: from.stream.clone(),
                records_in: from.records,
                lower_in: from.lower,
                new_in: from.new,
                started_in: from.started,
            },
            more_in: from.more,
            next_slot_in: from.next_slot,
            policy_in: if parts.policy_bodies() {
                from.policy
            } else {
                PolicyCarry::default()
            },
            shares_in: if parts.shares() {
                from.shares
            } else {
                SharesCarry::default()
            },
            slots,
        };
        let statement = GroupedStatement {
            base: DiffStatement {
                batch_old_root,
                count_before,
                root_in: from.root,
                root_out: to.root,
                stream_in: from.stream.clone(),
                stream_out: to.stream.clone(),
                records_in: from.records,
                records_out: to.records,
                lower_in: from.lower,
                lower_out: to.lower,
                new_in: from.new,
                new_out: to.new,
                started_in: from.started,
                started_out: to.started,
            },
            more_in: from.more,
            more_out: to.more,
            next_slot_in: from.next_slot,
            next_slot_out: to.next_slot,
            policy: parts.policy_bodies().then_some([from.policy, to.policy]),
            shares: parts.shares().then_some([from.shares, to.shares]),
        };
        out.push((w, statement));
        if next == plan.len() && out.len().is_power_of_two() && out.len() >= min_chunks {
            return Ok(out);
        }
    }
}

/// The lanes and passport records of a group, as its bytes carry them after the parts byte,
/// up to the allow-list's payees (which the group's runs append).
fn part_bytes(
    passport: Option<&state::diff::PassportRecord>,
    lanes: Option<&state::diff::LanesRecord>,
) -> Vec<u8> {
    let mut out = lanes.map_or_else(Vec::new, |l| l.to_bytes());
    if let Some(p) = passport {
        let bytes = p.to_bytes();
        let payees = p.policy.as_ref().map_or(0, |x| 4 * x.allow.payees().len());
        out.extend_from_slice(&bytes[..bytes.len() - payees]);
    }
    out
}
