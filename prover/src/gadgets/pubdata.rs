//! Pubdata in-circuit: the 7-byte chunks of an op exactly as `state::pubdata::PubdataOp::chunks`
//! and the two commitment chains (`PubdataCommitment::absorb`, `WithdrawalsCommitment::absorb`).
//!
//! An op's bytes are the little-endian encodings of its fields (tag, u32 indices, u64 amounts,
//! the public key's five u64 coefficients), except the L1 address of a withdrawal, which is 20
//! raw bytes; the circuit holds it as five big-endian u32 limbs (the message-hash form), so each
//! limb's bytes are reversed. A chunk is the little-endian integer of 7 consecutive bytes, i.e.
//! a 56-bit window of the op's little-endian *bit* stream. The byte decomposition is therefore
//! done on bits: every field's bits come from its range check (indices, `U63` amounts, the
//! canonical 64-bit split of key coefficients), the stream is assembled by rewiring them, and
//! each chunk is one `le_sum` (one `BaseSumGate` row whose 56 limbs are copies of stream bits,
//! which also makes every byte of the chunk a range-checked byte).

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::hashing::PlonkyPermutation;
use plonky2::hash::poseidon::{PoseidonHash, PoseidonPermutation};
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use state::pubdata::CHUNK_BYTES;
use state::tx::TxKind;

use crate::{D, F};

/// The 8 little-endian bits of a constant byte.
pub fn const_byte_bits(b: &mut CircuitBuilder<F, D>, v: u8) -> Vec<BoolTarget> {
    (0..8).map(|i| b.constant_bool((v >> i) & 1 == 1)).collect()
}

/// The bits of a big-endian u32 limb's 4 bytes in stream order, given the limb's 32
/// little-endian value bits.
pub fn be_u32_stream_bits(bits: &[BoolTarget]) -> Vec<BoolTarget> {
    assert_eq!(bits.len(), 32);
    (0..4)
        .rev()
        .flat_map(|byte| bits[8 * byte..8 * byte + 8].to_vec())
        .collect()
}

/// 7-byte little-endian chunks of a bit stream (a whole number of bytes), the last one
/// zero-padded; one row per chunk.
pub fn chunks_from_bits(b: &mut CircuitBuilder<F, D>, stream: &[BoolTarget]) -> Vec<Target> {
    assert_eq!(stream.len() % 8, 0);
    stream
        .chunks(8 * CHUNK_BYTES)
        .map(|w| b.le_sum(w.iter()))
        .collect()
}

/// Bits of a register op: `tag ‖ index(4) ‖ pubkey(40)`.
pub fn register_op_chunks(
    b: &mut CircuitBuilder<F, D>,
    index_bits: &[BoolTarget],
    pk_bits: &[Vec<BoolTarget>],
) -> Vec<Target> {
    assert_eq!(index_bits.len(), 32);
    assert_eq!(pk_bits.len(), 5);
    let mut s = const_byte_bits(b, TxKind::Register.tag());
    s.extend_from_slice(index_bits);
    for w in pk_bits {
        assert_eq!(w.len(), 64);
        s.extend_from_slice(w);
    }
    chunks_from_bits(b, &s)
}

/// Bits of a transfer op: `tag ‖ from(4) ‖ to(4) ‖ amount(8) ‖ fee(8)`.
pub fn transfer_op_chunks(
    b: &mut CircuitBuilder<F, D>,
    from_bits: &[BoolTarget],
    to_bits: &[BoolTarget],
    amount_bits: &[BoolTarget],
    fee_bits: &[BoolTarget],
) -> Vec<Target> {
    let mut s = const_byte_bits(b, TxKind::Transfer.tag());
    for (f, n) in [
        (from_bits, 32),
        (to_bits, 32),
        (amount_bits, 64),
        (fee_bits, 64),
    ] {
        assert_eq!(f.len(), n);
        s.extend_from_slice(f);
    }
    chunks_from_bits(b, &s)
}

/// What a list op (a split, or a share registration) adds to the pubdata chain besides `c`
/// and the length (SPEC 10.2): the chunks of its fixed bytes `tag ‖ from(4) ‖ n(2) ‖ fee(8)`,
/// then the list's chained digest (the parts digest, or the shares chain).
pub fn list_entry_chunks(
    b: &mut CircuitBuilder<F, D>,
    kind: TxKind,
    from_bits: &[BoolTarget],
    n_bits: &[BoolTarget],
    fee_bits: &[BoolTarget],
    digest: HashOutTarget,
) -> Vec<Target> {
    let mut s = const_byte_bits(b, kind.tag());
    for (f, n) in [(from_bits, 32), (n_bits, 16), (fee_bits, 64)] {
        assert_eq!(f.len(), n);
        s.extend_from_slice(f);
    }
    let mut chunks = chunks_from_bits(b, &s);
    chunks.extend(digest.elements);
    chunks
}

