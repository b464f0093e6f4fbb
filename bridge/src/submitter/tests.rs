use alloy_primitives::U256;

use super::rlp::decode_field;
use super::*;
use crate::signer::{L1Signer, LegacyTx, ANVIL_DEV_KEY_0};

#[test]
fn replacement_reuses_the_recorded_input() {
    let s = L1Signer::from_hex(ANVIL_DEV_KEY_0).unwrap();
    for len in [0usize, 1, 55, 56, 300, 70_000] {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
        let tx = LegacyTx {
            chain_id: 31337,
            nonce: 7,
            gas_price: 1_000_000_000,
            gas: 100_000,
            to: Address::repeat_byte(9),
            value: U256::ZERO,
            data: data.clone().into(),
        };
        let (raw, _) = s.sign_legacy(&tx).unwrap();
        assert_eq!(decode_field(&raw, 5).unwrap(), data);
        assert_eq!(
            U256::from_be_slice(&decode_field(&raw, 2).unwrap()),
            U256::from(100_000)
        );
    }
}

/// The receipt-versus-nonce race: our transaction (nonce 7) is mined at some instant
/// relative to the two reads of one resolve step. Reading the nonce first, then the
/// receipts, never gives a mined transaction up, wherever the mining falls; the other order
/// does when it falls between the two reads (the bug this replaced).
#[test]
fn a_transaction_mined_between_the_reads_is_never_given_up() {
    const NONCE: u64 = 7;
    // Instants: 0 = first read, 1 = second read; `mined_at` in {before 0, between, after 1}.
    let nonce_at = |t: u32, mined_at: u32| if mined_at <= t { NONCE + 1 } else { NONCE };
    let receipt_at = |t: u32, mined_at: u32| mined_at <= t;
    for mined_at in 0..3u32 {
        // Fixed order: nonce at instant 0, receipts at instant 1.
        let action = decide_pending(
            nonce_at(0, mined_at),
            NONCE,
            &[receipt_at(1, mined_at)],
            true,
            false,
        );
        assert_ne!(
            action,
            PendingAction::NonceUsedElsewhere,
            "mined at {mined_at}"
        );
        if mined_at <= 1 {
            assert_eq!(action, PendingAction::Mined(0), "mined at {mined_at}");
        } else {
            // Not mined yet when both reads happened: keep waiting, the next step sees it.
            assert_eq!(action, PendingAction::Rebroadcast);
        }
    }
    // The old order (receipts at instant 0, nonce at instant 1), mined in between: the
    // transaction was mined, yet it looks replaced.
    assert_eq!(
        decide_pending(nonce_at(1, 1), NONCE, &[receipt_at(0, 1)], true, false),
        PendingAction::NonceUsedElsewhere
    );
}

#[test]
fn pending_decisions() {
    // A replacement (second attempt) was the one mined.
    assert_eq!(
        decide_pending(8, 7, &[false, true], true, true),
        PendingAction::Mined(1)
    );
    // The nonce passed and none of our attempts has a receipt: used elsewhere.
    assert_eq!(
        decide_pending(8, 7, &[false, false], true, false),
        PendingAction::NonceUsedElsewhere
    );
    // Recorded, never broadcast (or reorged out): the same bytes again.
    assert_eq!(
        decide_pending(7, 7, &[false], false, true),
        PendingAction::Broadcast
    );
    assert_eq!(
        decide_pending(7, 7, &[false], true, true),
        PendingAction::Replace
    );
    assert_eq!(
        decide_pending(7, 7, &[false], true, false),
        PendingAction::Rebroadcast
    );
    assert!(past_depth(12, 10, 2) && !past_depth(11, 10, 2) && !past_depth(9, 10, 0));
}
