//! Atomic splits and revenue-share accounts (SPEC section 19), with no I/O.
//!
//! # Split payment
//!
//! One signed payment from one account to up to [`MAX_PAYEES`] = 1,024 payees, all or nothing.
//! The transaction carries explicit amounts; a wallet that thinks in basis points turns them
//! into amounts with [`Shares::split`] first, so the chain judges one form only. The payees
//! are listed in strictly increasing index order, which makes "no payee twice" a comparison
//! per payee (in the circuit as natively) instead of a search.
//!
//! # Revenue-share accounts
//!
//! An account may register [`Shares`] once: payees and basis points that add up to 10,000.
//! From then on its balance leaves only through a `distribute`, which anyone may trigger and
//! which pays the whole balance out by the shares, atomically; the shares cannot change, so a
//! payee can rely on them. The registered shares enter the account leaf's `ext` as its
//! `profile` ([`Shares::digest`]).
//!
//! # Rounding
//!
//! `split(total)` gives payee `i >= 1` the amount `floor(total x bps_i / 10000)` and payee 0
//! the rest, so the parts add up to `total` exactly (no dust is created or lost) and every
//! payee but the first gets its share rounded down by less than one unit.

use plonky2::field::types::Field;
use serde::{Deserialize, Serialize};

use crate::account::{AccountIndex, Amount};
use crate::hash::{hash_no_pad, Digest, F};

/// The most payees of one split or one revenue-share account.
pub const MAX_PAYEES: usize = 1024;

/// 100 % in basis points.
pub const BPS_WHOLE: u16 = 10_000;

/// Domain element of [`Shares::digest`]: the ASCII bytes `"shares"` as a big-endian u64.
pub const TAG_SHARES: u64 = 0x0000_7368_6172_6573;

/// One part of a split.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Payout {
    pub to: AccountIndex,
    pub amount: Amount,
}

/// Why a split or a share registration was refused. A refused one changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SplitRejection {
    #[error("a split needs at least one payee")]
    NoPayees,
    #[error("{0} payees: at most 1,024")]
    TooManyPayees(usize),
    #[error("payee {0} is out of order: payees are listed by strictly increasing index")]
    PayeesNotSorted(AccountIndex),
    #[error("account {0} cannot pay itself in a split")]
    SelfPayee(AccountIndex),
    #[error("payee {0} gets nothing: every amount and share must be positive")]
    ZeroPart(AccountIndex),
    #[error("the shares add up to {0} basis points, not 10,000")]
    SharesNotWhole(u32),
    #[error("the parts add up to more than 2^63 - 1")]
    SplitOverflow,
    #[error("the account has no balance to distribute")]
    NothingToDistribute,
    #[error("account {0} registered its shares already: they never change")]
    SharesAlreadySet(AccountIndex),
    #[error("account {0} has no registered shares")]
    NoShares(AccountIndex),
    #[error("account {0} has registered shares: its balance leaves only by distribute")]
    SharesLocked(AccountIndex),
}

impl SplitRejection {
    /// A stable SCREAMING_SNAKE_CASE reason code (part of the API: never change one).
    pub const fn code(&self) -> &'static str {
        match self {
            SplitRejection::NoPayees => "NO_PAYEES",
            SplitRejection::TooManyPayees(_) => "TOO_MANY_PAYEES",
            SplitRejection::PayeesNotSorted(_) => "PAYEES_NOT_SORTED",
            SplitRejection::SelfPayee(_) => "SELF_PAYEE",
            SplitRejection::ZeroPart(_) => "ZERO_PART",
            SplitRejection::SharesNotWhole(_) => "SHARES_NOT_WHOLE",
            SplitRejection::SplitOverflow => "SPLIT_OVERFLOW",
            SplitRejection::NothingToDistribute => "NOTHING_TO_DISTRIBUTE",
            SplitRejection::SharesAlreadySet(_) => "SHARES_ALREADY_SET",
            SplitRejection::NoShares(_) => "NO_SHARES",
            SplitRejection::SharesLocked(_) => "SHARES_LOCKED",
        }
    }
}

/// The digest of a split's parts, what its message hash carries in place of the list
/// (SPEC 19.4): `d_0 = ZERO`, `d_i = hash_no_pad(d_{i-1} (4) ‖ to_i ‖ amount_i)` (one
/// permutation per part), `d_n`. A chain rather than one hash of the whole list, so that a
/// circuit folds it per payee whatever `n` (a variable-length sponge would need a random
/// access at its end).
pub fn parts_digest(parts: &[Payout]) -> Digest {
    parts.iter().fold(Digest::ZERO, parts_digest_step)
}

