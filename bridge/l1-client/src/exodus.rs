//! Leaving without the operator (SPEC 15.9): the contract's exodus state, the finalized state
//! rebuilt from L1 data alone, and the calls that authorise exits, perform them and refund the
//! deposits no finalized batch consumed.
//!
//! Everything here reads L1 only (logs, calldata, views): it works with the node, its database
//! and the operator gone, which is the point. The calls are returned, not sent, so that a tool
//! can show what it would do and a test can tamper with them.

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolEvent;
use state::account::AccountIndex;
use state::crypto::ecgfp5::GFp5;
use state::crypto::schnorr::{PublicKey, SecretKey};
use state::diff::AccountTree;
use state::exodus::exit_authorisation_message;
use state::tx::{Domain, L1Address};
use state::Digest;

use crate::contracts::{ExodusVerifier, Rollup, Schnorr};
use crate::rebuild::{rebuild, RebuildConfig, RebuildError};
use crate::rpc::{Rpc, RpcError};

#[derive(Debug, thiserror::Error)]
pub enum ExodusError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Rebuild(#[from] RebuildError),
    #[error("a Deposit log does not decode: {0}")]
    BadLog(#[source] alloy_sol_types::Error),
    #[error("the rebuilt state of batch {batch} has root {rebuilt}, but the contract finalized {finalized}")]
    FinalizedRootMismatch {
        batch: u64,
        rebuilt: B256,
        finalized: B256,
    },
    #[error("the key cannot sign an exit authorisation that verifies: {0}")]
    Signature(#[from] state::crypto::schnorr::SignatureError),
}

/// The contract's exodus-related state, read in one go.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExodusStatus {
    pub exodus: bool,
    /// Whether anyone may activate exodus now (`exodusDue()`).
    pub due: bool,
    pub last_finalized_batch: u64,
    pub finalized_root: B256,
    /// The first deposit serial a finalized batch did not consume: refundable from here on.
    pub next_priority_op_finalized: u64,
    pub priority_queue_length: u64,
    pub chain_id: u64,
    pub rollup: Address,
}

impl ExodusStatus {
    /// The deployment's domain (SPEC 8.1): what an exit authorisation is signed for.
    pub fn domain(&self) -> Domain {
        Domain {
            chain_id: self.chain_id,
            rollup: self.rollup.0 .0,
        }
    }
}

/// Reads the contract's exodus state.
pub async fn status(rpc: &Rpc, rollup: Address) -> Result<ExodusStatus, ExodusError> {
    Ok(ExodusStatus {
        exodus: rpc.view(rollup, &Rollup::exodusCall {}).await?,
        due: rpc.view(rollup, &Rollup::exodusDueCall {}).await?,
        last_finalized_batch: rpc.view(rollup, &Rollup::lastFinalizedBatchCall {}).await?,
        finalized_root: rpc.view(rollup, &Rollup::finalizedRootCall {}).await?,
        next_priority_op_finalized: rpc
            .view(rollup, &Rollup::nextPriorityOpFinalizedCall {})
            .await?,
        priority_queue_length: rpc
            .view(rollup, &Rollup::priorityQueueLengthCall {})
            .await?,
        chain_id: rpc.chain_id().await?,
        rollup,
    })
}

/// The last finalized state, rebuilt from L1 data alone (the batches' calldata up to the last
/// finalized batch), checked against the contract's `finalizedRoot`.
pub async fn finalized_state(
    rpc: &Rpc,
    rollup: Address,
    from_block: u64,
    max_range: u64,
    operator: PublicKey,
    st: &ExodusStatus,
) -> Result<AccountTree, ExodusError> {
    let cfg = RebuildConfig {
        rollup,
        from_block,
        max_range,
        until: Some(st.last_finalized_batch),
    };
    let rebuilt = rebuild(rpc, &cfg, operator, |_| {}).await?;
    let root = B256::from(rebuilt.tree.root().to_bytes());
    if root != st.finalized_root {
        return Err(ExodusError::FinalizedRootMismatch {
            batch: st.last_finalized_batch,
            rebuilt: root,
            finalized: st.finalized_root,
        });
    }
    Ok(rebuilt.tree)
}

fn limbs5(v: GFp5) -> [U256; 5] {
    v.to_u64s().map(U256::from)
}

fn digest_limbs(d: Digest) -> [U256; 4] {
    d.to_u64s().map(U256::from)
}

/// `keyId(w)` as the contract computes it: keccak of the five encoding limbs, ABI-encoded.
pub fn key_id(key: &PublicKey) -> B256 {
    let w = limbs5(key.encoding());
    alloy_primitives::keccak256(<[U256; 5] as alloy_sol_types::SolValue>::abi_encode(&w))
}

/// `authoriseExit(w, to, sig)`: the key's signature naming `to`, with the verifier's hints.
pub fn authorise_call(
    domain: &Domain,
    key: &SecretKey,
    to: Address,
) -> Result<Rollup::authoriseExitCall, ExodusError> {
    let m = exit_authorisation_message(domain, &L1Address(to.0 .0));
    let (w, sig) = l1_signature(key, &m)?;
    Ok(Rollup::authoriseExitCall { w, to, sig })
}

/// The key's encoding limbs and its signature of `m` as `Schnorr.sol` takes it (the challenge,
/// `s` as two words, and the verifier's hints).
pub(crate) fn l1_signature(
    key: &SecretKey,
    m: &state::crypto::schnorr::MessageHash,
) -> Result<([U256; 5], Schnorr::Signature), state::crypto::schnorr::SignatureError> {
    let public = key.public_key();
    let sig = key.sign(m);
    let hints = public.l1_verify_hints(m, &sig)?;
    let s = sig.to_bytes();
    let mut lo = [0u8; 32];
    lo.copy_from_slice(&s[32..64]);
    let mut hi = [0u8; 8];
    hi.copy_from_slice(&s[64..72]);
    let signature = Schnorr::Signature {
        e: digest_limbs(sig.challenge()),
        sLo: U256::from_le_bytes(lo),
        sHi: U256::from(u64::from_le_bytes(hi)),
        qx: limbs5(hints.qx),
        qy: limbs5(hints.qy),
        wR: limbs5(hints.w_r),
    };
    Ok((limbs5(public.encoding()), signature))
}

/// The accounts of `key` in `tree`, by index (a key may own several).
pub fn accounts_of(tree: &AccountTree, key: &PublicKey) -> Vec<AccountIndex> {
    let w = key.encoding();
    tree.accounts()
        .iter()
        .enumerate()
        .filter(|(_, a)| a.pubkey.encoding() == w)
        .map(|(i, _)| AccountIndex(i as u32))
        .collect()
}

/// `exit(...)` for account `index` of `tree` (the finalized state): its fields and Merkle proof.
/// `None` if the index holds no account.
pub fn exit_call(tree: &AccountTree, index: AccountIndex) -> Option<ExitCall> {
    let a = tree.accounts().get(index.0 as usize)?;
    let proof = tree.proof(index.0);
    if a.ext == Digest::ZERO {
        return Some(ExitCall::Plain(Box::new(Rollup::exitCall {
            index: index.0,
            w: limbs5(a.pubkey.encoding()),
            balance: a.balance.get(),
            nonce: a.nonce.get(),
            ext: B256::ZERO,
            siblings: proof.siblings.map(|d| B256::from(d.to_bytes())),
        })));
    }
    Some(ExitCall::Opened(Box::new(Rollup::exitOpenedCall {
        index: index.0,
        account: account_proof(tree, index)?,
        streamsRoot: B256::from(tree.streams_root(index.0).to_bytes()),
        profile: profile_opening(tree, index.0),
        owner: owner_leaf(tree, index.0),
    })))
}

/// How an account leaves (SPEC 15.9, 20.9): `exit` for a leaf whose `ext` is zero, else
/// `exitOpened` with the opening of its `ext` (and, for an agent, its owner's leaf: the balance
/// goes to the address the owner's key authorised).
#[derive(Clone, Debug)]
pub enum ExitCall {
    Plain(Box<Rollup::exitCall>),
    Opened(Box<Rollup::exitOpenedCall>),
}

impl ExitCall {
    pub fn balance(&self) -> u64 {
        match self {
            ExitCall::Plain(c) => c.balance,
            ExitCall::Opened(c) => c.account.balance,
        }
    }

    /// The contract function's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            ExitCall::Plain(_) => "exit",
            ExitCall::Opened(_) => "exitOpened",
        }
    }

    pub fn abi_encode(&self) -> Vec<u8> {
        use alloy_sol_types::SolCall;
        match self {
            ExitCall::Plain(c) => c.abi_encode(),
            ExitCall::Opened(c) => c.abi_encode(),
        }
    }
}

