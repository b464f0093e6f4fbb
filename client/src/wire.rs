//! Transactions on the wire: `state` transactions to rollup.proto `SubmitRequest`s and back.
//!
//! A request carries a transaction either structured (one protobuf field per transaction field,
//! friendly to grpcurl and to SDKs in other languages) or raw (the canonical encoding of
//! docs/SPEC.md section 9). Both describe the same transaction, so both give the same id.
//! Back from a request to a transaction is [`transaction_from_request`], the very conversion the
//! node applies (deposits and forced withdrawals are refused: they enter from L1 only).

use rollup_proto::v1 as proto;
use rollup_proto::v1::submit_request::Tx;
use state::tx::Transaction;

/// The transaction a request describes, and why a request does not describe one (with the
/// node's reason codes): the node's own conversion, shared through `rollup_proto::convert`.
pub use rollup_proto::convert::{transaction_from_request, RequestError};

/// The structured request for `tx`.
///
/// A deposit has no structured form (deposits come from the L1 priority queue, never from a
/// wallet), so it is sent raw and the node refuses it with its own reason code
/// (`DEPOSIT_NOT_ALLOWED`, `FORCED_WITHDRAWAL_NOT_ALLOWED`); so are the stream kinds, the split
/// and the passport kinds, which a node of this version refuses (`KIND_NOT_ENABLED`).
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
        // No structured form: deposits and forced withdrawals come from L1, and the stream
        // kinds, the split and the passport kinds travel raw until a node accepts them
        // (KIND_NOT_ENABLED).
        Transaction::Deposit(_)
        | Transaction::ForcedWithdraw(_)
        | Transaction::StreamOpen(_)
        | Transaction::StreamSettle(_)
        | Transaction::StreamClose(_)
        | Transaction::StreamSettlePath(_)
        | Transaction::Split(_)
        | Transaction::Passport(_)
        | Transaction::RegisterShares(_)
        | Transaction::Distribute(_) => Tx::Raw(tx.encode()),
    };
    proto::SubmitRequest {
        tx: Some(tx),
        work_nonce: 0,
    }
}

/// The raw request for `tx`: its canonical byte encoding.
pub fn raw_submit_request(tx: &Transaction) -> proto::SubmitRequest {
    proto::SubmitRequest {
        tx: Some(Tx::Raw(tx.encode())),
        work_nonce: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use state::account::{AccountIndex, Amount, Nonce, Timestamp};
    use state::crypto::schnorr::SecretKey;
    use state::tx::{
        DecodeError, Deposit, Domain, L1Address, UnsignedRegister, UnsignedTransfer,
        UnsignedWithdraw,
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
    fn deposits_go_raw_and_are_refused_like_the_node_does() {
        let dep: Transaction = Deposit {
            seq: 1,
            to: AccountIndex(2),
            amount: Amount::new(3).unwrap(),
        }
        .into();
        let req = submit_request(&dep);
        assert_eq!(req.tx, Some(Tx::Raw(dep.encode())));
        let refused = transaction_from_request(&req).unwrap_err();
        assert_eq!(refused, RequestError::DepositNotAllowed);
        assert_eq!(refused.code(), "DEPOSIT_NOT_ALLOWED");
    }

    #[test]
    fn bad_requests_are_refused_with_the_field_and_the_code() {
        let empty = transaction_from_request(&proto::SubmitRequest {
            tx: None,
            work_nonce: 0,
        });
        assert_eq!(empty, Err(RequestError::Empty));
        let [register, transfer, withdraw] = signed().map(|t| submit_request(&t));

        let mut req = transfer.clone();
        if let Some(Tx::Transfer(t)) = &mut req.tx {
            t.amount = u64::MAX;
        }
        let e = transaction_from_request(&req).unwrap_err();
        assert!(
            matches!(
                e,
                RequestError::OutOfRange {
                    field: "amount",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.code(), "VALUE_OUT_OF_RANGE");

        let mut req = transfer;
        if let Some(Tx::Transfer(t)) = &mut req.tx {
            t.signature.pop();
        }
        let e = transaction_from_request(&req).unwrap_err();
        assert!(matches!(e, RequestError::Signature(_)), "{e:?}");
        assert_eq!(e.code(), "INVALID_SIGNATURE_ENCODING");

        let mut req = register;
        if let Some(Tx::Register(r)) = &mut req.tx {
            r.public_key = vec![0; 40];
        }
        let e = transaction_from_request(&req).unwrap_err();
        assert!(matches!(e, RequestError::PublicKey(_)), "{e:?}");
        assert_eq!(e.code(), "INVALID_PUBLIC_KEY");

        let mut req = withdraw;
        if let Some(Tx::Withdraw(w)) = &mut req.tx {
            w.to_l1.push(0);
        }
        let e = transaction_from_request(&req).unwrap_err();
        assert_eq!(e, RequestError::L1Address(21));
        assert_eq!(e.code(), "INVALID_L1_ADDRESS");

        let truncated = proto::SubmitRequest {
            tx: Some(Tx::Raw(vec![2; 50])),
            work_nonce: 0,
        };
        let e = transaction_from_request(&truncated).unwrap_err();
        assert!(
            matches!(e, RequestError::Decode(DecodeError::WrongLength { .. })),
            "{e:?}"
        );
        assert_eq!(e.code(), "MALFORMED");
    }
}
