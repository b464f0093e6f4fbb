// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {RollupBase} from "./RollupBase.sol";
import {Schnorr} from "../src/Schnorr.sol";
import {ExodusVerifier} from "../src/ExodusVerifier.sol";

/// Reads the `exodus` section of docs/vectors/state-v1.json (written by the Rust reference,
/// state/tests/spec_vectors.rs): exit authorisations signed by the Rust signer with the L1
/// verifier's hints, and every account of the vectors' final state with its Merkle proof.
abstract contract ExodusVectors is RollupBase {
    string internal json;

    /// An account of the vectors' state, as `exit` takes it.
    struct VectorAccount {
        uint32 index;
        uint256[5] w;
        uint64 balance;
        uint64 nonce;
        bytes32 ext;
        bytes32[32] siblings;
        /// The opening of `ext` (zero for a leaf whose `ext` is zero).
        bytes32 streamsRoot;
        ExodusVerifier.Profile profile;
    }

    /// An open stream of the vectors' exodus state, as `exitStream` takes it.
    struct VectorStream {
        uint32 payer;
        uint16 slot;
        ExodusVerifier.StreamLeaf leaf;
        bytes32[16] path;
        bytes32 profile;
        uint64 escrow;
    }

    function _loadVectors() internal {
        json = vm.readFile(string.concat(vm.projectRoot(), "/../docs/vectors/state-v1.json"));
    }

    function _five(string memory key) internal view returns (uint256[5] memory out) {
        uint256[] memory v = vm.parseJsonUintArray(json, key);
        assertEq(v.length, 5, key);
        for (uint256 i = 0; i < 5; i++) {
            out[i] = v[i];
        }
    }

    function _four(string memory key) internal view returns (uint256[4] memory out) {
        uint256[] memory v = vm.parseJsonUintArray(json, key);
        assertEq(v.length, 4, key);
        for (uint256 i = 0; i < 4; i++) {
            out[i] = v[i];
        }
    }

    function _authCount() internal view returns (uint256 n) {
        while (vm.keyExistsJson(json, string.concat(".exodus.authorisations[", vm.toString(n), "]"))) n++;
    }

    /// Authorisation `i` (0: operator, 1: alice, 2: bob): the key and its signature with hints.
    function _auth(uint256 i) internal view returns (uint256[5] memory w, Schnorr.Signature memory sig) {
        return _signed(string.concat(".exodus.authorisations[", vm.toString(i), "]"));
    }

    /// Owner binding `i` (0: operator, 1: alice, 2: bob): the key and its signature, with
    /// hints, of the binding to `_bindingOwner()` (SPEC 20.9).
    function _binding(uint256 i) internal view returns (uint256[5] memory w, Schnorr.Signature memory sig) {
        return _signed(string.concat(".exodus.owner_binding.signatures[", vm.toString(i), "]"));
    }

    /// The key and the signature with hints of the vector entry at `at`.
    function _signed(string memory at) internal view returns (uint256[5] memory w, Schnorr.Signature memory sig) {
        w = _five(string.concat(at, ".w"));
        sig.e = _four(string.concat(at, ".e"));
        sig.sLo = vm.parseJsonUint(json, string.concat(at, ".s_lo"));
        sig.sHi = vm.parseJsonUint(json, string.concat(at, ".s_hi"));
        sig.qx = _five(string.concat(at, ".qx"));
        sig.qy = _five(string.concat(at, ".qy"));
        sig.wR = _five(string.concat(at, ".w_r"));
    }

    /// The L1 address every vector owner binding names.
    function _bindingOwner() internal view returns (address) {
        return vm.parseJsonAddress(json, ".exodus.owner_binding.owner");
    }

    /// The L1 address every vector authorisation names.
    function _authorisedTo() internal view returns (address) {
        return vm.parseJsonAddress(json, ".exodus.to");
    }

    function _message() internal view returns (uint256[4] memory) {
        return _four(".exodus.message_elements");
    }

    function _exodusRoot() internal view returns (bytes32) {
        return vm.parseJsonBytes32(json, ".exodus.root");
    }

    function _accountCount() internal view returns (uint256 n) {
        while (vm.keyExistsJson(json, string.concat(".exodus.accounts[", vm.toString(n), "]"))) n++;
    }

    function _account(uint256 i) internal view returns (VectorAccount memory a) {
        string memory at = string.concat(".exodus.accounts[", vm.toString(i), "]");
        a.index = uint32(vm.parseJsonUint(json, string.concat(at, ".index")));
        a.w = _five(string.concat(at, ".w"));
        a.balance = uint64(vm.parseJsonUint(json, string.concat(at, ".balance")));
        a.nonce = uint64(vm.parseJsonUint(json, string.concat(at, ".nonce")));
        a.ext = vm.parseJsonBytes32(json, string.concat(at, ".ext"));
        bytes32[] memory s = vm.parseJsonBytes32Array(json, string.concat(at, ".siblings"));
        assertEq(s.length, 32, "32 siblings");
        for (uint256 l = 0; l < 32; l++) {
            a.siblings[l] = s[l];
        }
        a.streamsRoot = vm.parseJsonBytes32(json, string.concat(at, ".streams_root"));
        a.profile.shares = vm.parseJsonBytes32(json, string.concat(at, ".shares"));
        a.profile.lanes = vm.parseJsonBytes32(json, string.concat(at, ".lanes"));
        string memory p = string.concat(at, ".passport");
        a.profile.agent = vm.parseJsonBool(json, string.concat(p, ".agent"));
        a.profile.owner = uint32(vm.parseJsonUint(json, string.concat(p, ".owner")));
        a.profile.policyDigest = vm.parseJsonBytes32(json, string.concat(p, ".policy_digest"));
        a.profile.revoked = vm.parseJsonBool(json, string.concat(p, ".revoked"));
        a.profile.windowId = uint64(vm.parseJsonUint(json, string.concat(p, ".window_id")));
        a.profile.spent = uint64(vm.parseJsonUint(json, string.concat(p, ".spent")));
    }

    /// Account `i`'s whole leaf, as `exitOpened` takes an agent's owner.
    function _leaf(uint256 i) internal view returns (ExodusVerifier.Leaf memory l) {
        VectorAccount memory a = _account(i);
        l.w = a.w;
        l.balance = a.balance;
        l.nonce = a.nonce;
        l.ext = a.ext;
        l.siblings = a.siblings;
    }

    function _streamCount() internal view returns (uint256 n) {
        while (vm.keyExistsJson(json, string.concat(".exodus.streams[", vm.toString(n), "]"))) n++;
    }

    function _stream(uint256 i) internal view returns (VectorStream memory s) {
        string memory at = string.concat(".exodus.streams[", vm.toString(i), "]");
        s.payer = uint32(vm.parseJsonUint(json, string.concat(at, ".payer")));
        s.slot = uint16(vm.parseJsonUint(json, string.concat(at, ".slot")));
        s.leaf.payee = uint32(vm.parseJsonUint(json, string.concat(at, ".payee")));
        s.leaf.price = uint64(vm.parseJsonUint(json, string.concat(at, ".price")));
        s.leaf.maxTicks = uint32(vm.parseJsonUint(json, string.concat(at, ".max_ticks")));
        s.leaf.expiry = uint64(vm.parseJsonUint(json, string.concat(at, ".expiry")));
        s.leaf.openedAt = uint64(vm.parseJsonUint(json, string.concat(at, ".opened_at")));
        s.leaf.settled = uint32(vm.parseJsonUint(json, string.concat(at, ".settled")));
        s.leaf.head = vm.parseJsonBytes32(json, string.concat(at, ".head"));
        bytes32[] memory p = vm.parseJsonBytes32Array(json, string.concat(at, ".path"));
        assertEq(p.length, 16, "16 siblings");
        for (uint256 l = 0; l < 16; l++) {
            s.path[l] = p[l];
        }
        s.profile = vm.parseJsonBytes32(json, string.concat(at, ".profile"));
        s.escrow = uint64(vm.parseJsonUint(json, string.concat(at, ".escrow")));
    }
}
