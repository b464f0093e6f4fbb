// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Poseidon} from "./Poseidon.sol";

/// @title PoseidonPermutation: the Poseidon permutation as a contract of its own.
/// @notice Calldata: twelve 32-byte words below p; returns the permuted twelve. Exists so that
/// contracts near the 24 KiB code limit (`ExodusVerifier`) call one copy of the permutation's
/// code instead of embedding it (about 1,000 gas of call overhead per permutation).
contract PoseidonPermutation {
    fallback(bytes calldata input) external returns (bytes memory) {
        if (input.length != 384) revert();
        uint256[12] memory s = abi.decode(input, (uint256[12]));
        Poseidon.permute(s);
        return abi.encode(s);
    }
}
