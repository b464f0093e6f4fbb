//! The stream rules: what an open, a settlement and a close require and what they change.
//!
//! These are the stream-specific checks only. The parts every signed transaction shares
//! (signature, expiry, nonce, fee, the payer's balance, the payee's existence) are judged by
//! the state-transition function around them, with its own rejections, in the order SPEC
//! section 18.4 lists.
//!
//! A settlement's chain walk ([`Settle::claimed_head`], up to [`MAX_SETTLE_TICKS`] hashes)
//! depends only on the transaction, so it runs beside the signature check, in parallel; the
//! rule then compares one digest ([`settle`]).

use serde::{Deserialize, Serialize};

use super::chain::walk;
use super::tick_tree::{root_from_path, TickPath};
use super::tree::PayerStreams;
use super::{Stream, StreamId, StreamSlot, TickCount, MAX_SETTLE_TICKS, SETTLE_WINDOW_SECS};
use crate::account::{AccountIndex, Amount, Nonce, Timestamp};
use crate::hash::Digest;

/// Why a stream operation was refused. A refused operation changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamRejection {
    #[error("a stream must go to another account")]
    SelfStream,
    #[error("the price per tick must be positive")]
    ZeroPrice,
    #[error("a stream must have at least one tick, and at most 2^24")]
    BadTickCount,
    #[error("price x max_ticks is above 2^63 - 1")]
    EscrowOverflow,
    #[error("the stream's expiry {expiry} is not after the block time {now}")]
    ExpiryPassed { expiry: Timestamp, now: Timestamp },
    #[error("slot {0:?} of the payer already holds a stream")]
    SlotTaken(StreamSlot),
    #[error("no open stream in slot {slot:?} of account {payer}")]
    UnknownStream {
        payer: AccountIndex,
        slot: StreamSlot,
    },
    #[error("only the stream's payee may settle it")]
    NotPayee,
    #[error("only the stream's payer or payee may close it")]
    NotStreamParty,
    #[error("the settlement starts at tick {from}, the stream is settled to {settled}")]
    StaleSettle { from: TickCount, settled: TickCount },
    #[error("the settlement does not go past tick {from}")]
    TickNotNewer { from: TickCount },
    #[error("tick {to} is beyond the stream's {max} ticks")]
    TickBeyondMax { to: TickCount, max: TickCount },
    #[error("one settlement covers at most 2^16 ticks")]
    SettleTooLong,
    #[error("the tick does not hash to the stream's settled head")]
    TickMismatch,
    #[error("the settlement window closed at {closed_at}")]
    SettleWindowOver { closed_at: u64 },
    #[error("the payer may close only from {allowed_from}, after the payee's settlement window")]
    CloseTooEarly { allowed_from: u64 },
}

impl StreamRejection {
    /// A stable SCREAMING_SNAKE_CASE reason code (part of the API: never change one).
    pub const fn code(&self) -> &'static str {
        match self {
            StreamRejection::SelfStream => "SELF_STREAM",
            StreamRejection::ZeroPrice => "ZERO_PRICE",
            StreamRejection::BadTickCount => "BAD_TICK_COUNT",
            StreamRejection::EscrowOverflow => "ESCROW_OVERFLOW",
            StreamRejection::ExpiryPassed { .. } => "STREAM_EXPIRY_PASSED",
            StreamRejection::SlotTaken(_) => "STREAM_SLOT_TAKEN",
            StreamRejection::UnknownStream { .. } => "UNKNOWN_STREAM",
            StreamRejection::NotPayee => "NOT_PAYEE",
            StreamRejection::NotStreamParty => "NOT_STREAM_PARTY",
            StreamRejection::StaleSettle { .. } => "STALE_SETTLE",
            StreamRejection::TickNotNewer { .. } => "TICK_NOT_NEWER",
            StreamRejection::TickBeyondMax { .. } => "TICK_BEYOND_MAX",
            StreamRejection::SettleTooLong => "SETTLE_TOO_LONG",
            StreamRejection::TickMismatch => "TICK_MISMATCH",
            StreamRejection::SettleWindowOver { .. } => "SETTLE_WINDOW_OVER",
            StreamRejection::CloseTooEarly { .. } => "CLOSE_TOO_EARLY",
        }
    }
}

/// Who closes a stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Party {
    Payer,
    Payee,
}