/// Account `index`'s leaf fields but `ext`, and its Merkle siblings.
fn account_proof(tree: &AccountTree, index: AccountIndex) -> Option<ExodusVerifier::AccountProof> {
    let a = tree.accounts().get(index.0 as usize)?;
    Some(ExodusVerifier::AccountProof {
        w: limbs5(a.pubkey.encoding()),
        balance: a.balance.get(),
        nonce: a.nonce.get(),
        siblings: tree
            .proof(index.0)
            .siblings
            .map(|d| B256::from(d.to_bytes())),
    })
}

/// The opening of account `index`'s profile (SPEC 18.3): its shares and lanes digests, and
/// its passport's fields if it is an agent.
fn profile_opening(tree: &AccountTree, index: u32) -> ExodusVerifier::Profile {
    let parts = tree.profile_of(index);
    let p = tree.passport_of(index);
    ExodusVerifier::Profile {
        shares: B256::from(parts.shares.to_bytes()),
        lanes: B256::from(parts.lanes.to_bytes()),
        agent: p.is_some(),
        owner: p.map_or(0, |p| p.owner.0),
        policyDigest: B256::from(p.map_or(Digest::ZERO, |p| p.policy_digest).to_bytes()),
        revoked: p.is_some_and(|p| p.revoked),
        windowId: p.map_or(0, |p| p.window_id),
        spent: p.map_or(0, |p| p.spent.get()),
    }
}

