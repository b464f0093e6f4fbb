#!/usr/bin/env python3
"""Writes contracts/src/Poseidon.sol from the permutation's parameters in the Rust reference's
vectors (docs/vectors/state-v1.json, "poseidon.params": plonky2 1.1.0's round constants and
MDS matrix, written by `cargo test -p state --test spec_vectors`).

The permutation is generated unrolled (each round's twelve constants are literals) so that no
constant table is read at run time; the MDS layer is one Yul function shared by every round.
Run from bridge/: python3 scripts/gen-poseidon.py; commit the result (forge checks it against
the vectors' known answers).
"""

import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT.parent / "docs" / "vectors" / "state-v1.json"
OUT = ROOT / "contracts" / "src" / "Poseidon.sol"


def main() -> None:
    params = json.loads(VECTORS.read_text())["poseidon"]["params"]
    width = params["width"]
    half = params["half_full_rounds"]
    partial = params["partial_rounds"]
    rc = [int(c, 16) for c in params["round_constants"]]
    circ = params["mds_circ"]
    diag = params["mds_diag"]
    rounds = 2 * half + partial
    assert width == 12 and len(rc) == width * rounds

    def word(i: int, base: str = "s") -> str:
        return f"add({base}, {32 * i})" if i else base

    fast = params["fast_partial"]
    h = lambda v: int(v, 16)  # noqa: E731
    first_rc = [h(c) for c in fast["first_round_constant"]]
    fast_rc = [h(c) for c in fast["round_constants"]]
    vs = [[h(c) for c in row] for row in fast["vs"]]
    w_hats = [[h(c) for c in row] for row in fast["w_hats"]]
    init = [[h(c) for c in row] for row in fast["initial_matrix"]]
    m00 = circ[0] + diag[0]

    def full_round(r: int) -> list:
        out = [f"            // round {r} (full)"]
        for i in range(width):
            c = rc[width * r + i]
            out.append(
                f"            {{ let x := addmod(mload({word(i)}), 0x{c:016x}, p) "
                f"let x2 := mulmod(x, x, p) let x3 := mulmod(x2, x, p) "
                f"mstore({word(i)}, mulmod(mulmod(x2, x2, p), x3, p)) }}"
            )
        out.append("            mds(s, u, p)")
        return out

    def sum_expr(terms: list) -> str:
        # Nested to the right: Yul evaluates arguments right to left, so each level holds one
        # partial sum on the stack (left nesting would hold all twelve terms at once).
        expr = terms[-1]
        for t in reversed(terms[:-1]):
            expr = f"add({t}, {expr})"
        return expr

    lines = []
    for r in range(half):
        lines += full_round(r)
    # The partial rounds in sparse form. Every product is below 2^130 and every sum of twelve
    # below 2^134: reduced once per output element.
    lines.append("            // partial rounds (sparse form): first constants, initial matrix")
    for i in range(width):
        lines.append(f"            mstore({word(i)}, add(mload({word(i)}), 0x{first_rc[i]:016x}))")
    for c in range(1, width):
        terms = [f"mul(mload({word(r)}), 0x{init[r - 1][c - 1]:016x})" for r in range(1, width)]
        lines.append(f"            mstore({word(c, 'u')}, mod({sum_expr(terms)}, p))")
    lines.append(f"            mstore(s, mod(mload(s), p))")
    for c in range(1, width):
        lines.append(f"            mstore({word(c)}, mload({word(c, 'u')}))")
    for i in range(partial):
        lines.append(f"            // partial round {i}")
        lines.append(
            f"            {{ let x := mload(s) let x2 := mulmod(x, x, p) let x3 := mulmod(x2, x, p) "
            f"x := add(mulmod(mulmod(x2, x2, p), x3, p), 0x{fast_rc[i]:016x})"
        )
        terms = [f"mul(x, {m00})"] + [
            f"mul(mload({word(j)}), 0x{w_hats[i][j - 1]:016x})" for j in range(1, width)
        ]
        lines.append(f"              let d := mod({sum_expr(terms)}, p)")
        for j in range(1, width):
            lines.append(
                f"              mstore({word(j)}, addmod(mload({word(j)}), mul(x, 0x{vs[i][j - 1]:016x}), p))"
            )
        lines.append("              mstore(s, d) }")
    for r in range(half + partial, rounds):
        lines += full_round(r)
    body = "\n".join(lines)

    # MDS row r: sum_i x[(i + r) % 12] circ[i] + x[r] diag[r]. Inputs below 2^65 (a partial
    # round adds a constant without reducing), coefficients below 2^7: each row sums to below
    # 2^77, reduced once.
    mds_rows = []
    for r in range(width):
        terms = []
        for j in range(width):
            coeff = circ[(j - r) % width] + (diag[r] if j == r else 0)
            if coeff:
                terms.append(f"mul(mload({word(j, 'x')}), {coeff})")
        expr = sum_expr(terms)
        mds_rows.append(f"                mstore({word(r, 'y')}, mod({expr}, q))")
    mds = "\n".join(mds_rows)
    copy = "\n".join(
        f"                mstore({word(i, 'x')}, mload({word(i, 'y')}))" for i in range(width)
    )

    OUT.write_text(f"""// SPDX-License-Identifier: MIT OR Apache-2.0
// GENERATED by bridge/scripts/gen-poseidon.py from docs/vectors/state-v1.json; do not edit.
pragma solidity ^0.8.24;

/// The Poseidon permutation over Goldilocks (p = 2^64 - 2^32 + 1) with plonky2 1.1.0's
/// parameters, the hash of the rollup's state (SPEC 4): width 12, rate 8, x^7, {half} full
/// rounds, {partial} partial rounds, {half} full rounds, each adding its round constants, applying
/// the S-box and the MDS layer `y[r] = sum_i x[(i + r) % 12] circ[i] + x[r] diag[r]`.
/// Elements are `uint256` values below p. Known answers: contracts/test/Poseidon.t.sol.
///
/// The partial rounds are computed in plonky2's sparse form (its precomputed constants, also in
/// the vectors): the same permutation with a dot product and eleven multiply-adds per partial
/// round instead of the full MDS layer. Cost: docs/BENCHMARKS.md.
library Poseidon {{
    uint256 internal constant P = 0xFFFFFFFF00000001;

    /// The permutation, in place.
    function permute(uint256[12] memory s) internal pure {{
        assembly ("memory-safe") {{
            let p := 0xFFFFFFFF00000001
            // Scratch for the MDS layer's output: memory past the free pointer, not kept.
            let u := mload(0x40)
            // x := MDS(x), through the scratch words at y (q = p).
            function mds(x, y, q) {{
{mds}
{copy}
            }}
{body}
        }}
    }}

    /// `hash_no_pad` (SPEC 4): absorb `input` eight elements at a time (overwriting the rate),
    /// permuting after each chunk; the digest is the first four elements.
    function hashNoPad(uint256[] memory input) internal pure returns (uint256[4] memory out) {{
        uint256[12] memory s;
        uint256 n = input.length;
        for (uint256 at = 0; at < n; at += 8) {{
            uint256 end = at + 8 < n ? at + 8 : n;
            for (uint256 i = at; i < end; i++) {{
                s[i - at] = input[i];
            }}
            permute(s);
        }}
        out = [s[0], s[1], s[2], s[3]];
    }}

    /// `hashNoPad` with another implementation of the same permutation (a deployed
    /// `PoseidonPermutation`, for contracts that cannot hold this library's code).
    function hashNoPadWith(uint256[] memory input, function(uint256[12] memory) view perm)
        internal
        view
        returns (uint256[4] memory out)
    {{
        uint256[12] memory s;
        uint256 n = input.length;
        for (uint256 at = 0; at < n; at += 8) {{
            uint256 end = at + 8 < n ? at + 8 : n;
            for (uint256 i = at; i < end; i++) {{
                s[i - at] = input[i];
            }}
            perm(s);
        }}
        out = [s[0], s[1], s[2], s[3]];
    }}

    /// `twoToOne` with another implementation of the same permutation.
    function twoToOneWith(uint256[4] memory l, uint256[4] memory r, function(uint256[12] memory) view perm)
        internal
        view
        returns (uint256[4] memory out)
    {{
        uint256[12] memory s = [l[0], l[1], l[2], l[3], r[0], r[1], r[2], r[3], 0, 0, 0, 0];
        perm(s);
        out = [s[0], s[1], s[2], s[3]];
    }}

    /// `two_to_one(l, r)` (SPEC 4): one permutation of `l ‖ r ‖ 0000`.
    function twoToOne(uint256[4] memory l, uint256[4] memory r) internal pure returns (uint256[4] memory out) {{
        uint256[12] memory s = [l[0], l[1], l[2], l[3], r[0], r[1], r[2], r[3], 0, 0, 0, 0];
        permute(s);
        out = [s[0], s[1], s[2], s[3]];
    }}

    /// A digest from its 32-byte encoding (`Digest::to_bytes`: four little-endian u64).
    function fromBytes(bytes32 b) internal pure returns (uint256[4] memory d) {{
        for (uint256 i = 0; i < 4; i++) {{
            uint64 be = uint64(bytes8(b << (64 * i)));
            // Little-endian to big-endian.
            be = ((be & 0xFF00FF00FF00FF00) >> 8) | ((be & 0x00FF00FF00FF00FF) << 8);
            be = ((be & 0xFFFF0000FFFF0000) >> 16) | ((be & 0x0000FFFF0000FFFF) << 16);
            d[i] = uint256((be >> 32) | (be << 32));
        }}
    }}

    /// The 32-byte encoding of a digest.
    function toBytes(uint256[4] memory d) internal pure returns (bytes32 b) {{
        for (uint256 i = 0; i < 4; i++) {{
            uint64 v = uint64(d[i]);
            v = ((v & 0xFF00FF00FF00FF00) >> 8) | ((v & 0x00FF00FF00FF00FF) << 8);
            v = ((v & 0xFFFF0000FFFF0000) >> 16) | ((v & 0x0000FFFF0000FFFF) << 16);
            v = (v >> 32) | (v << 32);
            b |= bytes32(uint256(v) << (192 - 64 * i));
        }}
    }}
}}
""")


if __name__ == "__main__":
    main()
