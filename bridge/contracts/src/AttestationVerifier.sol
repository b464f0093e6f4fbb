// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {IVerifier} from "./IVerifier.sol";

/// @title AttestationVerifier: stage 0 of L1 verification. NOT a validity-proof verifier.
/// @notice Accepts a batch iff a fixed attester (the operator's attestation key) signed its
/// statement. The chain then trusts the operator's word that the batch proof verified off chain
/// (the node refuses to commit a batch whose proof does not verify; anyone can check the proof,
/// whose hash is in the statement). Replace with an on-chain proof verifier (stage 2) through
/// `Rollup.setVerifier`.
///
/// Signed digest (docs/SPEC.md, "L1 contract"):
///   keccak256(abi.encode(ATTESTATION_TAG, block.chainid, rollup, statement))
/// where `rollup` is the caller (the Rollup contract), signed as a raw 32-byte digest by
/// secp256k1 ECDSA. The proof is the 65-byte signature r || s || v (v = 27 or 28, low s).
contract AttestationVerifier is IVerifier {
    bytes32 public constant ATTESTATION_TAG = keccak256("rollup.v1.batch-attestation");
    /// secp256k1n / 2: signatures with a higher s are malleated copies and are refused.
    uint256 private constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// The key whose signature finalizes batches.
    address public immutable attester;

    error ZeroAttester();

    constructor(address attester_) {
        if (attester_ == address(0)) revert ZeroAttester();
        attester = attester_;
    }

    /// The digest the attester signs for `statement` on behalf of `rollup`.
    function attestationDigest(address rollup, bytes32 statement) public view returns (bytes32) {
        return keccak256(abi.encode(ATTESTATION_TAG, block.chainid, rollup, statement));
    }

    /// @inheritdoc IVerifier
    function verifyBatch(bytes32 statement, bytes calldata proof) external view returns (bool) {
        if (proof.length != 65) return false;
        bytes32 r = bytes32(proof[0:32]);
        bytes32 s = bytes32(proof[32:64]);
        uint8 v = uint8(proof[64]);
        if (uint256(s) > HALF_N || (v != 27 && v != 28)) return false;
        address signer = ecrecover(attestationDigest(msg.sender, statement), v, r, s);
        return signer != address(0) && signer == attester;
    }
}
