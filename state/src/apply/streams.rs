//! Applying the stream transactions (SPEC 18.4, 18.5): the envelope every account-signed
//! transaction shares, then the rules of [`crate::stream::rules`], then the writes.
//!
//! # Order of the checks
//!
//! 1. the signer exists and the signature verified under its key (`UNKNOWN_ACCOUNT`,
//!    `BAD_SIGNATURE`);
//! 2. not expired (`EXPIRED`);
//! 3. the signer's nonce (`BAD_NONCE`, `NONCE_EXHAUSTED`);
//! 4. the stream rules of the kind, in their order (their own reason codes);
//! 5. open only: the payee exists (`UNKNOWN_ACCOUNT`);
//! 6. a signer that is an agent: its passport (SPEC 20.4; an open spends its escrow, a
//!    settlement or a close only its fee);
//! 7. the balances: the signer pays the fee (and, for an open, the escrow) from its balance
//!    *before* any credit of the transaction (`INSUFFICIENT_BALANCE`); then the credits (a
//!    settlement's payout to the payee, a close's refund to the payer, the fee to the operator)
//!    keep every balance at most `2^63 - 1` (`BALANCE_OVERFLOW`).
//!
//! Every check runs before the first write, so a refused transaction changes nothing.
//!
//! # Invariants
//!
//! * [`State::escrowed`] is the sum of the escrows of all open streams, and
//!   `deposited = total_balance + escrowed + withdrawn` after every transaction.
//! * An account's `ext` is `ext_digest(streams_root, profile)` ([`crate::ext`]; `ZERO` when it
//!   has no stream and an empty profile), rewritten whenever the book changes.
//!
//! # Costs
//!
//! A settlement walks the revealed tick down to the settled head: one Poseidon permutation per
//! tick (at most 2^16, ~1.5 µs each, so up to ~100 ms). The SPEC allows running it beside the
//! signature check: [`VerifiedTx::with_walk`] does, for the stream opened at a given nonce, and
//! applying then compares one digest; without it (or for a stream opened at another nonce)
//! the walk runs here, on the caller's thread. Rewriting `ext` rehashes the payer's stream tree
//! (16 levels over its open streams). A settlement by path (tag 18, SPEC 18.8) hashes its
//! tick's leaf and 24 nodes here, whatever it settles.

use super::{BlockContext, Effects, Ledger, Rejection, Staged, State, VerifiedTx};
use crate::account::{AccountIndex, Amount, OPERATOR};
use crate::crypto::schnorr::{EncodedKey, MessageHash};
use crate::passport::{Payees, Spend};
use crate::pubdata::PubdataOp;
use crate::stream::rules::{self, Opening, Settle, StreamRejection};
use crate::stream::PayerStreams;
use crate::tx::{Signed, StreamClose, StreamOpen, StreamSettle, StreamSettlePath};

impl From<StreamRejection> for Rejection {
    fn from(r: StreamRejection) -> Self {
        Rejection::Stream(r)
    }
}

/// The empty book, for payers with no stream.
static NO_STREAMS: std::sync::LazyLock<PayerStreams> =
    std::sync::LazyLock::new(PayerStreams::default);

impl State {
    /// The open streams of `payer` (an empty book when it has none).
    pub fn streams_of(&self, payer: AccountIndex) -> &PayerStreams {
        self.streams.get(&payer.0).unwrap_or(&NO_STREAMS)
    }

    /// The sum of the escrows of all open streams.
    pub fn escrowed(&self) -> u128 {
        self.escrowed
    }

    /// Changes `payer`'s stream book in place (after every check passed) and drops it when it
    /// becomes empty; the caller then refreshes the payer's `ext` ([`State::refresh_ext`]).
    fn update_book(&mut self, payer: AccountIndex, change: impl FnOnce(&mut PayerStreams)) {
        let book = self.streams.entry(payer.0).or_default();
        change(book);
        if book.is_empty() {
            self.streams.remove(&payer.0);
        }
    }

    pub(super) fn apply_stream_open(
        &mut self,
        t: &StreamOpen,
        key: &EncodedKey,
        id: MessageHash,
        ctx: &BlockContext,
    ) -> Result<Effects, Rejection> {
        let payer = t.body.payer;
        let next_nonce = self.envelope(payer, key, t.nonce, t.valid_until, ctx)?;
        self.check_unlocked(payer)?;
        let book = self.streams_of(payer);
        let opened = rules::open(&t.body, t.nonce, book, ctx.batch_timestamp)?;
        if self.account(t.body.payee).is_none() {
            return Err(Rejection::UnknownAccount(t.body.payee));
        }
        let spend = Spend {
            value: opened.escrow,
            fee: t.fee,
            payees: Payees::One(t.body.payee),
        };
        let charge = self.police(payer, spend, ctx)?;
        let mut ledger = Ledger::default();
        ledger.debit(&self.accounts, payer, opened.escrow, t.fee)?;
        ledger.credit(&self.accounts, OPERATOR, t.fee)?;

        self.escrowed += u128::from(opened.escrow.get());
        let slot = opened.stream.id.slot;
        self.update_book(payer, |book| book.put(opened.stream));
        let staged = Staged {
            ledger,
            next_nonce,
            charge,
        };
        let mut effects = self.spend(
            payer,
            id,
            PubdataOp::StreamOpen {
                body: t.body,
                fee: t.fee,
            },
            staged,
        );
        self.refresh_ext(payer, Some(slot), &mut effects);
        Ok(effects)
    }