/// The owner's whole leaf for an agent (the contract pays the owner's exit address); an empty
/// one, which the contract ignores, for any other account.
fn owner_leaf(tree: &AccountTree, index: u32) -> ExodusVerifier::Leaf {
    let none = || ExodusVerifier::Leaf {
        w: [U256::ZERO; 5],
        balance: 0,
        nonce: 0,
        ext: B256::ZERO,
        siblings: [B256::ZERO; 32],
    };
    let Some(owner) = tree.passport_of(index).map(|p| p.owner.0) else {
        return none();
    };
    let Some(a) = tree.accounts().get(owner as usize) else {
        return none();
    };
    ExodusVerifier::Leaf {
        w: limbs5(a.pubkey.encoding()),
        balance: a.balance.get(),
        nonce: a.nonce.get(),
        ext: B256::from(a.ext.to_bytes()),
        siblings: tree.proof(owner).siblings.map(|d| B256::from(d.to_bytes())),
    }
}

/// What `key` exits (SPEC 20.9): its accounts that are not agents, and every agent those
/// accounts own (whose balances go to the owner's exit address). The second list is the key's
/// own agent accounts, which only their owners' keys exit.
pub fn accounts_to_exit(
    tree: &AccountTree,
    key: &PublicKey,
) -> (Vec<AccountIndex>, Vec<AccountIndex>) {
    let (agents, mut own): (Vec<AccountIndex>, Vec<AccountIndex>) = accounts_of(tree, key)
        .into_iter()
        .partition(|&i| owner_of_agent(tree, i).is_some());
    let owned: Vec<AccountIndex> = own
        .iter()
        .flat_map(|o| tree.agents_owned_by(o.0).map(AccountIndex))
        .collect();
    own.extend(owned);
    (own, agents)
}

