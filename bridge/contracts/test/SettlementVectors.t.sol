// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {RollupBase} from "./RollupBase.sol";
import {Rollup} from "../src/Rollup.sol";

/// The contract against the Rust reference (state/src/settlement.rs): the known answers of
/// docs/vectors/settlement-v1.json (SPEC 15.2, 15.3, 15.5), checked field by field and then
/// replayed end to end: the same deposits and forced withdrawal on a rollup at the vectors'
/// address give the same chain, committing the vectors' batch stores the vectors' statement,
/// and the vectors' payout proofs pay.
contract SettlementVectorsTest is RollupBase {
    string internal json;

    function setUp() public override {
        super.setUp();
        json = vm.readFile(string.concat(vm.projectRoot(), "/../docs/vectors/settlement-v1.json"));
    }

    function _at(string memory list, uint256 i, string memory field) internal pure returns (string memory) {
        return string.concat(".", list, "[", vm.toString(i), "]", bytes(field).length == 0 ? "" : ".", field);
    }

    function _count(string memory list) internal view returns (uint256 n) {
        while (vm.keyExistsJson(json, _at(list, n, ""))) n++;
    }

    // ------------------------------------------------------------------ SPEC 15.2

    function testPriorityChainVectors() public {
        uint256 n = _count("priority");
        assertTrue(n > 0, "no priority vectors");
        bytes32 chain;
        for (uint256 i = 0; i < n; i++) {
            uint64 serial = uint64(vm.parseJsonUint(json, _at("priority", i, "serial")));
            assertEq(serial, i, "serials from 0");
            bytes32 prev = vm.parseJsonBytes32(json, _at("priority", i, "prev"));
            assertEq(prev, chain, "prev is the previous next");
            bytes memory entry;
            string memory kind = vm.parseJsonString(json, _at("priority", i, "kind"));
            if (keccak256(bytes(kind)) == keccak256("deposit")) {
                address depositor = vm.parseJsonAddress(json, _at("priority", i, "depositor"));
                uint32 recipient = uint32(vm.parseJsonUint(json, _at("priority", i, "recipient")));
                uint64 amount = uint64(vm.parseJsonUint(json, _at("priority", i, "amount")));
                entry = abi.encodePacked(uint8(4), serial, depositor, recipient, amount);
                assertEq(entry.length, 41, "deposit entry length");
                _deposit(depositor, recipient, amount);
            } else {
                assertTrue(keccak256(bytes(kind)) == keccak256("forced"), "known kind");
                uint64 requestedAt = uint64(vm.parseJsonUint(json, _at("priority", i, "requestedAt")));
                bytes memory withdrawTx = vm.parseJsonBytes(json, _at("priority", i, "withdrawTx"));
                entry = abi.encodePacked(uint8(3), serial, requestedAt, withdrawTx);
                assertEq(entry.length, 146, "forced entry length");
                vm.warp(requestedAt);
                rollup.requestForcedWithdrawal{value: FEE}(withdrawTx);
            }
            assertEq(entry, vm.parseJsonBytes(json, _at("priority", i, "entry")), "entry bytes");
            chain = vm.parseJsonBytes32(json, _at("priority", i, "next"));
            assertEq(sha256(abi.encodePacked(prev, entry)), chain, "next = sha256(prev || entry)");
            assertEq(rollup.priorityHashAfter(i + 1), chain, "the contract's chain");
        }
    }

    // ------------------------------------------------------------------ SPEC 15.3

    function _statement(uint256 k) internal view returns (Rollup.BatchStatement memory s) {
        s.chainId = uint64(vm.parseJsonUint(json, _at("statement", k, "chainId")));
        s.rollup = vm.parseJsonAddress(json, _at("statement", k, "rollup"));
        s.batchNumber = uint64(vm.parseJsonUint(json, _at("statement", k, "batchNumber")));
        s.oldRoot = vm.parseJsonBytes32(json, _at("statement", k, "oldRoot"));
        s.newRoot = vm.parseJsonBytes32(json, _at("statement", k, "newRoot"));
        s.diffHash = vm.parseJsonBytes32(json, _at("statement", k, "diffHash"));
        s.payoutRoot = vm.parseJsonBytes32(json, _at("statement", k, "payoutRoot"));
        s.firstPriorityOp = uint64(vm.parseJsonUint(json, _at("statement", k, "firstPriorityOp")));
        s.nextPriorityOp = uint64(vm.parseJsonUint(json, _at("statement", k, "nextPriorityOp")));
        s.priorityHashBefore = vm.parseJsonBytes32(json, _at("statement", k, "priorityHashBefore"));
        s.priorityHashAfter = vm.parseJsonBytes32(json, _at("statement", k, "priorityHashAfter"));
        s.timestamp = uint64(vm.parseJsonUint(json, _at("statement", k, "timestamp")));
    }

    function testStatementVectors() public view {
        uint256 n = _count("statement");
        assertTrue(n > 0, "no statement vectors");
        for (uint256 k = 0; k < n; k++) {
            Rollup.BatchStatement memory s = _statement(k);
            bytes memory encoded = vm.parseJsonBytes(json, _at("statement", k, "encoded"));
            bytes32 hash = vm.parseJsonBytes32(json, _at("statement", k, "hash"));
            assertEq(encoded.length, 252, "252 bytes");
            assertEq(_encode(s), encoded, "encoding");
            assertEq(sha256(encoded), hash, "sha256 of the encoding");
            assertEq(rollup.statementHash(s), hash, "statementHash");
            // The eight public inputs: big-endian 32-bit words of the digest, in order.
            if (vm.keyExistsJson(json, _at("statement", k, "publicWords"))) {
                for (uint256 w = 0; w < 8; w++) {
                    uint256 word = vm.parseJsonUint(json, string.concat(_at("statement", k, "publicWords"), "[", vm.toString(w), "]"));
                    assertEq(word, uint32(uint256(hash) >> (224 - 32 * w)), "public word");
                }
            }
        }
    }

    // ------------------------------------------------------------------ SPEC 15.5

    function _payouts(uint256 k)
        internal
        view
        returns (uint64 batch, uint64[] memory from, address[] memory to, uint64[] memory amount)
    {
        batch = uint64(vm.parseJsonUint(json, _at("payouts", k, "batch")));
        string memory list = string.concat(_at("payouts", k, "payouts"));
        uint256 n;
        while (vm.keyExistsJson(json, string.concat(list, "[", vm.toString(n), "]"))) n++;
        from = new uint64[](n);
        to = new address[](n);
        amount = new uint64[](n);
        for (uint256 i = 0; i < n; i++) {
            string memory p = string.concat(list, "[", vm.toString(i), "]");
            from[i] = uint64(vm.parseJsonUint(json, string.concat(p, ".from")));
            to[i] = vm.parseJsonAddress(json, string.concat(p, ".to"));
            amount[i] = uint64(vm.parseJsonUint(json, string.concat(p, ".amount")));
        }
    }

    function _proofOf(uint256 k, uint256 i) internal view returns (bytes32[] memory) {
        string memory key = string.concat(_at("payouts", k, "proofs"), "[", vm.toString(i), "]");
        return vm.parseJsonBytes32Array(json, key);
    }

    function testPayoutVectors() public view {
        uint256 batches = _count("payouts");
        assertTrue(batches > 0, "no payout vectors");
        for (uint256 k = 0; k < batches; k++) {
            (uint64 batch, uint64[] memory from, address[] memory to, uint64[] memory amount) = _payouts(k);
            bytes32[] memory leaves = vm.parseJsonBytes32Array(json, _at("payouts", k, "leaves"));
            assertEq(leaves.length, from.length, "one leaf per payout");
            for (uint256 i = 0; i < from.length; i++) {
                assertEq(rollup.payoutLeaf(batch, uint64(i), from[i], to[i], amount[i]), leaves[i], "payoutLeaf");
                assertEq(_leaf(batch, uint64(i), from[i], to[i], amount[i]), leaves[i], "packed leaf");
                bytes32[] memory proof = _proofOf(k, i);
                bytes32[] memory mine = _proof(leaves, i);
                assertEq(proof.length, mine.length, "proof depth");
                for (uint256 l = 0; l < proof.length; l++) {
                    assertEq(proof[l], mine[l], "proof sibling");
                }
            }
            assertEq(_root(leaves), vm.parseJsonBytes32(json, _at("payouts", k, "root")), "root");
        }
    }

    // ------------------------------------------------------------------ end to end

    /// The 13-byte state diff whose sha256 is the vectors' diffHash (state/tests/spec_vectors.rs:
    /// `diff_hash(&[1, 0, ..., 0])`); a "pubdata" field in the file takes precedence.
    function _pubdata(uint256 k, bytes32 diffHash) internal view returns (bytes memory pubdata) {
        if (vm.keyExistsJson(json, _at("statement", k, "pubdata"))) {
            pubdata = vm.parseJsonBytes(json, _at("statement", k, "pubdata"));
        } else {
            pubdata = hex"01000000000000000000000000";
        }
        assertEq(sha256(pubdata), diffHash, "pubdata of the vectors' diffHash");
    }

    /// Replays the vectors on a rollup placed at their address: the queue, then empty batches up
    /// to the vectors' batch (the last one ending at its old root), then the vectors' batch,
    /// whose stored statement must be the vectors' hash; finalized, every payout claims with the
    /// vectors' proof.
    function testVectorsEndToEnd() public {
        Rollup.BatchStatement memory v = _statement(0);
        assertEq(v.chainId, block.chainid, "vectors for this chain id");
        _placeRollupAt(v.rollup);
        testPriorityChainVectors();
        assertEq(rollup.priorityQueueLength(), v.nextPriorityOp, "the vectors' queue");
        assertEq(v.firstPriorityOp, 0, "vectors' batch starts the queue");

        vm.warp(v.timestamp);
        while (rollup.lastCommittedBatch() + 1 < v.batchNumber) {
            Rollup.BatchHeader memory e = _next(keccak256(abi.encode("empty", rollup.lastCommittedBatch())), 0);
            if (e.batchNumber + 1 == v.batchNumber) e.newRoot = v.oldRoot;
            _finalize(_commit(e, ""));
        }
        Rollup.BatchHeader memory h = Rollup.BatchHeader({
            batchNumber: v.batchNumber,
            newRoot: v.newRoot,
            payoutRoot: v.payoutRoot,
            nextPriorityOp: v.nextPriorityOp,
            timestamp: v.timestamp
        });
        bytes memory pubdata = _pubdata(0, v.diffHash);
        (uint64 batch, uint64[] memory from, address[] memory to, uint64[] memory amount) = _payouts(0);
        bytes memory list;
        for (uint256 i = 0; i < from.length; i++) {
            list = bytes.concat(list, _entry(from[i], to[i], amount[i]));
        }
        assertEq(rollup.payoutRoot(v.batchNumber, list), v.payoutRoot, "the vectors' payout list has their root");
        vm.prank(operator);
        rollup.commitBatch(h, pubdata, list);
        bytes32 hash = vm.parseJsonBytes32(json, _at("statement", 0, "hash"));
        assertEq(rollup.batchStatement(v.batchNumber), hash, "the contract commits the vectors' statement");
        rollup.finalizeBatch(v, _attest(hash));

        assertEq(batch, v.batchNumber, "payouts of the vectors' batch");
        for (uint256 i = 0; i < from.length; i++) {
            uint256 before = token.balanceOf(to[i]);
            rollup.claimWithdrawal(batch, uint64(i), from[i], to[i], amount[i], _proofOf(0, i));
            assertEq(token.balanceOf(to[i]) - before, amount[i], "paid");
        }
    }

    /// Moves the freshly deployed rollup to `at`: same code (immutables included) and the same
    /// storage slots (the constructor writes only the first few; the mappings are still empty).
    function _placeRollupAt(address at) internal {
        vm.etch(at, address(rollup).code);
        for (uint256 slot = 0; slot < 16; slot++) {
            vm.store(at, bytes32(slot), vm.load(address(rollup), bytes32(slot)));
        }
        rollup = Rollup(at);
        assertEq(rollup.committedRoot(), GENESIS, "storage copied");
        assertEq(rollup.operator(), operator, "roles copied");
    }
}