    pub(super) fn apply_stream_settle(
        &mut self,
        t: &StreamSettle,
        key: &EncodedKey,
        id: MessageHash,
        ctx: &BlockContext,
        verified: &VerifiedTx,
    ) -> Result<Effects, Rejection> {
        let terms = &t.body.terms;
        // The walk needs the stream's opened-at nonce; without a stream the rules refuse first.
        // A walk computed ahead for this stream is used as it is (module docs, "Costs").
        let claimed = self.streams_of(terms.payer).get(terms.slot).and_then(|s| {
            let at = s.id.opened_at;
            verified
                .walked_for(at)
                .unwrap_or_else(|| terms.claimed_head(at))
        });
        let op = PubdataOp::StreamSettle {
            body: t.body,
            fee: t.fee,
        };
        self.settle_stream(terms, Opening::Walk(claimed), op, t, key, id, ctx)
    }

    pub(super) fn apply_stream_settle_path(
        &mut self,
        t: &StreamSettlePath,
        key: &EncodedKey,
        id: MessageHash,
        ctx: &BlockContext,
    ) -> Result<Effects, Rejection> {
        let terms = &t.body.terms;
        let claimed = self
            .streams_of(terms.payer)
            .get(terms.slot)
            .and_then(|s| terms.claimed_root(s.id.opened_at, &t.body.path));
        let op = PubdataOp::StreamSettlePath {
            body: t.body.settle_body(),
            fee: t.fee,
        };
        self.settle_stream(terms, Opening::Path(claimed), op, t, key, id, ctx)
    }

    /// A settlement of either kind, signed by its payee, once its opening of the anchor is
    /// computed.
    #[allow(clippy::too_many_arguments)]
    fn settle_stream<B: crate::tx::stream::Body>(
        &mut self,
        terms: &Settle,
        opening: Opening,
        op: PubdataOp,
        t: &Signed<B>,
        key: &EncodedKey,
        id: MessageHash,
        ctx: &BlockContext,
    ) -> Result<Effects, Rejection> {
        let payee = t.signer();
        let next_nonce = self.envelope(payee, key, t.nonce, t.valid_until, ctx)?;
        let book = self.streams_of(terms.payer);
        let settled = rules::judge_settle(terms, payee, opening, book, ctx.batch_timestamp)?;
        let charge = self.police(payee, Spend::fee_only(t.fee), ctx)?;
        let mut ledger = Ledger::default();
        ledger.debit(&self.accounts, payee, Amount::ZERO, t.fee)?;
        ledger.credit(&self.accounts, payee, settled.payout)?;
        ledger.credit(&self.accounts, OPERATOR, t.fee)?;

        self.escrowed -= u128::from(settled.payout.get());
        let slot = settled.stream.id.slot;
        self.update_book(terms.payer, |book| book.put(settled.stream));
        let staged = Staged {
            ledger,
            next_nonce,
            charge,
        };
        let mut effects = self.spend(payee, id, op, staged);
        self.refresh_ext(terms.payer, Some(slot), &mut effects);
        Ok(effects)
    }

    pub(super) fn apply_stream_close(
        &mut self,
        t: &StreamClose,
        key: &EncodedKey,
        id: MessageHash,
        ctx: &BlockContext,
    ) -> Result<Effects, Rejection> {
        let signer = t.body.signer;
        let next_nonce = self.envelope(signer, key, t.nonce, t.valid_until, ctx)?;
        let book = self.streams_of(t.body.payer);
        let closed = rules::close(&t.body, book, ctx.batch_timestamp)?;
        let charge = self.police(signer, Spend::fee_only(t.fee), ctx)?;
        let mut ledger = Ledger::default();
        ledger.debit(&self.accounts, signer, Amount::ZERO, t.fee)?;
        ledger.credit(&self.accounts, t.body.payer, closed.refund)?;
        ledger.credit(&self.accounts, OPERATOR, t.fee)?;

        self.escrowed -= u128::from(closed.refund.get());
        let slot = t.body.slot;
        self.update_book(t.body.payer, |book| {
            book.remove(slot);
        });
        let staged = Staged {
            ledger,
            next_nonce,
            charge,
        };
        let mut effects = self.spend(
            signer,
            id,
            PubdataOp::StreamClose {
                body: t.body,
                fee: t.fee,
            },
            staged,
        );
        self.refresh_ext(t.body.payer, Some(slot), &mut effects);
        Ok(effects)
    }
}