/// The terms of an open (signed by the payer, with its nonce, fee and validity).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Open {
    pub payer: AccountIndex,
    pub payee: AccountIndex,
    pub slot: StreamSlot,
    pub price: Amount,
    pub max_ticks: TickCount,
    pub expiry: Timestamp,
    /// `t_0` of the payer's tick chain.
    pub anchor: Digest,
}

/// A settlement (signed by the payee): from the settled count `from` to tick `to`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Settle {
    pub payer: AccountIndex,
    pub slot: StreamSlot,
    pub from: TickCount,
    pub to: TickCount,
    /// `t_to`, the payee's latest tick.
    pub value: Digest,
}

impl Settle {
    /// `t_from` computed from the revealed `t_to` (`to - from` hashes), or `None` when the
    /// range is empty or longer than [`MAX_SETTLE_TICKS`] (the rule then refuses it without
    /// looking at the digest).
    pub fn claimed_head(&self, opened_at: Nonce) -> Option<Digest> {
        let (from, to) = (self.from.get(), self.to.get());
        if to <= from || to - from > MAX_SETTLE_TICKS {
            return None;
        }
        let id = StreamId {
            payer: self.payer,
            slot: self.slot,
            opened_at,
        };
        Some(walk(&id, to, self.value, from))
    }

    /// The root that `path` opens tick `to` with secret `value` to (SPEC 18.8; 25 hashes),
    /// or `None` when the range is empty (the rule then refuses it without looking at the
    /// digest). No bound on the range: a path costs the same whatever it settles.
    pub fn claimed_root(&self, opened_at: Nonce, path: &TickPath) -> Option<Digest> {
        if self.to <= self.from {
            return None;
        }
        let id = StreamId {
            payer: self.payer,
            slot: self.slot,
            opened_at,
        };
        root_from_path(&id, self.to, self.value, path)
    }
}

/// How a settlement opens the stream's anchor (rule 8), with what it computed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Opening {
    /// A chain walk from `t_to` down to `from` ([`Settle::claimed_head`]); the stream's head
    /// becomes `t_to`.
    Walk(Option<Digest>),
    /// A path from tick `to`'s leaf to the root ([`Settle::claimed_root`]); the head (the
    /// root) stays.
    Path(Option<Digest>),
}

/// A close, signed by `signer` (the payer or the payee).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Close {
    pub payer: AccountIndex,
    pub slot: StreamSlot,
    pub signer: AccountIndex,
}

/// What an accepted open changes: `escrow` leaves the payer's balance (with the fee) and
/// `stream` fills the slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Opened {
    pub stream: Stream,
    pub escrow: Amount,
}

/// What an accepted settlement changes: `payout` moves from the escrow to the payee, and the
/// slot holds `stream` (settled count and head advanced).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Settled {
    pub stream: Stream,
    pub payout: Amount,
}

/// What an accepted close changes: the slot empties and `refund` goes back to the payer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Closed {
    pub stream: Stream,
    pub refund: Amount,
    pub by: Party,
}

fn window_end(stream: &Stream) -> u64 {
    // Both below 2^63: no overflow.
    stream.expiry.get() + SETTLE_WINDOW_SECS
}

/// Judges an open by `payer` at nonce `opened_at` (the nonce the open carries).
///
/// Order: `SelfStream`, `ZeroPrice`, `BadTickCount`, `EscrowOverflow`, `ExpiryPassed`,
/// `SlotTaken`.
pub fn open(
    terms: &Open,
    opened_at: Nonce,
    streams: &PayerStreams,
    now: Timestamp,
) -> Result<Opened, StreamRejection> {
    if terms.payer == terms.payee {
        return Err(StreamRejection::SelfStream);
    }
    if terms.price.is_zero() {
        return Err(StreamRejection::ZeroPrice);
    }
    if terms.max_ticks == TickCount::ZERO {
        return Err(StreamRejection::BadTickCount);
    }
    let escrow = terms
        .price
        .get()
        .checked_mul(u64::from(terms.max_ticks.get()))
        .and_then(Amount::new)
        .ok_or(StreamRejection::EscrowOverflow)?;
    if terms.expiry <= now {
        return Err(StreamRejection::ExpiryPassed {
            expiry: terms.expiry,
            now,
        });
    }
    if streams.get(terms.slot).is_some() {
        return Err(StreamRejection::SlotTaken(terms.slot));
    }
    let stream = Stream {
        id: StreamId {
            payer: terms.payer,
            slot: terms.slot,
            opened_at,
        },
        payee: terms.payee,
        price: terms.price,
        max_ticks: terms.max_ticks,
        expiry: terms.expiry,
        settled: TickCount::ZERO,
        head: terms.anchor,
    };
    Ok(Opened { stream, escrow })
}

