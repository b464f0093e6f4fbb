// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @notice What the Rollup asks before it finalizes a batch. `statement` is the batch statement
/// (docs/SPEC.md, "L1 contract": keccak256 of the ABI-encoded batch header and the keccak of the
/// batch's pubdata); `proof` is whatever the implementation needs to be convinced of it.
///
/// Stage 0 (DESIGN.md): `AttestationVerifier`, which checks the operator's signature over the
/// statement and verifies no validity proof. Stage 2: an on-chain verifier of the wrapped batch
/// proof behind the same interface, so the switch is `Rollup.announceChange(Verifier, ..)` then,
/// after `Rollup.changeDelay`, `Rollup.applyChange(Verifier)`.
interface IVerifier {
    /// @return true iff `proof` convinces this verifier of `statement` for the calling rollup.
    function verifyBatch(bytes32 statement, bytes calldata proof) external view returns (bool);
}
