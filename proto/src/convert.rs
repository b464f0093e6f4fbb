//! One conversion from the wire to the rules: a [`pb::SubmitRequest`] to a `state`
//! [`Transaction`], every field validated, with a stable reason code per refusal
//! (docs/API.md, "Undecodable requests"). The node answers with these codes; the SDK uses the
//! same function, so both agree on what a request means.

use std::borrow::Borrow;

use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::crypto::schnorr::{PublicKey, Signature};
use state::tx::{DecodeError, L1Address, Register, Transaction, Transfer, TxKind, Withdraw};

use crate::v1 as pb;

/// Why a request could not even be turned into a transaction. Each variant has a stable code.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("the request carries no transaction")]
    Empty,
    #[error("{}: {}", .0.code(), .0)]
    Decode(#[from] DecodeError),
    #[error("invalid public key: {0}")]
    PublicKey(String),
    #[error("invalid signature encoding: {0}")]
    Signature(String),
    #[error("{field} = {value} is above 2^63 - 1")]
    OutOfRange { field: &'static str, value: u64 },
    #[error("the L1 address must be 20 bytes, got {0}")]
    L1Address(usize),
    #[error("deposits come from L1 only")]
    DepositNotAllowed,
    #[error("forced withdrawals are requested on L1 (Rollup.requestForcedWithdrawal); over the API, send a plain withdraw")]
    ForcedWithdrawalNotAllowed,
    #[error("{0} transactions are defined (docs/SPEC.md sections 18 to 20) but not enabled in this version: the circuits do not prove them yet")]
    KindNotEnabled(TxKind),
    #[error("a policy with an allow-list: this node's circuits do not prove an agent's payments under one yet (SPEC 20.9); set a policy without a list (any payee), or use a devnet with --experimental-agents")]
    AllowListNotEnabled,
    #[error("the transaction needs {needs} proof chunks per tree and a batch of this node's circuits holds {max}: no batch could be proven with it (split it up, or pay fewer payees at once)")]
    ExceedsBatchCapacity { needs: u64, max: u64 },
}

impl RequestError {
    /// The stable reason code (docs/API.md).
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::Empty => "EMPTY_REQUEST",
            RequestError::Decode(DecodeError::PublicKey(_)) | RequestError::PublicKey(_) => {
                "INVALID_PUBLIC_KEY"
            }
            RequestError::Decode(DecodeError::Signature(_)) | RequestError::Signature(_) => {
                "INVALID_SIGNATURE_ENCODING"
            }
            RequestError::Decode(DecodeError::OutOfRange { .. })
            | RequestError::OutOfRange { .. } => "VALUE_OUT_OF_RANGE",
            // The split's own rule 2 (SPEC 19.4), enforced by the decoder.
            RequestError::Decode(DecodeError::TooManyPayees(_)) => "TOO_MANY_PAYEES",
            RequestError::Decode(_) => "MALFORMED",
            RequestError::L1Address(_) => "INVALID_L1_ADDRESS",
            RequestError::DepositNotAllowed => "DEPOSIT_NOT_ALLOWED",
            RequestError::ForcedWithdrawalNotAllowed => "FORCED_WITHDRAWAL_NOT_ALLOWED",
            RequestError::KindNotEnabled(_) => "KIND_NOT_ENABLED",
            RequestError::AllowListNotEnabled => "ALLOW_LIST_NOT_ENABLED",
            RequestError::ExceedsBatchCapacity { .. } => "EXCEEDS_BATCH_CAPACITY",
        }
    }
}

fn amount(field: &'static str, v: u64) -> Result<Amount, RequestError> {
    Amount::new(v).ok_or(RequestError::OutOfRange { field, value: v })
}
fn nonce(v: u64) -> Result<Nonce, RequestError> {
    Nonce::new(v).ok_or(RequestError::OutOfRange {
        field: "nonce",
        value: v,
    })
}
fn timestamp(v: u64) -> Result<Timestamp, RequestError> {
    Timestamp::new(v).ok_or(RequestError::OutOfRange {
        field: "valid_until",
        value: v,
    })
}
fn signature(b: &[u8]) -> Result<Signature, RequestError> {
    Signature::from_slice(b).map_err(|e| RequestError::Signature(e.to_string()))
}

/// Turns a request (owned or borrowed) into a transaction, validating every field with the same
/// checks as the canonical decoder (docs/SPEC.md section 9): valid public key, canonical
/// signature, integers at most 2^63 - 1, exact byte lengths. Structured and raw forms of one
/// transaction give the same transaction. Deposits and forced withdrawals are refused (they only
/// enter from L1, or the devnet faucet), and so are the kinds this version does not enable
/// ([`TxKind::is_enabled`]).
pub fn transaction_from_request(
    req: impl Borrow<pb::SubmitRequest>,
) -> Result<Transaction, RequestError> {
    let tx = any_transaction_from_request(req)?;
    if !tx.kind().is_enabled() {
        return Err(RequestError::KindNotEnabled(tx.kind()));
    }
    Ok(tx)
}

