// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title Schnorr: the rollup's ECgFp5 Schnorr signatures (SPEC 4), verified on L1.
/// @notice Used by exodus (SPEC 15.9): the owner of an L2 key names the L1 address its accounts
/// exit to by signing it. The verification is the Rust reference's (`state::crypto::schnorr`):
/// `R' = s G + e Q`, accept iff `Poseidon(w_R' ‖ m) == e`. Costs: docs/BENCHMARKS.md.
///
/// Three things L1 cannot afford (a square root and an inversion in GF(p^5), each a 64-bit
/// exponentiation plus Frobenius maps) are replaced by hints the caller computes off chain and
/// the contract checks with a few multiplications (`state::exodus::SchnorrHints`):
///
/// - `qx`: the x coordinate of the key's point. Decoding `w` solves
///   `x^2 - (w^2 - a) x + b = 0`; of its two roots the group element's is the non-square. The
///   contract checks the equation and that `qx = 7 qy^2` for the hint `qy` (7 is not a square in
///   GF(p), so neither in GF(p^5), an odd-degree extension): a square root cannot pass.
/// - `wR`: the encoding of `R'`, checked as `T = wR U` on the computed `(X : Z : U : T)`. This
///   refuses `R'` = neutral (U = 0, T != 0), which an honest signer hits with probability
///   2^-319; the Rust verifier would accept it only if `Poseidon(0 ‖ m) == e`.
///
/// Arithmetic: GF(p^5) = GF(p)[z]/(z^5 - 3), elements as five words below p in memory (160
/// bytes, coefficient 0 first). Products of 64-bit limbs are summed unreduced (at most 2^132)
/// and reduced once per coefficient. Points are in fractional (x, u) coordinates
/// `(X : Z : U : T)` (four elements, 640 bytes) with the complete addition formula of the Rust
/// reference, so doubling and the neutral need no branches. Scalar multiplication: fixed 4-bit
/// windows over tables of 0..15 times G and Q, both scalars in one loop (320 doublings, at most
/// 80 + 64 additions).
library Schnorr {
    uint256 internal constant P = 0xFFFFFFFF00000001;
    /// Group order n = N_HI * 2^256 + N_LO (SPEC 4).
    uint256 internal constant N_HI = 0x7FFFFFFD80000007;
    uint256 internal constant N_LO = 0x7FFFFFF1000000167FFFFFE6CFB80639E8885C39D724A09CE80FD996948BFFE1;

    /// What a verification needs besides the key and the message (all elements below p).
    struct Signature {
        uint256[4] e; // the challenge: four canonical limbs
        uint256 sLo; // the response s < n: low 256 bits
        uint256 sHi; // and the high 63
        uint256[5] qx; // hint: x of the key's point
        uint256[5] qy; // hint: qx = 7 qy^2
        uint256[5] wR; // hint: the encoding of R' = s G + e Q
    }

    /// Whether `sig` is a valid signature by the key with encoding `w` on message hash `m`.
    /// Returns false (never reverts) for non-canonical inputs, a key that is not a group
    /// element or is the neutral, wrong hints, or a signature that does not verify.
    /// `hashNoPad` is Poseidon's (`Poseidon.hashNoPad`, or the same through a deployed
    /// permutation): the caller chooses where the permutation's code lives.
    function verify(
        uint256[5] memory w,
        uint256[4] memory m,
        Signature memory sig,
        function(uint256[] memory) view returns (uint256[4] memory) hashNoPad
    ) internal view returns (bool) {
        if (!_canonical5(w) || !_canonical5(sig.qx) || !_canonical5(sig.qy) || !_canonical5(sig.wR)) return false;
        for (uint256 i = 0; i < 4; i++) {
            if (sig.e[i] >= P || m[i] >= P) return false;
        }
        if (sig.sHi > N_HI || (sig.sHi == N_HI && sig.sLo >= N_LO)) return false;
        if ((w[0] | w[1] | w[2] | w[3] | w[4]) == 0) return false; // the neutral
        if (!_curveChecks(w, sig)) return false;
        uint256[] memory input = new uint256[](9);
        for (uint256 i = 0; i < 5; i++) {
            input[i] = sig.wR[i];
        }
        for (uint256 i = 0; i < 4; i++) {
            input[5 + i] = m[i];
        }
        uint256[4] memory e2 = hashNoPad(input);
        return e2[0] == sig.e[0] && e2[1] == sig.e[1] && e2[2] == sig.e[2] && e2[3] == sig.e[3];
    }

    function _canonical5(uint256[5] memory a) private pure returns (bool) {
        return a[0] < P && a[1] < P && a[2] < P && a[3] < P && a[4] < P;
    }

    /// The curve part of a verification, in one assembly block (its GF(p^5) functions serve
    /// both steps): first the key's point, `qx^2 - (w^2 - 2) qx + b = 0` and `qx = 7 qy^2`
    /// (the group element's root for `w`); then `R' = s G + e Q` with `Q = (qx : 1 : 1 : w)`
    /// and `T = wR U`.
    function _curveChecks(uint256[5] memory w, Signature memory sig) private pure returns (bool ok) {
        uint256[5] memory qx = sig.qx;
        uint256[5] memory qy = sig.qy;
        uint256[5] memory wR = sig.wR;
        uint256 e = sig.e[0] | (sig.e[1] << 64) | (sig.e[2] << 128) | (sig.e[3] << 192);
        uint256 sLo = sig.sLo;
        uint256 sHi = sig.sHi;
        assembly ("memory-safe") {
            // The key: qx^2 - (w^2 - 2) qx + b = 0 (qx is a root of w's decoding equation).
            let t := mload(0x40)
            // t0 = w^2 - 2, t1 = t0 qx, t2 = qx^2
            let t0 := t
            let t1 := add(t, 160)
            let t2 := add(t, 320)
            f5sq(t0, w)
            mstore(t0, addmod(mload(t0), sub(P, 2), P))
            f5mul(t1, t0, qx)
            f5sq(t2, qx)
            // qx^2 - t1 + b, with b = 263 z
            f5sub(t2, t2, t1)
            mstore(add(t2, 32), addmod(mload(add(t2, 32)), 263, P))
            ok := f5zero(t2)
            // 7 qy^2 == qx: qx is the non-square root
            f5sq(t0, qy)
            for { let i := 0 } lt(i, 5) { i := add(i, 1) } {
                let o := mul(i, 32)
                if iszero(eq(mulmod(mload(add(t0, o)), 7, P), mload(add(qx, o)))) { ok := 0 }
            }

            if ok {
                // Layout from the free pointer (nothing is allocated: the region is scratch):
                // scratch elements 0..13 (160 bytes each), acc (640), G table (16 x 640), Q table.
                let base := mload(0x40)
                let acc := add(base, 2240)
                let gtab := add(acc, 640)
                let qtab := add(gtab, 10240)

                // Table entry 0 is the neutral (0 : 1 : 0 : 1); entry 1 the point; k = (k-1) + 1.
                setNeutral(gtab)
                setNeutral(qtab)
                let g1 := add(gtab, 640)
                mstore(g1, 12883135586176881569)
                mstore(add(g1, 32), 4356519642755055268)
                mstore(add(g1, 64), 5248930565894896907)
                mstore(add(g1, 96), 2165973894480315022)
                mstore(add(g1, 128), 2448410071095648785)
                f5set(add(g1, 160), 1, 0)
                f5set(add(g1, 320), 1, 0)
                f5set(add(g1, 480), 4, 0)
                let q1 := add(qtab, 640)
                f5copy(q1, qx)
                f5set(add(q1, 160), 1, 0)
                f5set(add(q1, 320), 1, 0)
                f5copy(add(q1, 480), w)
                for { let k := 2 } lt(k, 16) { k := add(k, 1) } {
                    padd(base, add(gtab, mul(k, 640)), add(gtab, mul(sub(k, 1), 640)), g1)
                    padd(base, add(qtab, mul(k, 640)), add(qtab, mul(sub(k, 1), 640)), q1)
                }

                setNeutral(acc)
                let started := 0
                for { let i := 80 } gt(i, 0) {} {
                    i := sub(i, 1)
                    if started {
                        pdouble(base, acc, acc)
                        pdouble(base, acc, acc)
                        pdouble(base, acc, acc)
                        pdouble(base, acc, acc)
                    }
                    let bit := mul(i, 4)
                    let ds := 0
                    switch lt(bit, 256)
                    case 1 { ds := and(shr(bit, sLo), 15) }
                    default { ds := and(shr(sub(bit, 256), sHi), 15) }
                    if ds {
                        padd(base, acc, acc, add(gtab, mul(ds, 640)))
                        started := 1
                    }
                    if lt(bit, 256) {
                        let de := and(shr(bit, e), 15)
                        if de {
                            padd(base, acc, acc, add(qtab, mul(de, 640)))
                            started := 1
                        }
                    }
                }
                // T == wR * U
                f5mul(base, wR, add(acc, 320))
                ok := f5eq(base, add(acc, 480))
            }

            function f5zero(a) -> z {
                z := iszero(or(or(or(mload(a), mload(add(a, 32))), or(mload(add(a, 64)), mload(add(a, 96)))), mload(add(a, 128))))
            }
            function setNeutral(p) {
                f5set(p, 0, 0)
                f5set(add(p, 160), 1, 0)
                f5set(add(p, 320), 0, 0)
                f5set(add(p, 480), 1, 0)
            }
            function f5set(r, c0, rest) {
                mstore(r, c0)
                mstore(add(r, 32), rest)
                mstore(add(r, 64), rest)
                mstore(add(r, 96), rest)
                mstore(add(r, 128), rest)
            }
            function f5copy(r, a) {
                mstore(r, mload(a))
                mstore(add(r, 32), mload(add(a, 32)))
                mstore(add(r, 64), mload(add(a, 64)))
                mstore(add(r, 96), mload(add(a, 96)))
                mstore(add(r, 128), mload(add(a, 128)))
            }
            function f5eq(a, b) -> z {
                z := and(and(eq(mload(a), mload(b)), eq(mload(add(a, 32)), mload(add(b, 32)))),
                    and(and(eq(mload(add(a, 64)), mload(add(b, 64))), eq(mload(add(a, 96)), mload(add(b, 96)))),
                        eq(mload(add(a, 128)), mload(add(b, 128)))))
            }
            function f5add(r, a, b) {
                mstore(r, addmod(mload(a), mload(b), P))
                mstore(add(r, 32), addmod(mload(add(a, 32)), mload(add(b, 32)), P))
                mstore(add(r, 64), addmod(mload(add(a, 64)), mload(add(b, 64)), P))
                mstore(add(r, 96), addmod(mload(add(a, 96)), mload(add(b, 96)), P))
                mstore(add(r, 128), addmod(mload(add(a, 128)), mload(add(b, 128)), P))
            }
            function f5sub(r, a, b) {
                mstore(r, addmod(mload(a), sub(P, mload(b)), P))
                mstore(add(r, 32), addmod(mload(add(a, 32)), sub(P, mload(add(b, 32))), P))
                mstore(add(r, 64), addmod(mload(add(a, 64)), sub(P, mload(add(b, 64))), P))
                mstore(add(r, 96), addmod(mload(add(a, 96)), sub(P, mload(add(b, 96))), P))
                mstore(add(r, 128), addmod(mload(add(a, 128)), sub(P, mload(add(b, 128))), P))
            }
            // r = -a
            function f5neg(r, a) {
                mstore(r, mod(sub(P, mload(a)), P))
                mstore(add(r, 32), mod(sub(P, mload(add(a, 32))), P))
                mstore(add(r, 64), mod(sub(P, mload(add(a, 64))), P))
                mstore(add(r, 96), mod(sub(P, mload(add(a, 96))), P))
                mstore(add(r, 128), mod(sub(P, mload(add(a, 128))), P))
            }
            // r = b a with b = 263 z: z a = (3 a4, a0, a1, a2, a3).
            function f5mulb(r, a) {
                let a4 := mload(add(a, 128))
                mstore(add(r, 128), mulmod(mload(add(a, 96)), 263, P))
                mstore(add(r, 96), mulmod(mload(add(a, 64)), 263, P))
                mstore(add(r, 64), mulmod(mload(add(a, 32)), 263, P))
                mstore(add(r, 32), mulmod(mload(a), 263, P))
                mstore(r, mulmod(a4, 789, P))
            }
            function f5mul(r, a, b) {
                let a0 := mload(a)
                let a1 := mload(add(a, 32))
                let a2 := mload(add(a, 64))
                let a3 := mload(add(a, 96))
                let a4 := mload(add(a, 128))
                let b0 := mload(b)
                let b1 := mload(add(b, 32))
                let b2 := mload(add(b, 64))
                let b3 := mload(add(b, 96))
                let b4 := mload(add(b, 128))
                mstore(r, mod(add(mul(a0, b0), mul(3, add(add(mul(a1, b4), mul(a2, b3)), add(mul(a3, b2), mul(a4, b1))))), P))
                mstore(add(r, 32), mod(add(add(mul(a0, b1), mul(a1, b0)), mul(3, add(add(mul(a2, b4), mul(a3, b3)), mul(a4, b2)))), P))
                mstore(add(r, 64), mod(add(add(add(mul(a0, b2), mul(a1, b1)), mul(a2, b0)), mul(3, add(mul(a3, b4), mul(a4, b3)))), P))
                mstore(add(r, 96), mod(add(add(add(mul(a0, b3), mul(a1, b2)), add(mul(a2, b1), mul(a3, b0))), mul(3, mul(a4, b4))), P))
                mstore(add(r, 128), mod(add(add(add(mul(a0, b4), mul(a1, b3)), add(mul(a2, b2), mul(a3, b1))), mul(a4, b0)), P))
            }
            function f5sq(r, a) {
                let a0 := mload(a)
                let a1 := mload(add(a, 32))
                let a2 := mload(add(a, 64))
                let a3 := mload(add(a, 96))
                let a4 := mload(add(a, 128))
                mstore(r, mod(add(mul(a0, a0), mul(6, add(mul(a1, a4), mul(a2, a3)))), P))
                mstore(add(r, 32), mod(add(mul(2, mul(a0, a1)), mul(3, add(mul(2, mul(a2, a4)), mul(a3, a3)))), P))
                mstore(add(r, 64), mod(add(add(mul(2, mul(a0, a2)), mul(a1, a1)), mul(6, mul(a3, a4))), P))
                mstore(add(r, 96), mod(add(mul(2, add(mul(a0, a3), mul(a1, a2))), mul(3, mul(a4, a4))), P))
                mstore(add(r, 128), mod(add(mul(2, add(mul(a0, a4), mul(a1, a3))), mul(a2, a2)), P))
            }
            // Scratch elements: s(k) = base + 160 k. t1..t6 are s(1)..s(6).
            // r = p + q (complete; r may alias p or q: it is written last).
            function padd(s, r, p, q) {
                f5mul(add(s, 160), p, q) // t1 = X1 X2
                f5mul(add(s, 320), add(p, 160), add(q, 160)) // t2 = Z1 Z2
                f5mul(add(s, 480), add(p, 320), add(q, 320)) // t3 = U1 U2
                f5mul(add(s, 640), add(p, 480), add(q, 480)) // t4 = T1 T2
                // t5 = (X1 + Z1)(X2 + Z2) - t1 - t2
                f5add(add(s, 1760), p, add(p, 160))
                f5add(add(s, 1920), q, add(q, 160))
                f5mul(add(s, 800), add(s, 1760), add(s, 1920))
                f5sub(add(s, 800), add(s, 800), add(s, 160))
                f5sub(add(s, 800), add(s, 800), add(s, 320))
                // t6 = (U1 + T1)(U2 + T2) - t3 - t4
                f5add(add(s, 1760), add(p, 320), add(p, 480))
                f5add(add(s, 1920), add(q, 320), add(q, 480))
                f5mul(add(s, 960), add(s, 1760), add(s, 1920))
                f5sub(add(s, 960), add(s, 960), add(s, 480))
                f5sub(add(s, 960), add(s, 960), add(s, 640))
                finish(s, r)
            }
            function pdouble(s, r, p) {
                f5sq(add(s, 160), p)
                f5sq(add(s, 320), add(p, 160))
                f5sq(add(s, 480), add(p, 320))
                f5sq(add(s, 640), add(p, 480))
                f5add(add(s, 1760), p, add(p, 160))
                f5sq(add(s, 800), add(s, 1760))
                f5sub(add(s, 800), add(s, 800), add(s, 160))
                f5sub(add(s, 800), add(s, 800), add(s, 320))
                f5add(add(s, 1760), add(p, 320), add(p, 480))
                f5sq(add(s, 960), add(s, 1760))
                f5sub(add(s, 960), add(s, 960), add(s, 480))
                f5sub(add(s, 960), add(s, 960), add(s, 640))
                finish(s, r)
            }
            // From t1..t6 (s(1)..s(6)): t7 = t1 + b t2 (s7), t8 = t1 - b t2 (s8),
            // A = t7 t4 (s9), B = t7 t3 (s10), C = t3 t5 (s11), D = t5 t4 (s12),
            // X3 = b (D + 2C + 2B), Z3 = A - 2B - 2bC, U3 = -(t6 t8), T3 = A + 2B + 2bC.
            function finish(s, r) {
                f5mulb(add(s, 1120), add(s, 320)) // b t2 (in s7 for now)
                f5sub(add(s, 1280), add(s, 160), add(s, 1120)) // t8
                f5add(add(s, 1120), add(s, 160), add(s, 1120)) // t7
                f5mul(add(s, 1440), add(s, 1120), add(s, 640)) // A
                f5mul(add(s, 1600), add(s, 1120), add(s, 480)) // B
                f5mul(add(s, 1760), add(s, 480), add(s, 800)) // C
                f5mul(add(s, 1920), add(s, 800), add(s, 640)) // D
                f5add(add(s, 1600), add(s, 1600), add(s, 1600)) // 2B
                // X3 = b (D + 2C + 2B)
                f5add(add(s, 2080), add(s, 1760), add(s, 1760)) // 2C (s13)
                f5add(add(s, 1920), add(s, 1920), add(s, 2080))
                f5add(add(s, 1920), add(s, 1920), add(s, 1600))
                f5mulb(r, add(s, 1920))
                // 2bC
                f5mulb(add(s, 2080), add(s, 2080))
                // U3 = -(t6 t8)
                f5mul(add(s, 1280), add(s, 960), add(s, 1280))
                f5neg(add(r, 320), add(s, 1280))
                // Z3 = A - 2B - 2bC, T3 = A + 2B + 2bC
                f5add(add(s, 1760), add(s, 1600), add(s, 2080)) // 2B + 2bC
                f5sub(add(r, 160), add(s, 1440), add(s, 1760))
                f5add(add(r, 480), add(s, 1440), add(s, 1760))
            }
        }
    }
}