/// One step of [`parts_digest`]: `d` after the part `p` (for who folds the parts one at a
/// time, as the split-credit circuit's witness does).
pub fn parts_digest_step(d: Digest, p: &Payout) -> Digest {
    list_digest_step(d, p.to, p.amount.get())
}

/// The step both chained list digests take (a split's parts here, a registration's shares in
/// [`shares_chain_step`]): `hash_no_pad(d (4) ‖ to ‖ value)`, `value` as a field element. Takes
/// any `u64` so that a witness builder folds a value the rules would refuse exactly as the
/// circuit does.
pub fn list_digest_step(d: Digest, to: AccountIndex, value: u64) -> Digest {
    let e = d.elements();
    hash_no_pad(&[
        e[0],
        e[1],
        e[2],
        e[3],
        to.to_field(),
        F::from_noncanonical_u64(value),
    ])
}

/// Checks the payee list shape shared by splits and shares: 1 ..= 1,024 payees, strictly
/// increasing, none of them `owner`.
fn check_payees(
    owner: AccountIndex,
    payees: impl ExactSizeIterator<Item = AccountIndex>,
) -> Result<(), SplitRejection> {
    let n = payees.len();
    if n == 0 {
        return Err(SplitRejection::NoPayees);
    }
    if n > MAX_PAYEES {
        return Err(SplitRejection::TooManyPayees(n));
    }
    let mut last: Option<AccountIndex> = None;
    for to in payees {
        if last.is_some_and(|l| to <= l) {
            return Err(SplitRejection::PayeesNotSorted(to));
        }
        if to == owner {
            return Err(SplitRejection::SelfPayee(to));
        }
        last = Some(to);
    }
    Ok(())
}

/// Judges a split's parts for sender `from` and returns their sum (what leaves `from`
/// besides the fee). The state then checks the payees exist, the balance covers the sum and
/// the fee, and no credit overflows.
///
/// Order: `NoPayees`, `TooManyPayees`, `PayeesNotSorted`, `SelfPayee` (one pass over the
/// payees), `ZeroPart`, `SplitOverflow`.
pub fn check_split(from: AccountIndex, parts: &[Payout]) -> Result<Amount, SplitRejection> {
    check_payees(from, parts.iter().map(|p| p.to))?;
    let mut sum: u64 = 0;
    for p in parts {
        if p.amount.is_zero() {
            return Err(SplitRejection::ZeroPart(p.to));
        }
        // Each part is below 2^63: the sum of two never overflows a u64 before the check.
        sum = Amount::new(sum + p.amount.get())
            .ok_or(SplitRejection::SplitOverflow)?
            .get();
    }
    Amount::new(sum).ok_or(SplitRejection::SplitOverflow)
}

/// Registered revenue shares: payees in increasing order with positive basis points adding
/// up to 10,000.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Shares {
    owner: AccountIndex,
    parts: Vec<(AccountIndex, u16)>,
}

impl Shares {
    /// Validates shares for the revenue account `owner`.
    ///
    /// Order: `NoPayees`, `TooManyPayees`, `PayeesNotSorted`, `SelfPayee`, `ZeroPart`,
    /// `SharesNotWhole`.
    pub fn new(
        owner: AccountIndex,
        parts: Vec<(AccountIndex, u16)>,
    ) -> Result<Shares, SplitRejection> {
        check_payees(owner, parts.iter().map(|p| p.0))?;
        if let Some(&(to, _)) = parts.iter().find(|p| p.1 == 0) {
            return Err(SplitRejection::ZeroPart(to));
        }
        let total: u32 = parts.iter().map(|p| u32::from(p.1)).sum();
        if total != u32::from(BPS_WHOLE) {
            return Err(SplitRejection::SharesNotWhole(total));
        }
        Ok(Shares { owner, parts })
    }

    pub fn owner(&self) -> AccountIndex {
        self.owner
    }

    pub fn parts(&self) -> &[(AccountIndex, u16)] {
        &self.parts
    }

    /// `total` cut by the shares (module docs, "Rounding"). The parts add up to `total`; a
    /// part may be zero when `total` is small.
    pub fn split(&self, total: Amount) -> Vec<Payout> {
        let t = u128::from(total.get());
        let mut rest = total.get();
        let mut out: Vec<Payout> = self
            .parts
            .iter()
            .map(|&(to, bps)| {
                // total x bps / 10000 <= total < 2^63: fits.
                let amount = (t * u128::from(bps) / u128::from(BPS_WHOLE)) as u64;
                Payout {
                    to,
                    amount: Amount::new(amount).unwrap_or(Amount::ZERO),
                }
            })
            .collect();
        for p in out.iter().skip(1) {
            rest -= p.amount.get();
        }
        if let Some(first) = out.first_mut() {
            first.amount = Amount::new(rest).unwrap_or(Amount::ZERO);
        }
        out
    }