/// [`transaction_from_request`] without the check of enabled kinds: for a node that enables
/// more kinds (a devnet with experimental payment streams).
pub fn any_transaction_from_request(
    req: impl Borrow<pb::SubmitRequest>,
) -> Result<Transaction, RequestError> {
    use pb::submit_request::Tx;
    let tx = match req.borrow().tx.as_ref().ok_or(RequestError::Empty)? {
        Tx::Raw(bytes) => Transaction::decode(bytes)?,
        Tx::Transfer(t) => Transaction::Transfer(Transfer {
            from: AccountIndex(t.from),
            to: AccountIndex(t.to),
            amount: amount("amount", t.amount)?,
            fee: amount("fee", t.fee)?,
            nonce: nonce(t.nonce)?,
            valid_until: timestamp(t.valid_until)?,
            signature: signature(&t.signature)?,
        }),
        Tx::Register(r) => Transaction::Register(Register {
            pubkey: PublicKey::from_slice(&r.public_key)
                .map_err(|e| RequestError::PublicKey(e.to_string()))?,
            valid_until: timestamp(r.valid_until)?,
            signature: signature(&r.signature)?,
        }),
        Tx::Withdraw(w) => {
            let addr: [u8; 20] = w
                .to_l1
                .as_slice()
                .try_into()
                .map_err(|_| RequestError::L1Address(w.to_l1.len()))?;
            Transaction::Withdraw(Withdraw {
                from: AccountIndex(w.from),
                to_l1: L1Address(addr),
                amount: amount("amount", w.amount)?,
                fee: amount("fee", w.fee)?,
                nonce: nonce(w.nonce)?,
                valid_until: timestamp(w.valid_until)?,
                signature: signature(&w.signature)?,
            })
        }
    };
    match tx {
        Transaction::Deposit(_) => return Err(RequestError::DepositNotAllowed),
        Transaction::ForcedWithdraw(_) => return Err(RequestError::ForcedWithdrawalNotAllowed),
        _ => {}
    }
    Ok(tx)
}

/// A tick (SPEC 18.1) as the API carries it: `value` is `t_k`'s 32 bytes.
pub fn tick_message(t: &state::stream::Tick) -> pb::Tick {
    pb::Tick {
        payer: t.stream.payer.0,
        slot: u32::from(t.stream.slot.0),
        opened_at: t.stream.opened_at.get(),
        k: t.k.get(),
        value: t.value.to_bytes().to_vec(),
        tree: false,
        siblings: Vec::new(),
    }
}

/// A tree stream's tick (SPEC 18.8) as the API carries it: its secret and siblings.
pub fn tree_tick_message(t: &state::stream::TreeTick) -> pb::Tick {
    pb::Tick {
        payer: t.stream.payer.0,
        slot: u32::from(t.stream.slot.0),
        opened_at: t.stream.opened_at.get(),
        k: t.k.get(),
        value: t.secret.to_bytes().to_vec(),
        tree: true,
        siblings: t.siblings.iter().map(|d| d.to_bytes().to_vec()).collect(),
    }
}

/// A policy (SPEC 20.2) as the API carries it.
pub fn policy_message(p: &state::passport::Policy) -> pb::Policy {
    pb::Policy {
        cap: p.cap.get(),
        window: p.window,
        max_payment: p.max_payment.get(),
        max_fee: p.max_fee.get(),
        expiry: p.expiry.get(),
        allow: p.allow.payees().iter().map(|a| a.0).collect(),
        card_hash: p.card.hash.to_vec(),
        card_uri: p.card.uri().to_string(),
    }
}

/// Agent `agent`'s passport as the API carries it, with what it may still spend at `now`.
pub fn passport_message(
    agent: AccountIndex,
    p: &state::passport::Passport,
    now: Timestamp,
) -> pb::Passport {
    let (window_id, spent) = p.spent();
    pb::Passport {
        agent: agent.0,
        owner: p.owner().0,
        policy: Some(policy_message(p.policy())),
        policy_digest: p.policy_digest().to_bytes().to_vec(),
        revoked: p.is_revoked(),
        window_id,
        spent: spent.get(),
        remaining: p.remaining(now).get(),
    }
}