fn find(
    streams: &PayerStreams,
    payer: AccountIndex,
    slot: StreamSlot,
) -> Result<&Stream, StreamRejection> {
    streams
        .get(slot)
        .ok_or(StreamRejection::UnknownStream { payer, slot })
}

/// Judges a settlement signed by `signer`, whose chain walk gave `claimed_head`
/// ([`Settle::claimed_head`] with the stream's `opened_at`).
///
/// Order: `UnknownStream`, `NotPayee`, `SettleWindowOver`, `StaleSettle`, `TickNotNewer`,
/// `TickBeyondMax`, `SettleTooLong`, `TickMismatch`.
pub fn settle(
    terms: &Settle,
    signer: AccountIndex,
    claimed_head: Option<Digest>,
    streams: &PayerStreams,
    now: Timestamp,
) -> Result<Settled, StreamRejection> {
    judge_settle(terms, signer, Opening::Walk(claimed_head), streams, now)
}

/// Judges a settlement by path (tag 18, SPEC 18.8) signed by `signer`, whose path gave
/// `claimed_root` ([`Settle::claimed_root`] with the stream's `opened_at`).
///
/// Order: that of [`settle`] without `SettleTooLong`.
pub fn settle_by_path(
    terms: &Settle,
    signer: AccountIndex,
    claimed_root: Option<Digest>,
    streams: &PayerStreams,
    now: Timestamp,
) -> Result<Settled, StreamRejection> {
    judge_settle(terms, signer, Opening::Path(claimed_root), streams, now)
}

/// Rules 1 to 8 of a settlement (18.4), rule 7 for a walk only.
pub fn judge_settle(
    terms: &Settle,
    signer: AccountIndex,
    opening: Opening,
    streams: &PayerStreams,
    now: Timestamp,
) -> Result<Settled, StreamRejection> {
    let stream = find(streams, terms.payer, terms.slot)?;
    if signer != stream.payee {
        return Err(StreamRejection::NotPayee);
    }
    let closes = window_end(stream);
    if now.get() > closes {
        return Err(StreamRejection::SettleWindowOver { closed_at: closes });
    }
    if terms.from != stream.settled {
        return Err(StreamRejection::StaleSettle {
            from: terms.from,
            settled: stream.settled,
        });
    }
    if terms.to <= terms.from {
        return Err(StreamRejection::TickNotNewer { from: terms.from });
    }
    if terms.to > stream.max_ticks {
        return Err(StreamRejection::TickBeyondMax {
            to: terms.to,
            max: stream.max_ticks,
        });
    }
    let ticks = terms.to.get() - terms.from.get();
    let (claimed, head) = match opening {
        Opening::Walk(claimed) => {
            if ticks > MAX_SETTLE_TICKS {
                return Err(StreamRejection::SettleTooLong);
            }
            (claimed, terms.value)
        }
        Opening::Path(claimed) => (claimed, stream.head),
    };
    if claimed != Some(stream.head) {
        return Err(StreamRejection::TickMismatch);
    }
    // price x ticks <= price x max_ticks <= 2^63 - 1 (checked at open).
    let payout = Amount::new(stream.price.get() * u64::from(ticks))
        .ok_or(StreamRejection::EscrowOverflow)?;
    let mut next = *stream;
    next.settled = terms.to;
    next.head = head;
    Ok(Settled {
        stream: next,
        payout,
    })
}

/// Judges a close signed by `terms.signer`.
///
/// Order: `UnknownStream`, `NotStreamParty`, `CloseTooEarly` (the payer, before the end of the
/// payee's window). The payee may close at any time.
pub fn close(
    terms: &Close,
    streams: &PayerStreams,
    now: Timestamp,
) -> Result<Closed, StreamRejection> {
    let stream = find(streams, terms.payer, terms.slot)?;
    let by = if terms.signer == stream.payee {
        Party::Payee
    } else if terms.signer == stream.id.payer {
        Party::Payer
    } else {
        return Err(StreamRejection::NotStreamParty);
    };
    if by == Party::Payer && now.get() <= window_end(stream) {
        return Err(StreamRejection::CloseTooEarly {
            allowed_from: window_end(stream) + 1,
        });
    }
    Ok(Closed {
        stream: *stream,
        refund: stream.escrow(),
        by,
    })
}
