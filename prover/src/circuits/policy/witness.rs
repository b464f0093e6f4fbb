//! What the policy circuit and the payment slot's agent branch take: a passport opened for one
//! spend ([`PassportOpening`]) and the standalone circuit's statement and witness.

use anyhow::{ensure, Context};
use plonky2::field::types::Field;
use serde::{Deserialize, Serialize};
use state::account::{AccountIndex, Timestamp};
use state::apply::State;
use state::ext::{ext_digest, Profile};
use state::hash::{hash_no_pad, Digest};
use state::passport::{charge, Payees, Spend, TAG_POLICY};

use crate::F;

/// The spend as the circuit states it (public inputs after the two `ext`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendStatement {
    pub time: u64,
    pub value: u64,
    pub fee: u64,
    pub payee: u32,
    /// The spend pays `payee` (a transfer, an open).
    pub pays_account: bool,
    /// The spend pays several accounts (a split), none of which the gadget can find on a
    /// list: refused under one (SPEC 20.4).
    pub pays_many: bool,
    /// The spend leaves to L1 (a withdrawal).
    pub to_l1: bool,
}

/// What the circuit states: `ext_before (4), ext_after (4), time, value, fee, payee,
/// pays_account, pays_many, to_l1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatement {
    pub ext_before: Digest,
    pub ext_after: Digest,
    pub spend: SpendStatement,
}

/// The policy's fields as committed (SPEC 20.2), the list and card as their digests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyFields {
    pub cap: u64,
    pub window: u64,
    pub max_payment: u64,
    pub max_fee: u64,
    pub expiry: u64,
    pub allow: Digest,
    pub card: Digest,
}

/// An agent's passport opened for one spend at time `T`: its fields, `T`'s window
/// decomposition and, when the spend pays an account under a list, the payee's path. Raw
/// integers: a forged witness may hold anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassportOpening {
    pub owner: u32,
    pub policy: PolicyFields,
    pub revoked: u64,
    pub window_id: u64,
    pub spent: u64,
    /// `T = q x window + r` (`q = 0, r = T` for `window = 0`).
    pub q: u64,
    pub r: u64,
    /// The payee's position in the allow-list and its ten siblings (the list shape only).
    pub membership: Option<(usize, Vec<Digest>)>,
}

impl PolicyFields {
    /// `H(TAG_POLICY, cap, window, max_payment, max_fee, expiry, allow, card)` (SPEC 20.2), as
    /// the circuit hashes the fields.
    pub fn digest(&self) -> Digest {
        let f = F::from_noncanonical_u64;
        let mut e = vec![
            f(TAG_POLICY),
            f(self.cap),
            f(self.window),
            f(self.max_payment),
            f(self.max_fee),
            f(self.expiry),
        ];
        e.extend(self.allow.0);
        e.extend(self.card.0);
        hash_no_pad(&e)
    }
}

impl PassportOpening {
    /// `H(owner, policy, revoked, window_id, spent)` (SPEC 20.2), as the circuit hashes the
    /// fields (raw: a forged value is hashed as the field element it is).
    pub fn digest(&self) -> Digest {
        let f = F::from_noncanonical_u64;
        let mut e = vec![F::from_canonical_u32(self.owner)];
        e.extend(self.policy.digest().0);
        e.extend([f(self.revoked), f(self.window_id), f(self.spent)]);
        hash_no_pad(&e)
    }

    /// The fields the circuit writes after a spend moving `value` with `fee`: not revoked,
    /// window `q`, `spent' + value + fee` (`spent' = spent` in the stored window, else 0).
    pub fn charged(&self, value: u64, fee: u64) -> PassportOpening {
        let spent_now = if self.q == self.window_id {
            self.spent
        } else {
            0
        };
        PassportOpening {
            revoked: 0,
            window_id: self.q,
            spent: spent_now.wrapping_add(value).wrapping_add(fee),
            ..self.clone()
        }
    }

    /// `agent`'s passport as the rules read it at `now`, with the path of `payee` when the
    /// policy has a list and the spend pays that account. `None` for an account that is no
    /// agent. The rules need not accept the spend (a forced withdrawal's refusal is proven).
    pub fn of(
        state: &State,
        agent: AccountIndex,
        now: Timestamp,
        payee: Option<AccountIndex>,
    ) -> Option<PassportOpening> {
        let passport = state.passport(agent)?;
        let policy = passport.policy();
        let (window_id, spent) = passport.spent();
        let membership = payee
            .filter(|_| !policy.allow.is_anyone())
            .and_then(|p| policy.allow.path(p))
            .map(|(pos, path)| (pos, path.to_vec()));
        let t = now.get();
        let window = u64::from(policy.window);
        // A lifetime cap (window 0) has the one window 0.
        let (q, r) = t
            .checked_div(window)
            .map_or((0, t), |q| (q, t - q * window));
        Some(PassportOpening {
            owner: passport.owner().0,
            policy: PolicyFields {
                cap: policy.cap.get(),
                window,
                max_payment: policy.max_payment.get(),
                max_fee: policy.max_fee.get(),
                expiry: policy.expiry.get(),
                allow: policy.allow.root(),
                card: policy.card.digest(),
            },
            revoked: u64::from(passport.is_revoked()),
            window_id,
            spent: spent.get(),
            q,
            r,
            membership,
        })
    }
}

/// Everything the circuit takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyWitness {
    pub statement: PolicyStatement,
    /// The agent's other `ext` parts, kept as they are.
    pub streams_root: Digest,
    pub shares: Digest,
    pub lanes: Digest,
    pub passport: PassportOpening,
}

impl PolicyWitness {
    /// The witness of `agent`'s `spend` at block time `now`, which the rules must accept, with
    /// a membership path when the policy has a list and the spend pays an account.
    pub fn build(
        state: &State,
        agent: AccountIndex,
        spend: &Spend<'_>,
        now: Timestamp,
    ) -> anyhow::Result<PolicyWitness> {
        let passport = state
            .passport(agent)
            .with_context(|| format!("account {agent} is not an agent"))?;
        let charged = charge(passport, spend, now).map_err(|r| anyhow::anyhow!("{r}"))?;
        let (payee, pays_account, pays_many, to_l1) = match spend.payees {
            Payees::None => (0, false, false, false),
            Payees::One(to) => (to.0, true, false, false),
            Payees::Parts(_) => (0, false, true, false),
            Payees::L1 => (0, false, false, true),
        };
        let opening = PassportOpening::of(
            state,
            agent,
            now,
            pays_account.then_some(AccountIndex(payee)),
        )
        .context("no passport")?;
        if pays_account && !passport.policy().allow.is_anyone() {
            ensure!(opening.membership.is_some(), "the payee is not listed");
        }
        let streams_root = state.streams_of(agent).root();
        let lanes = state.lanes_of(agent).digest();
        let ext_before = state.account(agent).context("no account")?.ext;
        let mut after = passport.clone();
        after.record(charged);
        let profile = Profile {
            shares: Digest::ZERO,
            passport: after.digest(),
            lanes,
        };
        let ext_after = ext_digest(streams_root, profile.digest());
        Ok(PolicyWitness {
            statement: PolicyStatement {
                ext_before,
                ext_after,
                spend: SpendStatement {
                    time: now.get(),
                    value: spend.value.get(),
                    fee: spend.fee.get(),
                    payee,
                    pays_account,
                    pays_many,
                    to_l1,
                },
            },
            streams_root,
            shares: Digest::ZERO,
            lanes,
            passport: opening,
        })
    }
}
