//! The priority circuit against the native chain and the committed vectors
//! (docs/vectors/settlement-v1.json), and on witnesses a dishonest prover would build.

use std::sync::OnceLock;

use state::tx::L1Address;

use super::*;

const CAP: usize = 3;

fn circuit() -> &'static PriorityCircuit {
    static C: OnceLock<PriorityCircuit> = OnceLock::new();
    C.get_or_init(|| PriorityCircuit::build(CAP))
}

fn deposit(serial: u64, recipient: u32, amount: u64) -> Consumed {
    Consumed {
        entry: PriorityEntry::Deposit {
            serial,
            depositor: L1Address([0xd0; 20]),
            recipient,
            amount,
        },
        status: 0,
    }
}

fn refunded(serial: u64, recipient: u32, amount: u64) -> Consumed {
    Consumed {
        status: 1,
        ..deposit(serial, recipient, amount)
    }
}

fn forced(serial: u64) -> Consumed {
    let mut tx = vec![3u8];
    tx.extend((1..129).map(|i| (i * 7) as u8));
    Consumed {
        entry: PriorityEntry::ForcedWithdrawal {
            serial,
            requested_at: 1_700_000_012,
            withdraw_tx: tx,
        },
        status: 2,
    }
}

fn hex32(s: &str) -> Hash32 {
    hex::decode(s.trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap()
}

fn refused(name: &str, w: &PriorityWitness, s: &PriorityStatement) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| circuit().prove(w, s)));
    match r {
        Ok(Ok(_)) => panic!("{name}: a proof exists"),
        Ok(Err(e)) => println!("{name}: refused: {e:#}"),
        Err(_) => println!("{name}: refused in witness generation"),
    }
}

#[test]
fn the_queue_chain_of_the_committed_vectors() {
    // The three entries of docs/vectors/settlement-v1.json (two deposits, a forced
    // withdrawal), rebuilt from their fields; the circuit reaches the vectors' hashes.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/vectors/settlement-v1.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut entries = Vec::new();
    for v in doc["priority"].as_array().unwrap() {
        let addr = |s: &str| -> [u8; 20] {
            hex::decode(s.trim_start_matches("0x"))
                .unwrap()
                .try_into()
                .unwrap()
        };
        let e = match v["kind"].as_str().unwrap() {
            "deposit" => PriorityEntry::Deposit {
                serial: v["serial"].as_u64().unwrap(),
                depositor: L1Address(addr(v["depositor"].as_str().unwrap())),
                recipient: v["recipient"].as_u64().unwrap() as u32,
                amount: v["amount"].as_str().unwrap().parse().unwrap(),
            },
            _ => PriorityEntry::ForcedWithdrawal {
                serial: v["serial"].as_u64().unwrap(),
                requested_at: v["requestedAt"].as_u64().unwrap(),
                withdraw_tx: hex::decode(
                    v["withdrawTx"].as_str().unwrap().trim_start_matches("0x"),
                )
                .unwrap(),
            },
        };
        assert_eq!(
            hex::encode(e.encode()),
            v["entry"].as_str().unwrap().trim_start_matches("0x")
        );
        entries.push(Consumed {
            entry: e,
            status: 0,
        });
    }
    let last = doc["priority"].as_array().unwrap().last().unwrap();
    let (w, s) = priority_witness([0; 32], 0, &entries, CAP).unwrap();
    assert_eq!(s.hash_after, hex32(last["next"].as_str().unwrap()));
    let proof = circuit().prove(&w, &s).unwrap();
    circuit().verify(proof).unwrap();
}

#[test]
fn honest_chains_prove_from_any_queue_position() {
    let before = [0x5a; 32];
    for entries in [
        vec![],
        vec![deposit(7, 1, 5)],
        vec![forced(7)],
        vec![
            forced(7),
            deposit(8, 0xffff_ffff, (1 << 63) - 1),
            deposit(9, 3, 1),
        ],
    ] {
        let (w, s) = priority_witness(before, 7, &entries, CAP).unwrap();
        assert_eq!(s.next, 7 + entries.len() as u64);
        let proof = circuit().prove(&w, &s).unwrap();
        circuit().verify(proof).unwrap();
    }
}