    /// The payouts of a `distribute` of `balance` (`NothingToDistribute` when it is zero).
    pub fn distribute(&self, balance: Amount) -> Result<Vec<Payout>, SplitRejection> {
        if balance.is_zero() {
            return Err(SplitRejection::NothingToDistribute);
        }
        Ok(self.split(balance))
    }

    /// The shares digest committed in the owner's profile ([`shares_digest`]).
    pub fn digest(&self) -> Digest {
        shares_digest(&self.parts)
    }
}

/// The shares' chained digest, folded like a split's parts (SPEC 19.2): `s_0 = ZERO`,
/// `s_i = hash_no_pad(s_{i-1} (4) ‖ payee_i ‖ bps_i)`, `s_n`. The same step as
/// [`parts_digest_step`] with the basis points in the amount's place, so that the split-credit
/// chain folds a registration's or a distribution's shares with the step it folds a split's
/// parts with, one permutation per payee, whatever `n`.
pub fn shares_chain(parts: &[(AccountIndex, u16)]) -> Digest {
    parts
        .iter()
        .fold(Digest::ZERO, |d, &(to, bps)| shares_chain_step(d, to, bps))
}

/// One step of [`shares_chain`].
pub fn shares_chain_step(d: Digest, to: AccountIndex, bps: u16) -> Digest {
    list_digest_step(d, to, u64::from(bps))
}

/// `hash_no_pad([TAG_SHARES, n, s0..s3])` with `s` the [`shares_chain`] of the list (SPEC
/// 19.2; `n` fixes the length, the tag keeps the digest apart from every other 6-element
/// hash): what a share registration signs and the owner's profile commits, for any list (the
/// rules judge the list; the digest does not).
pub fn shares_digest(parts: &[(AccountIndex, u16)]) -> Digest {
    shares_digest_of(parts.len(), shares_chain(parts))
}