/// The owner of agent `index` in `tree`, if it is one.
pub fn owner_of_agent(tree: &AccountTree, index: AccountIndex) -> Option<AccountIndex> {
    tree.passport_of(index.0).map(|p| p.owner)
}

/// `exitStream(...)` for every open stream of payer `index` in `tree` (the finalized state,
/// rebuilt from diffs that carry the stream books, SPEC 10.4): the stream's leaf fields and its
/// path in the payer's stream tree, the payer's leaf proof and profile opening (and its owner's
/// leaf for an agent). Empty if it has none.
pub fn exit_stream_calls(tree: &AccountTree, index: AccountIndex) -> Vec<Rollup::exitStreamCall> {
    let (Some(account), Some(book)) = (account_proof(tree, index), tree.streams_of(index.0)) else {
        return Vec::new();
    };
    let profile = profile_opening(tree, index.0);
    let owner = owner_leaf(tree, index.0);
    book.iter()
        .map(|s| Rollup::exitStreamCall {
            payer: index.0,
            account: account.clone(),
            slot: s.id.slot.0,
            stream: ExodusVerifier::StreamLeaf {
                payee: s.payee.0,
                price: s.price.get(),
                maxTicks: s.max_ticks.get(),
                expiry: s.expiry.get(),
                openedAt: s.id.opened_at.get(),
                settled: s.settled.get(),
                head: B256::from(s.head.to_bytes()),
            },
            streamPath: book.path(s.id.slot).map(|d| B256::from(d.to_bytes())),
            profile: profile.clone(),
            owner: owner.clone(),
        })
        .collect()
}

/// Whether stream `slot` of `payer` has had its escrow paid back in exodus.
pub async fn stream_exited(
    rpc: &Rpc,
    rollup: Address,
    payer: AccountIndex,
    slot: u16,
) -> Result<bool, ExodusError> {
    let key = (U256::from(payer.0) << 16) | U256::from(slot);
    Ok(rpc.view(rollup, &Rollup::streamExitedCall(key)).await?)
}

/// Deposits queued on L1 that no finalized batch consumed (serial `>=
/// next_priority_op_finalized`), from the `Deposit` logs, optionally only `depositor`'s, as the
/// `refundDeposit` calls that return them. Already refunded ones are included: the contract
/// refuses them (`AlreadyRefunded`), and the caller can check `depositRefunded(serial)` first.
pub async fn refundable_deposits(
    rpc: &Rpc,
    st: &ExodusStatus,
    from_block: u64,
    max_range: u64,
    depositor: Option<Address>,
) -> Result<Vec<Rollup::refundDepositCall>, ExodusError> {
    let head = rpc.block_number().await?;
    let step = max_range.max(1);
    let mut out = Vec::new();
    let mut from = from_block;
    while from <= head {
        let to = head.min(from.saturating_add(step - 1));
        for log in rpc
            .logs(st.rollup, &[Rollup::Deposit::SIGNATURE_HASH], from, to)
            .await?
        {
            let d = Rollup::Deposit::decode_raw_log(log.topics.iter().copied(), &log.data)
                .map_err(ExodusError::BadLog)?;
            if d.serial < st.next_priority_op_finalized
                || depositor.is_some_and(|a| a != d.depositor)
            {
                continue;
            }
            out.push(Rollup::refundDepositCall {
                serial: d.serial,
                depositor: d.depositor,
                recipient: d.recipient,
                amount: d.amount,
            });
        }
        from = to + 1;
    }
    Ok(out)
}

/// Whether deposit `serial` was already refunded.
pub async fn refunded(rpc: &Rpc, rollup: Address, serial: u64) -> Result<bool, ExodusError> {
    Ok(rpc
        .view(rollup, &Rollup::depositRefundedCall(U256::from(serial)))
        .await?)
}

/// Whether account `index` already exited.
pub async fn exited(rpc: &Rpc, rollup: Address, index: AccountIndex) -> Result<bool, ExodusError> {
    Ok(rpc
        .view(rollup, &Rollup::exitedCall(U256::from(index.0)))
        .await?)
}