/// Bits of a withdraw op: `tag ‖ from(4) ‖ to_l1(20) ‖ amount(8) ‖ fee(8)`, the address given
/// as the little-endian value bits of its five big-endian u32 limbs.
pub fn withdraw_op_chunks(
    b: &mut CircuitBuilder<F, D>,
    from_bits: &[BoolTarget],
    addr_limb_bits: &[Vec<BoolTarget>],
    amount_bits: &[BoolTarget],
    fee_bits: &[BoolTarget],
) -> Vec<Target> {
    assert_eq!(addr_limb_bits.len(), 5);
    let mut s = const_byte_bits(b, TxKind::Withdraw.tag());
    assert_eq!(from_bits.len(), 32);
    s.extend_from_slice(from_bits);
    for limb in addr_limb_bits {
        s.extend(be_u32_stream_bits(limb));
    }
    assert_eq!((amount_bits.len(), fee_bits.len()), (64, 64));
    s.extend_from_slice(amount_bits);
    s.extend_from_slice(fee_bits);
    chunks_from_bits(b, &s)
}

/// Bits of a deposit op: `tag ‖ seq(8) ‖ to(4) ‖ amount(8) ‖ status(1)`.
pub fn deposit_op_chunks(
    b: &mut CircuitBuilder<F, D>,
    seq_bits: &[BoolTarget],
    to_bits: &[BoolTarget],
    amount_bits: &[BoolTarget],
    refunded: BoolTarget,
) -> Vec<Target> {
    let mut s = const_byte_bits(b, TxKind::Deposit.tag());
    for (f, n) in [(seq_bits, 64), (to_bits, 32), (amount_bits, 64)] {
        assert_eq!(f.len(), n);
        s.extend_from_slice(f);
    }
    s.push(refunded);
    let f = b._false();
    s.extend(std::iter::repeat_n(f, 7));
    chunks_from_bits(b, &s)
}

/// `hash_no_pad` of the input list whose flag is set (flags mutually exclusive; if none is set
/// the result is meaningless). Lists may have different lengths: the sponge runs as many
/// permutations as the longest needs (`ceil(len / 8)`), each block overwriting only as many
/// state positions as the chosen list has elements left, exactly as plonky2's overwrite-mode
/// sponge does, and the output is taken after the chosen list's own last block.
pub fn hash_no_pad_select(
    b: &mut CircuitBuilder<F, D>,
    options: &[(BoolTarget, Vec<Target>)],
) -> HashOutTarget {
    const RATE: usize = 8;
    assert!(
        options.iter().all(|(_, v)| !v.is_empty()),
        "non-empty lists"
    );
    let blocks = options
        .iter()
        .map(|(_, v)| v.len().div_ceil(RATE))
        .max()
        .unwrap_or(0);
    let zero = b.zero();
    let mut state = [zero; 12];
    let mut outputs = Vec::with_capacity(blocks);
    for k in 0..blocks {
        let mut input = state;
        for (j, slot) in input.iter_mut().enumerate().take(RATE) {
            let keep = state[j];
            let mut acc = zero;
            let mut kept = zero;
            for (flag, v) in options {
                match v.get(RATE * k + j) {
                    Some(&x) => acc = b.mul_add(flag.target, x, acc),
                    None => kept = b.add(kept, flag.target),
                }
            }
            // acc + kept * keep: the chosen list's element, or the state when it has none left.
            *slot = b.mul_add(kept, keep, acc);
        }
        let out = b.permute::<PoseidonHash>(PoseidonPermutation::new(input));
        state = out.as_ref().try_into().expect("12 elements");
        outputs.push(out.squeeze()[..4].to_vec());
    }
    // Select the output after the chosen list's last block.
    let mut result = [zero; 4];
    for (m, out) in outputs.iter().enumerate() {
        let mut flag = zero;
        for (f, v) in options {
            if v.len().div_ceil(RATE) == m + 1 {
                flag = b.add(flag, f.target);
            }
        }
        for (r, o) in result.iter_mut().zip(out) {
            *r = b.mul_add(flag, *o, *r);
        }
    }
    HashOutTarget::from_vec(result.to_vec())
}

