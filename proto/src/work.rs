//! The registration proof of work (docs/API.md, "Registration"): a sequencer admission policy
//! that makes creating an account cost some CPU, not a rule of the rollup (the `state` crate and
//! the circuits know nothing of it, and the nonce is neither signed nor logged).
//!
//! ```text
//! work_hash = SHA-256( "rollup/registration-work/v1"      27 ASCII bytes
//!                    ‖ chain_id                            u64 little-endian
//!                    ‖ rollup address                      20 bytes
//!                    ‖ public key                          40 bytes (its canonical encoding)
//!                    ‖ work_nonce )                        u64 little-endian
//! ```
//!
//! The work is valid when `work_hash`, read as a big-endian 256-bit number, has at least `bits`
//! leading zero bits. The chain id and rollup address are the signing [`Domain`] (both in the
//! node's status), so work done for one deployment is worthless on another; the public key
//! binds the work to the account it pays for. Solving takes about `2^bits` hashes; checking
//! takes one.

use sha2::{Digest, Sha256};
use state::tx::Domain;

/// The hash's domain-separation tag.
pub const TAG: &[u8; 27] = b"rollup/registration-work/v1";

/// The most bits a node may ask for (`--registration-work-bits`): 2^40 hashes is hours of a
/// GPU, far beyond any useful price of an account.
pub const MAX_BITS: u32 = 40;

/// The hashed prefix (everything but the nonce): 27 + 8 + 20 + 40 = 95 bytes.
fn prefix(domain: &Domain, pubkey: &[u8; 40]) -> Sha256 {
    let mut h = Sha256::new();
    h.update(TAG);
    h.update(domain.chain_id.to_le_bytes());
    h.update(domain.rollup);
    h.update(pubkey);
    h
}

/// `work_hash` for `nonce` (module docs).
pub fn work_hash(domain: &Domain, pubkey: &[u8; 40], nonce: u64) -> [u8; 32] {
    let mut h = prefix(domain, pubkey);
    h.update(nonce.to_le_bytes());
    h.finalize().into()
}

/// Leading zero bits of `hash` read as a big-endian number (0..=256).
pub fn leading_zero_bits(hash: &[u8; 32]) -> u32 {
    let mut n = 0;
    for b in hash {
        n += b.leading_zeros();
        if *b != 0 {
            break;
        }
    }
    n
}

/// Whether `nonce` is a valid proof of work of `bits` for registering `pubkey` on `domain`
/// (always true for `bits == 0`).
pub fn work_ok(domain: &Domain, pubkey: &[u8; 40], nonce: u64, bits: u32) -> bool {
    bits == 0 || leading_zero_bits(&work_hash(domain, pubkey, nonce)) >= bits
}

/// The smallest valid nonce (about `2^bits` hashes; CPU-bound: from async code, run it on a
/// blocking thread). `bits` above [`MAX_BITS`] is treated as `MAX_BITS`.
pub fn solve(domain: &Domain, pubkey: &[u8; 40], bits: u32) -> u64 {
    let bits = bits.min(MAX_BITS);
    if bits == 0 {
        return 0;
    }
    // The 95-byte prefix fills the first SHA-256 block: hash it once, then only the last block
    // per nonce.
    let base = prefix(domain, pubkey);
    (0u64..)
        .find(|n| {
            let mut h = base.clone();
            h.update(n.to_le_bytes());
            leading_zero_bits(&h.finalize().into()) >= bits
        })
        .unwrap_or_else(|| unreachable!("2^64 nonces cover any bits <= MAX_BITS"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: Domain = Domain {
        chain_id: 31337,
        rollup: [0x42; 20],
    };
    const KEY: [u8; 40] = [7; 40];

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn the_hash_is_pinned() {
        // Computed once (and checked with Python's hashlib, docs/API.md "Registration"):
        // sha256(b"rollup/registration-work/v1" + (31337).to_bytes(8, "little") + b"\x42" * 20
        //        + b"\x07" * 40 + (5).to_bytes(8, "little"))
        assert_eq!(hex(&work_hash(&DOMAIN, &KEY, 5)), PINNED_HASH_5);
        assert_eq!(solve(&DOMAIN, &KEY, 12), PINNED_NONCE_12);
        assert!(work_ok(&DOMAIN, &KEY, PINNED_NONCE_12, 12));
        assert!(leading_zero_bits(&work_hash(&DOMAIN, &KEY, PINNED_NONCE_12)) >= 12);
    }

    const PINNED_HASH_5: &str = "f5b41b9a2c5bc473c5795b769216d0f8ac5b537edcb0421472e3e8c2a42d4fd4";
    /// Its hash is 00012b6c...: 15 leading zero bits, so it is also the smallest for 13..=15.
    const PINNED_NONCE_12: u64 = 4615;

    #[test]
    fn leading_zero_bits_at_the_boundaries() {
        let mut h = [0u8; 32];
        assert_eq!(leading_zero_bits(&h), 256);
        h[31] = 1;
        assert_eq!(leading_zero_bits(&h), 255);
        h[0] = 0x80;
        assert_eq!(leading_zero_bits(&h), 0);
        h[0] = 0x01;
        assert_eq!(leading_zero_bits(&h), 7);
        h[0] = 0;
        h[1] = 0xff;
        assert_eq!(leading_zero_bits(&h), 8);
        h[1] = 0x0f;
        assert_eq!(leading_zero_bits(&h), 12);
    }

    #[test]
    fn exactly_bits_passes_and_one_more_fails() {
        // Find a nonce whose hash has exactly 9 leading zero bits.
        let n = (0u64..)
            .find(|&n| leading_zero_bits(&work_hash(&DOMAIN, &KEY, n)) == 9)
            .unwrap();
        assert!(work_ok(&DOMAIN, &KEY, n, 9));
        assert!(work_ok(&DOMAIN, &KEY, n, 8));
        assert!(!work_ok(&DOMAIN, &KEY, n, 10));
        assert!(work_ok(&DOMAIN, &KEY, n, 0), "0 bits: no work");
        assert_eq!(solve(&DOMAIN, &KEY, 0), 0);
    }

    #[test]
    fn work_is_bound_to_the_domain_and_the_key() {
        let bits = 14;
        let n = solve(&DOMAIN, &KEY, bits);
        assert!(work_ok(&DOMAIN, &KEY, n, bits));
        // The smallest valid nonce: everything below fails.
        assert!((0..n).all(|m| !work_ok(&DOMAIN, &KEY, m, bits)));
        let other_chain = Domain {
            chain_id: 1,
            ..DOMAIN
        };
        let other_rollup = Domain {
            rollup: [0x43; 20],
            ..DOMAIN
        };
        let mut other_key = KEY;
        other_key[39] ^= 1;
        // Deterministic: with these inputs the hashes have 1, 2 and 0 leading zero bits
        // (checked with hashlib).
        assert_eq!(n, PINNED_NONCE_12);
        assert!(!work_ok(&other_chain, &KEY, n, bits));
        assert!(!work_ok(&other_rollup, &KEY, n, bits));
        assert!(!work_ok(&DOMAIN, &other_key, n, bits));
    }
}
