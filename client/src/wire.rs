//! Transactions on the wire: `state` transactions to rollup.proto `SubmitRequest`s and back.
//!
//! A request carries a transaction either structured (one protobuf field per transaction field,
//! friendly to grpcurl and to SDKs in other languages) or raw (the canonical encoding of
//! docs/SPEC.md section 9). Both describe the same transaction, so both give the same id.

use rollup_proto::v1 as proto;
use rollup_proto::v1::submit_request::Tx;
use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::crypto::schnorr::{PublicKey, Signature};
use state::tx::{DecodeError, L1Address, Register, Transaction, Transfer, Withdraw};

/// Why a [`proto::SubmitRequest`] does not describe a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the request carries no transaction")]
    Missing,
    #[error("invalid canonical encoding: {0}")]
    Decode(#[from] DecodeError),
    #[error("invalid field `{field}`: {reason}")]
    Field { field: &'static str, reason: String },
}

/// The structured request for `tx`.
///
/// A deposit has no structured form (deposits come from the L1 priority queue, never from a
/// wallet), so it is sent raw and the node refuses it with its own reason code.
pub fn submit_request(tx: &Transaction) -> proto::SubmitRequest {
    let tx = match tx {
        Transaction::Register(r) => Tx::Register(proto::Register {
            public_key: r.pubkey.to_bytes().to_vec(),
            valid_until: r.valid_until.get(),
            signature: r.signature.to_bytes().to_vec(),
        }),
        Transaction::Transfer(t) => Tx::Transfer(proto::Transfer {
            from: t.from.0,
            to: t.to.0,
            amount: t.amount.get(),
            fee: t.fee.get(),
            nonce: t.nonce.get(),
            valid_until: t.valid_until.get(),
            signature: t.signature.to_bytes().to_vec(),
        }),
        Transaction::Withdraw(w) => Tx::Withdraw(proto::Withdraw {
            from: w.from.0,
            to_l1: w.to_l1.0.to_vec(),
            amount: w.amount.get(),
            fee: w.fee.get(),
            nonce: w.nonce.get(),
            valid_until: w.valid_until.get(),
            signature: w.signature.to_bytes().to_vec(),
        }),
        Transaction::Deposit(_) | Transaction::ForcedWithdraw(_) => Tx::Raw(tx.encode()),
    };
    proto::SubmitRequest { tx: Some(tx) }
}

/// The raw request for `tx`: its canonical byte encoding.
pub fn raw_submit_request(tx: &Transaction) -> proto::SubmitRequest {
    proto::SubmitRequest {
        tx: Some(Tx::Raw(tx.encode())),
    }
}

/// The transaction a request describes, with the same checks as the canonical decoder: valid
/// public key, canonical signature, integers at most 2^63 - 1, exact byte lengths.
pub fn transaction_from_request(req: &proto::SubmitRequest) -> Result<Transaction, WireError> {
    match req.tx.as_ref().ok_or(WireError::Missing)? {
        Tx::Raw(bytes) => Ok(Transaction::decode(bytes)?),
        Tx::Register(r) => Ok(Transaction::Register(Register {
            pubkey: PublicKey::from_slice(&r.public_key).map_err(|e| field("public_key", e))?,
            valid_until: bounded::<Timestamp>("valid_until", r.valid_until)?,
            signature: signature(&r.signature)?,
        })),
        Tx::Transfer(t) => Ok(Transaction::Transfer(Transfer {
            from: AccountIndex(t.from),
            to: AccountIndex(t.to),
            amount: bounded::<Amount>("amount", t.amount)?,
            fee: bounded::<Amount>("fee", t.fee)?,
            nonce: bounded::<Nonce>("nonce", t.nonce)?,
            valid_until: bounded::<Timestamp>("valid_until", t.valid_until)?,
            signature: signature(&t.signature)?,
        })),
        Tx::Withdraw(w) => {
            Ok(Transaction::Withdraw(Withdraw {
                from: AccountIndex(w.from),
                to_l1: L1Address(w.to_l1.as_slice().try_into().map_err(|_| {
                    field("to_l1", format!("{} bytes, expected 20", w.to_l1.len()))
                })?),
                amount: bounded::<Amount>("amount", w.amount)?,
                fee: bounded::<Amount>("fee", w.fee)?,
                nonce: bounded::<Nonce>("nonce", w.nonce)?,
                valid_until: bounded::<Timestamp>("valid_until", w.valid_until)?,
                signature: signature(&w.signature)?,
            }))
        }
    }
}

fn field(field: &'static str, reason: impl ToString) -> WireError {
    WireError::Field {
        field,
        reason: reason.to_string(),
    }
}

fn bounded<T: TryFrom<u64, Error = state::account::OutOfRange>>(
    name: &'static str,
    value: u64,
) -> Result<T, WireError> {
    T::try_from(value).map_err(|e| field(name, e))
}

fn signature(bytes: &[u8]) -> Result<Signature, WireError> {
    Signature::from_slice(bytes).map_err(|e| field("signature", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use state::crypto::schnorr::SecretKey;
    use state::tx::{
        Deposit, Domain, TxKind, UnsignedRegister, UnsignedTransfer, UnsignedWithdraw,
    };

    const DOMAIN: Domain = Domain {
        chain_id: 31337,
        rollup: [0x42; 20],
    };

    fn key() -> SecretKey {
        SecretKey::random(&mut StdRng::seed_from_u64(5))
    }

    fn signed() -> [Transaction; 3] {
        let k = key();
        let amount = |v| Amount::new(v).unwrap();
        let nonce = Nonce::new(11).unwrap();
        let until = Timestamp::new(1_900_000_000).unwrap();
        [
            UnsignedRegister {
                pubkey: k.public_key(),
                valid_until: until,
            }
            .sign(&DOMAIN, &k)
            .into(),
            UnsignedTransfer {
                from: AccountIndex(3),
                to: AccountIndex(4),
                amount: amount(250),
                fee: amount(1),
                nonce,
                valid_until: until,
            }
            .sign(&DOMAIN, &k)
            .into(),
            UnsignedWithdraw {
                from: AccountIndex(3),
                to_l1: L1Address([0xee; 20]),
                amount: Amount::MAX,
                fee: amount(0),
                nonce,
                valid_until: until,
            }
            .sign(&DOMAIN, &k)
            .into(),
        ]
    }

    #[test]
    fn structured_and_raw_forms_give_back_the_same_transaction_and_id() {
        for tx in signed() {
            let structured = submit_request(&tx);
            assert!(!matches!(structured.tx, Some(Tx::Raw(_))), "{}", tx.kind());
            let raw = raw_submit_request(&tx);
            for req in [structured, raw] {
                let back = transaction_from_request(&req).unwrap();
                assert_eq!(back, tx);
                assert_eq!(back.id(&DOMAIN), tx.id(&DOMAIN));
            }
        }
    }

    #[test]
    fn deposits_go_raw() {
        let dep: Transaction = Deposit {
            seq: 1,
            to: AccountIndex(2),
            amount: Amount::new(3).unwrap(),
        }
        .into();
        let req = submit_request(&dep);
        assert_eq!(req.tx, Some(Tx::Raw(dep.encode())));
        assert_eq!(
            transaction_from_request(&req).unwrap().kind(),
            TxKind::Deposit
        );
    }

    #[test]
    fn bad_requests_are_refused_with_the_field() {
        assert_eq!(
            transaction_from_request(&proto::SubmitRequest { tx: None }),
            Err(WireError::Missing)
        );
        let [register, transfer, withdraw] = signed().map(|t| submit_request(&t));

        let mut req = transfer.clone();
        if let Some(Tx::Transfer(t)) = &mut req.tx {
            t.amount = u64::MAX;
        }
        assert!(matches!(
            transaction_from_request(&req),
            Err(WireError::Field {
                field: "amount",
                ..
            })
        ));

        let mut req = transfer;
        if let Some(Tx::Transfer(t)) = &mut req.tx {
            t.signature.pop();
        }
        assert!(matches!(
            transaction_from_request(&req),
            Err(WireError::Field {
                field: "signature",
                ..
            })
        ));

        let mut req = register;
        if let Some(Tx::Register(r)) = &mut req.tx {
            r.public_key = vec![0; 40];
        }
        assert!(matches!(
            transaction_from_request(&req),
            Err(WireError::Field {
                field: "public_key",
                ..
            })
        ));

        let mut req = withdraw;
        if let Some(Tx::Withdraw(w)) = &mut req.tx {
            w.to_l1.push(0);
        }
        assert!(matches!(
            transaction_from_request(&req),
            Err(WireError::Field { field: "to_l1", .. })
        ));

        let truncated = proto::SubmitRequest {
            tx: Some(Tx::Raw(vec![2; 50])),
        };
        assert!(matches!(
            transaction_from_request(&truncated),
            Err(WireError::Decode(DecodeError::WrongLength { .. }))
        ));
    }
}
