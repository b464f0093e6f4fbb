// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Base} from "./Base.sol";
import {Poseidon} from "../src/Poseidon.sol";

/// forge's logGas(string, uint256), called as forge-std does (a static call to the
/// console address, which has no code).
function logGas(string memory label, uint256 value) view {
    (bool ok,) = address(0x000000000000000000636F6e736F6c652e6c6f67).staticcall(
        abi.encodeWithSignature("log(string,uint256)", label, value)
    );
    ok;
}

/// The L1 Poseidon against the Rust reference (state/src/hash.rs, plonky2 1.1.0): the known
/// answers of docs/vectors/state-v1.json (`hash_no_pad`, `two_to_one`, account leaves, Merkle
/// proofs of the state tree), and its gas: one permutation and one depth-32 Merkle path, what an
/// exit from the finalized state would pay on L1 (issue 12, exodus).
contract PoseidonTest is Base {
    string internal json;

    function setUp() public {
        json = vm.readFile(string.concat(vm.projectRoot(), "/../docs/vectors/state-v1.json"));
    }

    function _key(string memory list, uint256 i, string memory field) internal pure returns (string memory) {
        return string.concat(".", list, "[", vm.toString(i), "]", bytes(field).length == 0 ? "" : ".", field);
    }

    function _count(string memory list) internal view returns (uint256 n) {
        while (vm.keyExistsJson(json, _key(list, n, ""))) n++;
    }

    function testHashNoPadVectors() public view {
        uint256 n = _count("poseidon.hash_no_pad");
        assertEq(n, 2, "two hash_no_pad vectors");
        for (uint256 i = 0; i < n; i++) {
            uint256[] memory input = vm.parseJsonUintArray(json, _key("poseidon.hash_no_pad", i, "inputs"));
            bytes32 want = vm.parseJsonBytes32(json, _key("poseidon.hash_no_pad", i, "output"));
            assertEq(Poseidon.toBytes(Poseidon.hashNoPad(input)), want, "hash_no_pad");
        }
    }

    function testTwoToOneVector() public view {
        string memory at = ".poseidon.two_to_one[0]";
        uint256[4] memory l = Poseidon.fromBytes(vm.parseJsonBytes32(json, string.concat(at, ".left")));
        uint256[4] memory r = Poseidon.fromBytes(vm.parseJsonBytes32(json, string.concat(at, ".right")));
        bytes32 want = vm.parseJsonBytes32(json, string.concat(at, ".output"));
        assertEq(Poseidon.toBytes(Poseidon.twoToOne(l, r)), want, "two_to_one");
        // Order matters.
        assertTrue(Poseidon.toBytes(Poseidon.twoToOne(r, l)) != want, "two_to_one is not symmetric");
    }

    function testPermutationGas() public view {
        uint256[12] memory s;
        uint256 g = gasleft();
        Poseidon.permute(s);
        logGas("gas: one permutation", g - gasleft());
        uint256[4] memory a;
        g = gasleft();
        Poseidon.twoToOne(a, a);
        logGas("gas: two_to_one", g - gasleft());
    }

    function testDigestBytesRoundTrip() public pure {
        bytes32 b = 0x0123456789abcdef00112233445566778899aabbccddeeff0102030405060708;
        assertEq(Poseidon.toBytes(Poseidon.fromBytes(b)), b, "round trip");
        // Little-endian elements: the first byte is the low byte of element 0.
        assertEq(Poseidon.fromBytes(b)[0], 0xefcdab8967452301, "element 0");
    }

    function testAccountLeafVectors() public view {
        uint256 n = _count("leaves");
        assertTrue(n > 0, "no leaf vectors");
        for (uint256 i = 0; i < n; i++) {
            uint256[] memory elements = vm.parseJsonUintArray(json, _key("leaves", i, "elements"));
            bytes32 want = vm.parseJsonBytes32(json, _key("leaves", i, "leaf"));
            assertEq(Poseidon.toBytes(Poseidon.hashNoPad(elements)), want, "account leaf");
        }
    }

    /// The root of a leaf's Merkle path in the state tree (SPEC 4): at level `l` the node is
    /// `two_to_one(node, sibling)` when bit `l` of the index is 0, else `two_to_one(sibling, node)`.
    function _root(bytes32 leaf, uint256 index, bytes32[] memory siblings) internal view returns (bytes32) {
        uint256[4] memory node = Poseidon.fromBytes(leaf);
        for (uint256 l = 0; l < siblings.length; l++) {
            uint256[4] memory sib = Poseidon.fromBytes(siblings[l]);
            node = (index >> l) & 1 == 0 ? Poseidon.twoToOne(node, sib) : Poseidon.twoToOne(sib, node);
        }
        return Poseidon.toBytes(node);
    }

    function testMerkleProofVectors() public view {
        uint256 n = _count("tree.proofs");
        assertTrue(n > 0, "no proof vectors");
        for (uint256 i = 0; i < n; i++) {
            uint256 index = vm.parseJsonUint(json, _key("tree.proofs", i, "index"));
            bytes32 leaf = vm.parseJsonBytes32(json, _key("tree.proofs", i, "leaf"));
            bytes32 root = vm.parseJsonBytes32(json, _key("tree.proofs", i, "root"));
            bytes32[] memory siblings = vm.parseJsonBytes32Array(json, _key("tree.proofs", i, "siblings"));
            assertEq(siblings.length, 32, "depth 32");
            uint256 before = gasleft();
            bytes32 got = _root(leaf, index, siblings);
            uint256 used = before - gasleft();
            assertEq(got, root, "Merkle root");
            if (i == 0) {
                logGas("gas: depth-32 Merkle path (32 two_to_one)", used);
            }
            // Another index or a changed sibling gives another root (an empty slot next to an
            // empty sibling is the one case where the lowest bit cannot matter).
            if (leaf != siblings[0]) {
                assertTrue(_root(leaf, index ^ 1, siblings) != root, "index bound");
            }
            siblings[5] = bytes32(uint256(siblings[5]) ^ 1);
            assertTrue(_root(leaf, index, siblings) != root, "siblings bound");
        }
        uint256[12] memory s;
        uint256 g = gasleft();
        Poseidon.permute(s);
        logGas("gas: one permutation", g - gasleft());
    }
}