#[test]
fn entries_that_are_not_the_queued_ones_have_no_proof() {
    let queued = vec![deposit(4, 1, 500), forced(5)];
    let (_, l1) = priority_witness([9; 32], 4, &queued, CAP).unwrap();

    // A deposit L1 never queued, another amount, another recipient, another depositor: the
    // chain they prove is not L1's.
    for (name, fake) in [
        (
            "deposit not on L1",
            vec![deposit(4, 1, 500), deposit(5, 2, 1)],
        ),
        ("changed amount", vec![deposit(4, 1, 501), forced(5)]),
        ("changed recipient", vec![deposit(4, 2, 500), forced(5)]),
        (
            "changed depositor",
            vec![
                Consumed {
                    entry: PriorityEntry::Deposit {
                        serial: 4,
                        depositor: L1Address([0xee; 20]),
                        recipient: 1,
                        amount: 500,
                    },
                    status: 0,
                },
                forced(5),
            ],
        ),
    ] {
        let (w, _) = priority_witness([9; 32], 4, &fake, CAP).unwrap();
        refused(name, &w, &l1);
    }

    let (honest, _) = priority_witness([9; 32], 4, &queued, CAP).unwrap();
    // A serial out of queue order (the entry's own serial bytes edited).
    let mut w = honest.clone();
    w.slots[0].words[0] = 4 << 24;
    w.slots[0].words[1] = 0;
    w.slots[0].words[2] = (5 << 24) | (w.slots[0].words[2] & 0x00ff_ffff);
    refused("serial out of order", &w, &l1);
    // A deposit's bytes hashed as a forced withdrawal (kind byte 4, flag forced).
    let mut w = honest.clone();
    w.slots[0].forced = true;
    refused("deposit as forced", &w, &l1);
    // A status other than the leaves applied: the same L1 chain, another entries commitment
    // (and a refund that never happened).
    let (w, s) = priority_witness([9; 32], 4, &[refunded(4, 1, 500), forced(5)], CAP).unwrap();
    assert_eq!(s.hash_after, l1.hash_after);
    assert_ne!(s.entries_out, l1.entries_out);
    assert_ne!(s.refunds_out, l1.refunds_out);
    refused("another status", &w, &l1);
    // An entry hidden behind an unused slot.
    let mut w = honest.clone();
    w.slots.swap(1, 2);
    refused("used after unused", &w, &l1);
}

#[test]
fn rows_per_slot() {
    let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
    let (_, [start, end]) = PriorityCircuit::define(&mut b, 4);
    println!(
        "priority circuit: {} rows per slot (deposit and forced digests both computed); 4 slots: {} rows",
        (end - start) / 4,
        b.num_gates()
    );
}

#[test]
fn chunk_proofs_merge_into_the_batch_statement() {
    use crate::circuits::chain::ChainMerge;
    // Five entries in chunks of three: two chunk proofs and one merge state what one chunk of
    // all five would.
    let before = [0x33; 32];
    let consumed = vec![
        deposit(9, 1, 10),
        refunded(10, 99, 5),
        forced(11),
        deposit(12, 2, 7),
        refunded(13, 98, 6),
    ];
    let chunks = priority_chunks(before, 9, &consumed, CAP, 1).unwrap();
    assert_eq!(chunks.len(), 2);
    let (_, whole) = priority_chunk(ChunkStart::batch(before, 9), &consumed, 5).unwrap();
    let proofs: Vec<_> = chunks
        .iter()
        .map(|(w, s)| circuit().prove(w, s).unwrap())
        .collect();
    let merge = ChainMerge::build(&circuit().data, priority_layout());
    let merged = merge.prove(&proofs[0], &proofs[1]).unwrap();
    assert_eq!(merged.public_inputs, whole.to_fields());
    merge.data.verify(merged).unwrap();

    // Not adjacent: the second chunk's entries proven as if they started the batch (their
    // commitments start at ZERO, not where the first chunk ended), and the chunks swapped.
    let (w, s) = priority_chunk(
        ChunkStart {
            entries: Digest::ZERO,
            refunds: Digest::ZERO,
            ..ChunkStart::after(&chunks[0].1)
        },
        &consumed[3..],
        CAP,
    )
    .unwrap();
    let restarted = circuit().prove(&w, &s).unwrap();
    for (name, l, r) in [
        ("restarted commitments", &proofs[0], &restarted),
        ("swapped", &proofs[1], &proofs[0]),
    ] {
        crate::circuits::chain::assert_not_mergeable(&merge, name, l, r);
    }
}
