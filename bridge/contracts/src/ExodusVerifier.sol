// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Poseidon} from "./Poseidon.sol";
import {Schnorr} from "./Schnorr.sol";

/// @title ExodusVerifier: the Poseidon and ECgFp5 checks of exodus (SPEC 15.9), stateless.
/// @notice A contract of its own, created by `Rollup`'s constructor, because the Poseidon
/// constants and the curve arithmetic would take `Rollup` past the 24 KiB code limit; for the
/// same reason the permutation itself is one more contract (`PoseidonPermutation`), deployed
/// before `Rollup` (its creation code would take `Rollup`'s init code past the 48 KiB limit of
/// EIP-3860) and called for each permutation. Its code is pinned by hash, so the deployer
/// cannot name another contract. It holds no funds and no state that matters after
/// construction, so whoever calls it learns only whether a proof or signature is valid.
contract ExodusVerifier {
    /// The code hash of `PoseidonPermutation` as compiled without metadata (foundry.toml,
    /// scripts/build.js); a test compares it with a fresh deployment's.
    bytes32 public constant PERMUTATION_CODEHASH = 0x580ff2166544537fd025f7ccea11bdeede8d08a470462c6ac16c4c3733411536;

    /// The Poseidon permutation (plonky2's, SPEC 4), one copy of its code.
    address public immutable permutation;

    error WrongPermutation(address permutation, bytes32 codehash);

    constructor(address permutation_) {
        if (permutation_.codehash != PERMUTATION_CODEHASH) {
            revert WrongPermutation(permutation_, permutation_.codehash);
        }
        permutation = permutation_;
    }

    /// `"rollupv1"` as a big-endian u64 (SPEC 8.1).
    uint256 internal constant TAG_DOMAIN = 0x726f6c6c75707631;
    /// The kind element of an exit authorisation (SPEC 15.9; transactions use 1 to 5).
    uint256 public constant TAG_EXIT_AUTHORISATION = 6;
    /// The kind element of an owner binding (SPEC 20.9; no transaction uses it).
    uint256 public constant TAG_OWNER_BINDING = 17;

    /// The deployment's domain digest (SPEC 8.1), as `Digest::to_bytes`.
    function domainDigest(uint64 chainId, address rollup) external view returns (bytes32) {
        uint256[] memory input = new uint256[](8);
        input[0] = TAG_DOMAIN;
        input[1] = chainId & 0xFFFFFFFF;
        input[2] = chainId >> 32;
        uint256[5] memory a = _addressLimbs(rollup);
        for (uint256 i = 0; i < 5; i++) {
            input[3 + i] = a[i];
        }
        return Poseidon.toBytes(Poseidon.hashNoPadWith(input, _permute));
    }

    /// `H(domain, tag, t0..t4)`: the message a key signs about one L1 address: with
    /// `TAG_EXIT_AUTHORISATION`, to send its exits to `a`; with `TAG_OWNER_BINDING`, to be owned
    /// by `a` (SPEC 20.9).
    function addressMessage(bytes32 domain, uint256 tag, address a) public view returns (uint256[4] memory) {
        uint256[] memory input = new uint256[](10);
        uint256[4] memory d = Poseidon.fromBytes(domain);
        for (uint256 i = 0; i < 4; i++) {
            input[i] = d[i];
        }
        input[4] = tag;
        uint256[5] memory t = _addressLimbs(a);
        for (uint256 i = 0; i < 5; i++) {
            input[5 + i] = t[i];
        }
        return Poseidon.hashNoPadWith(input, _permute);
    }

    /// Whether `sig` by the key with encoding `w` signs `addressMessage(domain, tag, a)`.
    function signsAddress(
        bytes32 domain,
        uint256 tag,
        uint256[5] calldata w,
        address a,
        Schnorr.Signature calldata sig
    ) external view returns (bool) {
        return Schnorr.verify(w, addressMessage(domain, tag, a), sig, _hashNoPad);
    }

    /// The root of the state tree in which account `index` has the given fields and the Merkle
    /// siblings `siblings` (SPEC 6 and 7). Reverts on a non-canonical element (a leaf with one
    /// could not be in the tree, and `hashNoPad` assumes canonical inputs).
    function accountRoot(
        uint32 index,
        uint256[5] calldata w,
        uint64 balance,
        uint64 nonce,
        bytes32 ext,
        bytes32[32] calldata siblings
    ) public view returns (bytes32) {
        uint256[] memory e = new uint256[](12);
        for (uint256 i = 0; i < 5; i++) {
            if (w[i] >= Schnorr.P) revert NonCanonical();
            e[i] = w[i];
        }
        if (balance >= Schnorr.P || nonce >= Schnorr.P) revert NonCanonical();
        e[5] = balance;
        e[6] = nonce;
        // e[7] = 0: the v1 leaf layout (SPEC 6).
        uint256[4] memory x = _digest(ext);
        for (uint256 i = 0; i < 4; i++) {
            e[8 + i] = x[i];
        }
        uint256[4] memory cur = Poseidon.hashNoPadWith(e, _permute);
        for (uint256 l = 0; l < 32; l++) {
            uint256[4] memory s = _digest(siblings[l]);
            cur = ((index >> l) & 1) == 0 ? Poseidon.twoToOneWith(cur, s, _permute) : Poseidon.twoToOneWith(s, cur, _permute);
        }
        return Poseidon.toBytes(cur);
    }

    /// An open stream's fields (SPEC 18.2): what its leaf in the payer's stream tree hashes.
    struct StreamLeaf {
        uint32 payee;
        uint64 price;
        uint32 maxTicks;
        uint64 expiry;
        uint64 openedAt;
        uint32 settled;
        bytes32 head;
    }

    /// The payer's `ext` (SPEC 18.3) when its stream tree holds `s` at `slot` with the 16
    /// siblings `path` (leaf first) and its profile is `profile`: `H(root ‖ profile)`. Reverts on
    /// a non-canonical element.
    function streamExt(uint16 slot, StreamLeaf calldata s, bytes32[16] calldata path, bytes32 profile)
        public
        view
        returns (bytes32)
    {
        uint256[] memory e = new uint256[](10);
        e[0] = s.payee;
        e[1] = s.price;
        e[2] = s.maxTicks;
        e[3] = s.expiry;
        e[4] = s.openedAt;
        e[5] = s.settled;
        if (s.price >= Schnorr.P || s.expiry >= Schnorr.P || s.openedAt >= Schnorr.P) revert NonCanonical();
        uint256[4] memory h = _digest(s.head);
        for (uint256 i = 0; i < 4; i++) {
            e[6 + i] = h[i];
        }
        uint256[4] memory cur = Poseidon.hashNoPadWith(e, _permute);
        for (uint256 l = 0; l < 16; l++) {
            uint256[4] memory sib = _digest(path[l]);
            cur = ((slot >> l) & 1) == 0 ? Poseidon.twoToOneWith(cur, sib, _permute) : Poseidon.twoToOneWith(sib, cur, _permute);
        }
        uint256[4] memory p = _digest(profile);
        uint256[] memory x = new uint256[](8);
        for (uint256 i = 0; i < 4; i++) {
            x[i] = cur[i];
            x[4 + i] = p[i];
        }
        return Poseidon.toBytes(Poseidon.hashNoPadWith(x, _permute));
    }

    /// An account's profile opened (SPEC 18.3): its shares and lanes digests, and its passport
    /// as fields when it is an agent (SPEC 20.2; `agent = false`: the passport part is `ZERO`).
    struct Profile {
        bytes32 shares;
        bytes32 lanes;
        bool agent;
        uint32 owner;
        bytes32 policyDigest;
        bool revoked;
        uint64 windowId;
        uint64 spent;
    }

    /// An account's whole leaf and its 32 Merkle siblings.
    struct Leaf {
        uint256[5] w;
        uint64 balance;
        uint64 nonce;
        bytes32 ext;
        bytes32[32] siblings;
    }

    /// The profile digest (SPEC 18.3): `ZERO` when every part is, else `H(shares ‖ passport ‖
    /// lanes)` with `passport = H(owner, policyDigest, revoked, windowId, spent)` (SPEC 20.2)
    /// for an agent. Reverts on a non-canonical element.
    function profileOf(Profile calldata p) public view returns (bytes32) {
        uint256[4] memory passport;
        if (p.agent) {
            if (p.windowId >= Schnorr.P || p.spent >= Schnorr.P) revert NonCanonical();
            uint256[] memory e = new uint256[](8);
            e[0] = p.owner;
            uint256[4] memory d = _digest(p.policyDigest);
            for (uint256 i = 0; i < 4; i++) {
                e[1 + i] = d[i];
            }
            e[5] = p.revoked ? 1 : 0;
            e[6] = p.windowId;
            e[7] = p.spent;
            passport = Poseidon.hashNoPadWith(e, _permute);
        }
        if (!p.agent && p.shares == bytes32(0) && p.lanes == bytes32(0)) return bytes32(0);
        uint256[] memory x = new uint256[](12);
        uint256[4] memory s = _digest(p.shares);
        uint256[4] memory l = _digest(p.lanes);
        for (uint256 i = 0; i < 4; i++) {
            x[i] = s[i];
            x[4 + i] = passport[i];
            x[8 + i] = l[i];
        }
        return Poseidon.toBytes(Poseidon.hashNoPadWith(x, _permute));
    }

    /// A non-zero `ext` (SPEC 18.3) from its opening: `H(streamsRoot ‖ profile)`.
    function extOf(bytes32 streamsRoot, Profile calldata p) external view returns (bytes32) {
        uint256[4] memory r = _digest(streamsRoot);
        uint256[4] memory q = _digest(profileOf(p));
        uint256[] memory x = new uint256[](8);
        for (uint256 i = 0; i < 4; i++) {
            x[i] = r[i];
            x[4 + i] = q[i];
        }
        return Poseidon.toBytes(Poseidon.hashNoPadWith(x, _permute));
    }

    /// The state root in which account `index` has the leaf `a`.
    function leafRoot(uint32 index, Leaf calldata a) external view returns (bytes32) {
        return accountRoot(index, a.w, a.balance, a.nonce, a.ext, a.siblings);
    }

    /// An account's leaf fields but `ext`, and its 32 Merkle siblings.
    struct AccountProof {
        uint256[5] w;
        uint64 balance;
        uint64 nonce;
        bytes32[32] siblings;
    }

    /// The state root in which account `index` has the fields of `a` and the `ext` of a stream
    /// book holding `s` at `slot` ([`streamExt`]).
    function streamAccountRoot(
        uint32 index,
        AccountProof calldata a,
        uint16 slot,
        StreamLeaf calldata s,
        bytes32[16] calldata path,
        bytes32 profile
    ) external view returns (bytes32) {
        return accountRoot(index, a.w, a.balance, a.nonce, streamExt(slot, s, path, profile), a.siblings);
    }

    error NonCanonical();
    error PermutationFailed();

    /// One permutation through `permutation`, in place.
    function _permute(uint256[12] memory s) private view {
        address perm = permutation;
        bool ok;
        assembly ("memory-safe") {
            ok := staticcall(gas(), perm, s, 384, s, 384)
        }
        if (!ok) revert PermutationFailed();
    }

    function _hashNoPad(uint256[] memory input) private view returns (uint256[4] memory) {
        return Poseidon.hashNoPadWith(input, _permute);
    }

    function _digest(bytes32 b) private pure returns (uint256[4] memory d) {
        d = Poseidon.fromBytes(b);
        for (uint256 i = 0; i < 4; i++) {
            if (d[i] >= Schnorr.P) revert NonCanonical();
        }
    }

    /// Five big-endian u32 limbs of an address (SPEC 8.1).
    function _addressLimbs(address a) private pure returns (uint256[5] memory t) {
        uint256 v = uint160(a);
        for (uint256 i = 0; i < 5; i++) {
            t[i] = (v >> (32 * (4 - i))) & 0xFFFFFFFF;
        }
    }
}