/// A policy from its API form, with the checks of the decoder (SPEC 20.5): every bound, an
/// allow-list sorted and at most 1,024 long, a card hash of 32 bytes and a URI of at most 255.
pub fn policy_from_message(p: &pb::Policy) -> Result<state::passport::Policy, String> {
    use state::passport::{AllowList, Card, Policy};
    let bound =
        |field: &str, v: u64| Amount::new(v).ok_or(format!("{field} = {v} is above 2^63 - 1"));
    let hash: [u8; 32] = if p.card_hash.is_empty() {
        [0; 32]
    } else {
        p.card_hash
            .as_slice()
            .try_into()
            .map_err(|_| format!("card_hash must be 32 bytes, got {}", p.card_hash.len()))?
    };
    Ok(Policy {
        cap: bound("cap", p.cap)?,
        window: p.window,
        max_payment: bound("max_payment", p.max_payment)?,
        max_fee: bound("max_fee", p.max_fee)?,
        expiry: Timestamp::new(p.expiry)
            .ok_or(format!("expiry = {} is above 2^63 - 1", p.expiry))?,
        allow: AllowList::new(p.allow.iter().copied().map(AccountIndex).collect())
            .map_err(|e| format!("{}: {e}", e.code()))?,
        card: Card::new(hash, p.card_uri.clone()).map_err(|e| format!("{}: {e}", e.code()))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::submit_request::Tx;
    use state::tx::Deposit;

    fn code(tx: Tx) -> &'static str {
        transaction_from_request(pb::SubmitRequest {
            tx: Some(tx),
            work_nonce: 0,
        })
        .unwrap_err()
        .code()
    }

    fn transfer() -> pb::Transfer {
        pb::Transfer {
            from: 1,
            to: 2,
            amount: 3,
            fee: 0,
            nonce: 0,
            valid_until: 1_900_000_000,
            signature: vec![0; 72],
        }
    }

    #[test]
    fn refusals_carry_their_reason_codes() {
        let empty = pb::SubmitRequest {
            tx: None,
            work_nonce: 0,
        };
        assert_eq!(transaction_from_request(&empty), Err(RequestError::Empty));
        assert_eq!(RequestError::Empty.code(), "EMPTY_REQUEST");
        assert_eq!(code(Tx::Raw(vec![2; 50])), "MALFORMED");
        assert_eq!(code(Tx::Raw(vec![99; 113])), "MALFORMED");
        let over = pb::Transfer {
            fee: u64::MAX,
            ..transfer()
        };
        assert_eq!(
            transaction_from_request(pb::SubmitRequest {
                tx: Some(Tx::Transfer(over)),
                work_nonce: 0,
            }),
            Err(RequestError::OutOfRange {
                field: "fee",
                value: u64::MAX
            })
        );
        let bad_sig = pb::Transfer {
            signature: vec![0xff; 72],
            ..transfer()
        };
        assert_eq!(code(Tx::Transfer(bad_sig)), "INVALID_SIGNATURE_ENCODING");
        let short_sig = pb::Transfer {
            signature: vec![0; 71],
            ..transfer()
        };
        assert_eq!(code(Tx::Transfer(short_sig)), "INVALID_SIGNATURE_ENCODING");
        let register = pb::Register {
            public_key: vec![0; 40],
            valid_until: 1_900_000_000,
            signature: vec![0; 72],
        };
        assert_eq!(code(Tx::Register(register)), "INVALID_PUBLIC_KEY");
        let withdraw = pb::Withdraw {
            from: 1,
            to_l1: vec![0xee; 21],
            amount: 1,
            fee: 0,
            nonce: 0,
            valid_until: 1_900_000_000,
            signature: vec![0; 72],
        };
        assert_eq!(code(Tx::Withdraw(withdraw)), "INVALID_L1_ADDRESS");
        let deposit: Transaction = Deposit {
            seq: 1,
            to: AccountIndex(2),
            amount: Amount::new(3).unwrap(),
        }
        .into();
        assert_eq!(code(Tx::Raw(deposit.encode())), "DEPOSIT_NOT_ALLOWED");
    }

    #[test]
    fn kinds_not_enabled_are_refused_at_the_door() {
        // Well-formed raw transactions of fixed length (an all-zero signature encodes
        // canonically): the node refuses the kind itself before any signature work.
        for kind in [
            state::tx::TxKind::StreamClose,
            state::tx::TxKind::Revoke,
            state::tx::TxKind::Sweep,
        ] {
            let mut raw = vec![kind.tag()];
            raw.resize(kind.encoded_len(), 0);
            let decoded = Transaction::decode(&raw).expect("a canonical transaction");
            assert_eq!(decoded.kind(), kind);
            assert_eq!(
                transaction_from_request(pb::SubmitRequest {
                    tx: Some(Tx::Raw(raw)),
                    work_nonce: 0,
                }),
                Err(RequestError::KindNotEnabled(kind))
            );
            assert_eq!(
                RequestError::KindNotEnabled(kind).code(),
                "KIND_NOT_ENABLED"
            );
        }
    }
}