/// Bits of a forced-withdrawal op: `tag ‖ seq(8) ‖ requested_at(8) ‖ from(4) ‖ to_l1(20) ‖
/// amount(8) ‖ fee(8) ‖ nonce(8) ‖ valid_until(8) ‖ e(32) ‖ s(40) ‖ status(1)`; the status is given
/// as its low 4 bits (it is at most 8).
pub struct ForcedOpBits<'a> {
    pub seq: &'a [BoolTarget],
    pub requested_at: &'a [BoolTarget],
    pub from: &'a [BoolTarget],
    pub addr_limbs: &'a [Vec<BoolTarget>],
    pub amount: &'a [BoolTarget],
    pub fee: &'a [BoolTarget],
    pub nonce: &'a [BoolTarget],
    pub valid_until: &'a [BoolTarget],
    pub e: &'a [BoolTarget],
    pub s: &'a [BoolTarget],
    pub status: [BoolTarget; 4],
}

pub fn forced_op_chunks(b: &mut CircuitBuilder<F, D>, f: &ForcedOpBits) -> Vec<Target> {
    let mut s = const_byte_bits(b, TxKind::ForcedWithdraw.tag());
    for (bits, n) in [(f.seq, 64), (f.requested_at, 64), (f.from, 32)] {
        assert_eq!(bits.len(), n);
        s.extend_from_slice(bits);
    }
    assert_eq!(f.addr_limbs.len(), 5);
    for limb in f.addr_limbs {
        s.extend(be_u32_stream_bits(limb));
    }
    for (bits, n) in [
        (f.amount, 64),
        (f.fee, 64),
        (f.nonce, 64),
        (f.valid_until, 64),
        (f.e, 256),
        (f.s, 320),
    ] {
        assert_eq!(bits.len(), n);
        s.extend_from_slice(bits);
    }
    s.extend_from_slice(&f.status);
    let z = b._false();
    s.extend(std::iter::repeat_n(z, 4));
    chunks_from_bits(b, &s)
}

/// One candidate op of a slot: its kind flag, byte length and chunks.
pub struct OpChunks {
    pub flag: BoolTarget,
    pub len: usize,
    pub chunks: Vec<Target>,
}

/// `c' = hash_no_pad(c ‖ len ‖ chunks)` of the op whose flag is set; `c` unchanged if none is
/// (flags mutually exclusive). As many Poseidon rows as the longest op needs (four with the
/// 146-byte forced withdrawal), whatever the kind.
pub fn absorb_op(
    b: &mut CircuitBuilder<F, D>,
    c: HashOutTarget,
    ops: &[OpChunks],
) -> HashOutTarget {
    let mut any = b.zero();
    let options: Vec<(BoolTarget, Vec<Target>)> = ops
        .iter()
        .map(|op| {
            any = b.add(any, op.flag.target);
            let mut v = c.elements.to_vec();
            v.push(b.constant(F::from_canonical_usize(op.len)));
            v.extend_from_slice(&op.chunks);
            (op.flag, v)
        })
        .collect();
    let h = hash_no_pad_select(b, &options);
    let any = BoolTarget::new_unsafe(any);
    crate::gadgets::smt::select_hash(b, any, h, c)
}