/// [`shares_digest`] from the count and the chained digest (what the split-credit chain's
/// record carries).
pub fn shares_digest_of(n: usize, chain: Digest) -> Digest {
    let s = chain.elements();
    hash_no_pad(&[
        F::from_canonical_u64(TAG_SHARES),
        F::from_canonical_usize(n),
        s[0],
        s[1],
        s[2],
        s[3],
    ])
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn a(v: u32) -> AccountIndex {
        AccountIndex(v)
    }
    fn amt(v: u64) -> Amount {
        Amount::new(v).unwrap()
    }
    fn pay(to: u32, amount: u64) -> Payout {
        Payout {
            to: a(to),
            amount: amt(amount),
        }
    }

    #[test]
    fn bad_splits_are_refused_with_their_reason() {
        let code = |parts: &[Payout]| check_split(a(1), parts).unwrap_err().code();
        assert_eq!(code(&[]), "NO_PAYEES");
        let many: Vec<Payout> = (2..2 + MAX_PAYEES as u32 + 1).map(|i| pay(i, 1)).collect();
        assert_eq!(code(&many), "TOO_MANY_PAYEES");
        assert_eq!(check_split(a(1), &many[..MAX_PAYEES]), Ok(amt(1024)));
        assert_eq!(code(&[pay(3, 1), pay(2, 1)]), "PAYEES_NOT_SORTED");
        assert_eq!(
            code(&[pay(3, 1), pay(3, 1)]),
            "PAYEES_NOT_SORTED",
            "a payee twice"
        );
        assert_eq!(code(&[pay(0, 1), pay(1, 1)]), "SELF_PAYEE");
        assert_eq!(code(&[pay(2, 1), pay(3, 0)]), "ZERO_PART");
        let half = Amount::MAX.get() / 2 + 1;
        assert_eq!(code(&[pay(2, half), pay(3, half)]), "SPLIT_OVERFLOW");
        assert_eq!(check_split(a(1), &[pay(0, 5), pay(7, 6)]), Ok(amt(11)));
    }

    #[test]
    fn bad_shares_are_refused_with_their_reason() {
        let code = |parts: Vec<(u32, u16)>| {
            Shares::new(a(9), parts.into_iter().map(|(t, b)| (a(t), b)).collect())
                .unwrap_err()
                .code()
        };
        assert_eq!(code(vec![]), "NO_PAYEES");
        assert_eq!(code(vec![(1, 5000), (9, 5000)]), "SELF_PAYEE");
        assert_eq!(code(vec![(2, 5000), (1, 5000)]), "PAYEES_NOT_SORTED");
        assert_eq!(code(vec![(1, 10_000), (2, 0)]), "ZERO_PART");
        assert_eq!(code(vec![(1, 5000), (2, 4999)]), "SHARES_NOT_WHOLE");
        assert_eq!(code(vec![(1, 5000), (2, 5001)]), "SHARES_NOT_WHOLE");
        let ok = Shares::new(a(9), vec![(a(1), 3333), (a(2), 3333), (a(3), 3334)]).unwrap();
        assert_eq!(
            ok.distribute(Amount::ZERO).unwrap_err().code(),
            "NOTHING_TO_DISTRIBUTE"
        );
        let parts = ok.distribute(amt(100)).unwrap();
        assert_eq!(
            parts.iter().map(|p| p.amount.get()).collect::<Vec<_>>(),
            vec![34, 33, 33],
            "the first payee takes the rounding rest"
        );
    }

    #[test]
    fn the_shares_digest_binds_order_payees_and_points() {
        let s = |parts: Vec<(u32, u16)>| {
            Shares::new(a(0), parts.into_iter().map(|(t, b)| (a(t), b)).collect()).unwrap()
        };
        let base = s(vec![(1, 4000), (2, 6000)]).digest();
        assert_ne!(base, s(vec![(1, 6000), (2, 4000)]).digest());
        assert_ne!(base, s(vec![(1, 4000), (3, 6000)]).digest());
        assert_ne!(base, s(vec![(1, 10_000)]).digest());
        assert_eq!(base, s(vec![(1, 4000), (2, 6000)]).digest());
    }

    #[test]
    fn the_shares_chain_is_the_parts_digest_of_the_points() {
        // The split-credit chain folds both with one step (SPEC 19.2, 19.5).
        let parts = vec![(a(3), 2500u16), (a(8), 7500)];
        let as_payouts: Vec<Payout> = parts.iter().map(|&(to, b)| pay(to.0, b.into())).collect();
        assert_eq!(shares_chain(&parts), parts_digest(&as_payouts));
        assert_eq!(
            shares_digest(&parts),
            shares_digest_of(2, parts_digest(&as_payouts))
        );
        assert_ne!(
            shares_digest(&parts),
            shares_digest_of(1, shares_chain(&parts))
        );
    }

    fn shares_strategy() -> impl Strategy<Value = Shares> {
        (1usize..40).prop_flat_map(|n| {
            (
                prop::collection::btree_set(1u32..100_000, n),
                prop::collection::vec(1u32..1000, n),
            )
                .prop_map(|(payees, weights)| {
                    // Scale the weights to 10,000 points, each at least 1.
                    let n = payees.len();
                    let w: u32 = weights.iter().take(n).sum();
                    let mut bps: Vec<u16> = weights
                        .iter()
                        .take(n)
                        .map(|&x| ((x * (u32::from(BPS_WHOLE) - n as u32)) / w) as u16 + 1)
                        .collect();
                    let sum: u32 = bps.iter().map(|&b| u32::from(b)).sum();
                    bps[0] += (u32::from(BPS_WHOLE) - sum) as u16;
                    Shares::new(
                        a(0),
                        payees
                            .into_iter()
                            .zip(bps)
                            .map(|(t, b)| (a(t), b))
                            .collect(),
                    )
                    .unwrap()
                })
        })
    }

    proptest! {
        /// A split pays out exactly the total, each payee within one unit of its exact share
        /// (the first takes the rest, at most n - 1 units more).
        #[test]
        fn a_split_pays_exactly_the_total_by_the_shares(shares in shares_strategy(), total in 1u64..=Amount::MAX.get()) {
            let parts = shares.split(amt(total));
            prop_assert_eq!(parts.len(), shares.parts().len());
            let sum: u128 = parts.iter().map(|p| u128::from(p.amount.get())).sum();
            prop_assert_eq!(sum, u128::from(total));
            let n = parts.len() as u128;
            for (i, (p, &(to, bps))) in parts.iter().zip(shares.parts()).enumerate() {
                prop_assert_eq!(p.to, to);
                let exact = u128::from(total) * u128::from(bps);
                let got = u128::from(p.amount.get()) * u128::from(BPS_WHOLE);
                if i == 0 {
                    prop_assert!(got >= exact && got < exact + n * u128::from(BPS_WHOLE));
                } else {
                    prop_assert!(got <= exact && got + u128::from(BPS_WHOLE) > exact);
                }
            }
        }
    }
}
