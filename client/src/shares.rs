//! Revenue-share accounts from the SDK (docs/SPEC.md 19.2, 19.6): an account registers once
//! how its income is shared (payees and basis points adding up to 10,000); from then on its
//! balance leaves only by a distribute, which anyone may send and which pays the whole balance
//! out by the shares, atomically. A node accepts these when its pinned circuits prove them (a
//! `final-<L>-v4-shares-splits`, built by a prover whose leaf has the revenue-share kinds), or
//! a devnet node started with `--experimental-streams`; others refuse them
//! (`KIND_NOT_ENABLED`).

use state::account::{AccountIndex, Amount};
use state::crypto::schnorr::SecretKey;
use state::tx::{DistributeBody, Unsigned, UnsignedRegisterShares};

use crate::client::Client;
use crate::error::Result;
use crate::receipt::Receipt;

impl Client {
    /// Registers `account`'s revenue shares (tag 11), signed with its `key`: `(payee, bps)`
    /// pairs, sent in increasing payee order; the basis points must add up to 10,000
    /// (`SHARES_NOT_WHOLE`), each be positive (`ZERO_PART`), name no payee twice
    /// (`PAYEES_NOT_SORTED`) nor the account itself (`SELF_PAYEE`). Final: shares never change
    /// (`SHARES_ALREADY_SET`), and the account can no longer send payments (`SHARES_LOCKED`).
    pub async fn register_shares(
        &self,
        key: &SecretKey,
        account: AccountIndex,
        shares: impl IntoIterator<Item = (AccountIndex, u16)>,
        fee: Amount,
    ) -> Result<Receipt> {
        let mut parts: Vec<(AccountIndex, u16)> = shares.into_iter().collect();
        parts.sort_by_key(|p| p.0);
        let tx = UnsignedRegisterShares {
            account,
            parts,
            fee,
            nonce: self.next_nonce(account).await?,
            valid_until: self.deadline(),
        }
        .sign(&self.domain(), key);
        self.submit(&tx.into()).await?.into_accepted()
    }

    /// Pays `account`'s whole balance out by its shares (tag 12), sent and paid for (`fee`)
    /// by `signer` with its `key`: anyone may trigger it. Refused with `NO_SHARES` for an
    /// account without shares and `NOTHING_TO_DISTRIBUTE` for an empty balance.
    pub async fn distribute(
        &self,
        key: &SecretKey,
        signer: AccountIndex,
        account: AccountIndex,
        fee: Amount,
    ) -> Result<Receipt> {
        let tx = Unsigned {
            body: DistributeBody { signer, account },
            fee,
            nonce: self.next_nonce(signer).await?,
            valid_until: self.deadline(),
        }
        .sign(&self.domain(), key);
        self.submit(&tx.into()).await?.into_accepted()
    }

    /// `account`'s registered shares (payee, basis points), empty if it has none.
    pub async fn shares(&self, account: AccountIndex) -> Result<Vec<(AccountIndex, u16)>> {
        Ok(self.account(account).await?.shares)
    }
}