/// The L1 address key `key`'s exits go to (zero: not authorised yet).
pub async fn exit_address(
    rpc: &Rpc,
    rollup: Address,
    key: &PublicKey,
) -> Result<Address, ExodusError> {
    Ok(rpc
        .view(rollup, &Rollup::exitAddressCall(key_id(key)))
        .await?)
}

#[cfg(test)]
mod tests {
    use state::account::{Amount, Timestamp};
    use state::apply::{BlockContext, State};
    use state::diff::{BatchTouches, StateDiff};
    use state::stream::rules::Open;
    use state::stream::tree::{ext_digest, root_from_path};
    use state::stream::{StreamId, StreamSlot, TickChain, TickCount};
    use state::tx::{Deposit, Transaction, Unsigned, UnsignedRegister};

    use super::*;

    const DOMAIN: Domain = Domain {
        chain_id: 31337,
        rollup: [7; 20],
    };

    fn key(i: u8) -> SecretKey {
        let mut b = [0u8; 40];
        b[0] = i;
        SecretKey::from_bytes(&b).expect("a small scalar")
    }

    #[test]
    fn stream_exits_carry_what_the_contract_hashes_to_the_finalized_root() {
        let ctx = BlockContext::at(Timestamp::new(1_700_000_000).unwrap());
        let mut st = State::genesis(DOMAIN, key(1).public_key());
        for i in [2u8, 3] {
            let r: Transaction = UnsignedRegister {
                pubkey: key(i).public_key(),
                valid_until: Timestamp::MAX,
            }
            .sign(&DOMAIN, &key(i))
            .into();
            st.apply(&r, &ctx).unwrap();
        }
        let d = Transaction::Deposit(Deposit {
            seq: 0,
            to: AccountIndex(1),
            amount: Amount::new(1_000).unwrap(),
        });
        st.apply(&d, &ctx).unwrap();
        let mut replica = AccountTree::from_accounts(st.accounts());
        let (alice, slot) = (AccountIndex(1), StreamSlot(9));
        let opened_at = st.account(alice).unwrap().nonce;
        let chain = TickChain::new(
            StreamId {
                payer: alice,
                slot,
                opened_at,
            },
            TickCount::new(30).unwrap(),
            state::hash::hash_no_pad(&[]),
        );
        let open: Transaction = Unsigned {
            body: Open {
                payer: alice,
                payee: AccountIndex(2),
                slot,
                price: Amount::new(4).unwrap(),
                max_ticks: TickCount::new(30).unwrap(),
                expiry: Timestamp::new(1_700_003_600).unwrap(),
                anchor: chain.anchor(),
            },
            fee: Amount::ZERO,
            nonce: opened_at,
            valid_until: Timestamp::MAX,
        }
        .sign(&DOMAIN, &key(2))
        .into();
        let old_root = st.root();
        let mut touches = BatchTouches::new(st.num_accounts());
        touches.absorb(&st.apply(&open, &ctx).unwrap());
        let blob = touches.seal(&mut st, old_root).unwrap();
        replica.apply(&StateDiff::decode(&blob).unwrap()).unwrap();

        assert!(
            exit_stream_calls(&replica, AccountIndex(2)).is_empty(),
            "bob pays no stream"
        );
        let calls = exit_stream_calls(&replica, alice);
        assert_eq!(calls.len(), 1);
        let c = &calls[0];
        assert_eq!((c.payer, c.slot), (1, 9));
        assert_eq!(
            c.stream.price * u64::from(c.stream.maxTicks - c.stream.settled),
            120
        );
        // What `ExodusVerifier.streamAccountRoot` computes, natively from the call's fields.
        let stream = *st.streams_of(alice).get(slot).unwrap();
        assert_eq!(B256::from(stream.head.to_bytes()), c.stream.head);
        let path: [Digest; 16] = c
            .streamPath
            .map(|b| Digest::from_bytes(&b.0).expect("canonical"));
        let ext = ext_digest(
            root_from_path(slot, stream.leaf_hash(), &path),
            Digest::ZERO,
        );
        let a = *st.account(alice).unwrap();
        assert_eq!(ext, a.ext);
        let siblings = c
            .account
            .siblings
            .map(|b| Digest::from_bytes(&b.0).expect("canonical"));
        let proof = state::smt::MerkleProof { siblings };
        assert!(proof.verify(st.root(), 1, a.leaf_hash()));
        assert_eq!(c.account.balance, a.balance.get());

        // Alice delegates to an agent (SPEC 20.9): its exit opens its ext to the passport and
        // carries alice's leaf, whose key's exit address the contract pays.
        let delegate: Transaction = state::tx::UnsignedPassportTx {
            owner: alice,
            action: state::tx::PassportAction::Delegate {
                agent_key: key(4).public_key().into(),
                fund: Amount::new(70).unwrap(),
                policy: state::passport::Policy {
                    cap: Amount::new(500).unwrap(),
                    window: 60,
                    max_payment: Amount::new(50).unwrap(),
                    max_fee: Amount::ZERO,
                    expiry: Timestamp::new(1_800_000_000).unwrap(),
                    allow: state::passport::AllowList::new(vec![]).unwrap(),
                    card: state::passport::Card::new([0; 32], String::new()).unwrap(),
                },
            },
            fee: Amount::ZERO,
            nonce: st.account(alice).unwrap().nonce,
            valid_until: Timestamp::MAX,
        }
        .sign(&DOMAIN, &key(2))
        .into();
        let old_root = st.root();
        let mut touches = BatchTouches::new(st.num_accounts());
        let fx = st.apply(&delegate, &ctx).unwrap();
        let agent = fx.registered.unwrap();
        touches.absorb(&fx);
        let blob = touches.seal(&mut st, old_root).unwrap();
        replica.apply(&StateDiff::decode(&blob).unwrap()).unwrap();
        assert!(matches!(
            exit_call(&replica, AccountIndex(2)),
            Some(ExitCall::Plain(_))
        ));
        assert!(
            matches!(exit_call(&replica, alice), Some(ExitCall::Opened(_))),
            "alice pays a stream"
        );
        let Some(ExitCall::Opened(c)) = exit_call(&replica, agent) else {
            panic!("an agent's ext is not zero");
        };
        assert_eq!(owner_of_agent(&replica, agent), Some(alice));
        let p = &c.profile;
        assert!(p.agent && p.owner == 1 && !p.revoked);
        // What `ExodusVerifier.extOf` computes, natively from the call's fields.
        let digest = |b: &B256| Digest::from_bytes(&b.0).expect("canonical");
        let passport = state::passport::passport_digest(
            AccountIndex(p.owner),
            digest(&p.policyDigest),
            p.revoked,
            p.windowId,
            Amount::new(p.spent).unwrap(),
        );
        let profile = state::ext::Profile {
            shares: digest(&p.shares),
            passport,
            lanes: digest(&p.lanes),
        };
        let ext = ext_digest(digest(&c.streamsRoot), profile.digest());
        assert_eq!(ext, st.account(agent).unwrap().ext);
        // The owner's leaf is alice's, under the same root.
        let alice_now = *st.account(alice).unwrap();
        assert_eq!(c.owner.w, limbs5(alice_now.pubkey.encoding()));
        assert_eq!(digest(&c.owner.ext), alice_now.ext);
        let proof = state::smt::MerkleProof {
            siblings: c.owner.siblings.map(|b| digest(&b)),
        };
        assert!(proof.verify(st.root(), 1, alice_now.leaf_hash()));
        // Alice's key exits her account and her agent; the agent's key exits nothing.
        assert_eq!(
            accounts_to_exit(&replica, &key(2).public_key()),
            (vec![alice, agent], vec![])
        );
        assert_eq!(
            accounts_to_exit(&replica, &key(4).public_key()),
            (vec![], vec![agent])
        );
    }
}