/// `w' = hash_no_pad(w ‖ from ‖ address limbs ‖ amount)` if `enabled`, else `w` (two rows).
pub fn absorb_withdrawal(
    b: &mut CircuitBuilder<F, D>,
    w: HashOutTarget,
    enabled: BoolTarget,
    from: Target,
    addr: &[Target; 5],
    amount: Target,
) -> HashOutTarget {
    let mut v = w.elements.to_vec();
    v.push(from);
    v.extend_from_slice(addr);
    v.push(amount);
    let h = b.hash_n_to_hash_no_pad::<PoseidonHash>(v);
    crate::gadgets::smt::select_hash(b, enabled, h, w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plonky2::iop::witness::PartialWitness;
    use plonky2::plonk::circuit_data::CircuitConfig;
    use state::account::{AccountIndex, Amount};
    use state::pubdata::{
        DepositStatus, PubdataCommitment, PubdataOp, WithdrawalRecord, WithdrawalsCommitment,
    };
    use state::tx::L1Address;

    use crate::gadgets::range::range_check_u63;
    use crate::C;

    /// Chains a transfer, a withdraw and a refunded deposit through the gadgets and compares
    /// chunks and both commitments with the native ones.
    #[test]
    fn ops_and_chains_match_native() {
        let addr = L1Address(std::array::from_fn(|i| (i as u8) * 13 + 1));
        let amount = Amount::new((1 << 63) - 3).unwrap();
        let fee = Amount::new(0x0102_0304_0506).unwrap();
        let ops = [
            PubdataOp::Transfer {
                from: AccountIndex(7),
                to: AccountIndex(0xfedc_ba98),
                amount,
                fee,
            },
            PubdataOp::Withdraw {
                from: AccountIndex(3),
                to_l1: addr,
                amount,
                fee,
            },
            PubdataOp::Deposit {
                seq: 12345,
                to: AccountIndex(9),
                amount,
                status: DepositStatus::Refunded,
            },
        ];
        let mut native_c = PubdataCommitment::new();
        for op in &ops {
            native_c.absorb(op);
        }
        let mut native_w = WithdrawalsCommitment::new();
        native_w.absorb(&WithdrawalRecord {
            from: AccountIndex(3),
            to_l1: addr,
            amount,
        });

        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let t_amount = b.constant(F::from_canonical_u64(amount.get()));
        let t_fee = b.constant(F::from_canonical_u64(fee.get()));
        let amount_u = range_check_u63(&mut b, t_amount);
        let fee_u = range_check_u63(&mut b, t_fee);
        let bits32 = |b: &mut CircuitBuilder<F, D>, v: u64| {
            let t = b.constant(F::from_canonical_u64(v));
            b.split_le(t, 32)
        };
        let a_bits = amount_u.bits64(&mut b);
        let f_bits = fee_u.bits64(&mut b);
        let tb = (bits32(&mut b, 7), bits32(&mut b, 0xfedc_ba98));
        let transfer = transfer_op_chunks(&mut b, &tb.0, &tb.1, &a_bits, &f_bits);
        let limbs = addr.to_field_elements();
        let limb_t: Vec<Target> = limbs.iter().map(|l| b.constant(*l)).collect();
        let limb_bits: Vec<Vec<BoolTarget>> = limb_t.iter().map(|&l| b.split_le(l, 32)).collect();
        let from3 = bits32(&mut b, 3);
        let withdraw = withdraw_op_chunks(&mut b, &from3, &limb_bits, &a_bits, &f_bits);
        let seq = b.constant(F::from_canonical_u64(12345));
        let seq_u = range_check_u63(&mut b, seq);
        let seq_bits = seq_u.bits64(&mut b);
        let to9 = bits32(&mut b, 9);
        let t = b._true();
        let deposit = deposit_op_chunks(&mut b, &seq_bits, &to9, &a_bits, t);
        for (chunks, op) in [
            (&transfer, &ops[0]),
            (&withdraw, &ops[1]),
            (&deposit, &ops[2]),
        ] {
            for (c, n) in chunks.iter().zip(op.chunks()) {
                let n = b.constant(n);
                b.connect(*c, n);
            }
            assert_eq!(chunks.len(), op.chunks().len());
        }
        let f = b._false();
        let mut c = super::super::smt::zero_digest(&mut b);
        for (i, (chunks, op)) in [(transfer, &ops[0]), (withdraw, &ops[1]), (deposit, &ops[2])]
            .into_iter()
            .enumerate()
        {
            // Each slot offers all kinds; only one flag is set.
            let cands: Vec<OpChunks> = (0..3)
                .map(|k| OpChunks {
                    flag: if k == i { t } else { f },
                    len: op.to_bytes().len(),
                    chunks: chunks.clone(),
                })
                .collect();
            c = absorb_op(&mut b, c, &cands);
            // A slot with no op leaves the chain alone.
            let z = b.zero();
            c = absorb_op(
                &mut b,
                c,
                &[OpChunks {
                    flag: f,
                    len: 25,
                    chunks: vec![z; 4],
                }],
            );
        }
        let w0 = super::super::smt::zero_digest(&mut b);
        let from = b.constant(F::from_canonical_u64(3));
        let addr_t: [Target; 5] = limb_t.try_into().unwrap();
        let w = absorb_withdrawal(&mut b, w0, t, from, &addr_t, t_amount);
        let w = absorb_withdrawal(&mut b, w, f, from, &addr_t, t_amount);
        b.register_public_inputs(&c.elements);
        b.register_public_inputs(&w.elements);
        let data = b.build::<C>();
        let proof = data.prove(PartialWitness::new()).unwrap();
        let mut want = native_c.digest().0.to_vec();
        want.extend_from_slice(&native_w.digest().0);
        assert_eq!(proof.public_inputs, want);
        data.verify(proof).unwrap();
    }
}
