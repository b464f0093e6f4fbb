// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Base} from "./Base.sol";
import {Rollup} from "../src/Rollup.sol";
import {AttestationVerifier} from "../src/AttestationVerifier.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";
import {IERC20} from "../src/IERC20.sol";
import {IVerifier} from "../src/IVerifier.sol";
import {PoseidonPermutation} from "../src/PoseidonPermutation.sol";

/// Deployment and helpers shared by the Rollup tests.
abstract contract RollupBase is Base {
    uint256 internal constant ATTESTER_KEY = 0xA77E57;
    uint64 internal constant DEADLINE_PERIOD = 3 days;
    /// `Rollup.FORCED_REQUEST_FEE`, restated (a change of the fee must show here too).
    uint256 internal constant FEE = 0.001 ether;
    bytes32 internal constant GENESIS = keccak256("genesis root");

    address internal admin = address(0xAD);
    address internal operator = address(0x0B);
    address internal guardian = address(0x6A);
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);

    TestStablecoin internal token;
    AttestationVerifier internal verifier;
    Rollup internal rollup;
    /// Deployed once, before any Rollup, as on a real chain (`ExodusVerifier` pins its code).
    address internal permutation;

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        token = new TestStablecoin(address(this));
        verifier = new AttestationVerifier(vm.addr(ATTESTER_KEY));
        permutation = address(new PoseidonPermutation());
        rollup = _deployRollup(IERC20(address(token)));
    }

    function _deployRollup(IERC20 t) internal returns (Rollup) {
        return new Rollup(
            t, IVerifier(address(verifier)), admin, operator, guardian, GENESIS, DEADLINE_PERIOD, permutation
        );
    }

    function _deposit(address who, uint32 recipient, uint64 amount) internal returns (uint64 serial) {
        token.mint(who, amount);
        vm.prank(who);
        token.approve(address(rollup), amount);
        vm.prank(who);
        serial = rollup.deposit(recipient, amount);
    }

    /// A header for the next batch, consuming priority ops up to `next`, stamped with the current
    /// block time (always in range: batches are committed in time order).
    function _next(bytes32 newRoot, uint64 next) internal view returns (Rollup.BatchHeader memory h) {
        h.batchNumber = rollup.lastCommittedBatch() + 1;
        h.newRoot = newRoot;
        h.nextPriorityOp = next;
        h.timestamp = uint64(block.timestamp);
    }

    /// The statement `commitBatch(h, pubdata)` must compute now, assembled by the test from the
    /// contract's public storage and the SPEC 15.3 definitions, not from the contract's code.
    function _expected(Rollup.BatchHeader memory h, bytes memory pubdata)
        internal
        view
        returns (Rollup.BatchStatement memory s)
    {
        uint64 first = rollup.nextPriorityOpCommitted();
        s.chainId = uint64(block.chainid);
        s.rollup = address(rollup);
        s.batchNumber = h.batchNumber;
        s.oldRoot = rollup.committedRoot();
        s.newRoot = h.newRoot;
        s.diffHash = sha256(pubdata);
        s.payoutRoot = h.payoutRoot;
        s.firstPriorityOp = first;
        s.nextPriorityOp = h.nextPriorityOp;
        s.priorityHashBefore = rollup.priorityHashAfter(first);
        s.priorityHashAfter = rollup.priorityHashAfter(h.nextPriorityOp);
        s.timestamp = h.timestamp;
    }

    /// The 252 packed bytes of SPEC 15.3, field by field.
    function _encode(Rollup.BatchStatement memory s) internal pure returns (bytes memory b) {
        b = bytes.concat(bytes8(s.chainId), bytes20(s.rollup), bytes8(s.batchNumber), s.oldRoot, s.newRoot);
        b = bytes.concat(b, s.diffHash, s.payoutRoot, bytes8(s.firstPriorityOp), bytes8(s.nextPriorityOp));
        b = bytes.concat(b, s.priorityHashBefore, s.priorityHashAfter, bytes8(s.timestamp));
        assert(b.length == 252);
    }

    function _hash(Rollup.BatchStatement memory s) internal pure returns (bytes32) {
        return sha256(_encode(s));
    }

    function _copy(Rollup.BatchStatement memory s) internal pure returns (Rollup.BatchStatement memory) {
        return abi.decode(abi.encode(s), (Rollup.BatchStatement));
    }

    /// Commits `h` as the operator and returns the statement, after checking that the contract
    /// stored the hash of the independently built one.
    function _commit(Rollup.BatchHeader memory h, bytes memory pubdata)
        internal
        returns (Rollup.BatchStatement memory s)
    {
        return _commitWith(h, pubdata, "");
    }

    /// `_commit` with the batch's payout list (SPEC 15.5; its root must be `h.payoutRoot`).
    function _commitWith(Rollup.BatchHeader memory h, bytes memory pubdata, bytes memory payouts)
        internal
        returns (Rollup.BatchStatement memory s)
    {
        s = _expected(h, pubdata);
        vm.prank(operator);
        rollup.commitBatch(h, pubdata, payouts);
        assertEq(rollup.batchStatement(h.batchNumber), _hash(s), "stored statement");
    }

    /// One 36-byte entry of a payout list: uint64 from ‖ address to ‖ uint64 amount.
    function _entry(uint64 from, address to, uint64 amount) internal pure returns (bytes memory e) {
        e = abi.encodePacked(from, to, amount);
        assert(e.length == 36);
    }

    function _attest(bytes32 statement) internal returns (bytes memory) {
        return _sign(ATTESTER_KEY, address(rollup), statement);
    }

    function _sign(uint256 key, address rollupAddr, bytes32 statement) internal returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, verifier.attestationDigest(rollupAddr, statement));
        return abi.encodePacked(r, s, v);
    }

    function _finalize(Rollup.BatchStatement memory s) internal {
        rollup.finalizeBatch(s, _attest(_hash(s)));
    }

    // ---- the priority chain of SPEC 15.2, built independently of the contract

    function _depositStep(bytes32 prev, uint64 serial, address depositor, uint32 recipient, uint64 amount)
        internal
        pure
        returns (bytes32)
    {
        bytes memory m = abi.encodePacked(prev, uint8(4), serial, depositor, recipient, amount);
        assert(m.length == 73);
        return sha256(m);
    }

    function _forcedStep(bytes32 prev, uint64 serial, uint64 requestedAt, bytes memory withdrawTx)
        internal
        pure
        returns (bytes32)
    {
        bytes memory m = abi.encodePacked(prev, uint8(3), serial, requestedAt, withdrawTx);
        assert(m.length == 178);
        return sha256(m);
    }

    // ---- the payout tree of SPEC 15.5, built independently of the contract

    function _leaf(uint64 batch, uint64 index, uint64 from, address to, uint64 amount) internal pure returns (bytes32) {
        bytes memory m = abi.encodePacked(batch, index, from, to, amount);
        assert(m.length == 52);
        return sha256(m);
    }

    function _level0(bytes32[] memory leaves) private pure returns (bytes32[] memory level) {
        uint256 width = 1;
        while (width < leaves.length) width *= 2;
        level = new bytes32[](width);
        for (uint256 i = 0; i < leaves.length; i++) level[i] = leaves[i];
    }

    function _up(bytes32[] memory level, bool keccak) private pure returns (bytes32[] memory upper) {
        upper = new bytes32[](level.length / 2);
        for (uint256 i = 0; i < upper.length; i++) {
            bytes memory pair = abi.encodePacked(level[2 * i], level[2 * i + 1]);
            upper[i] = keccak ? keccak256(pair) : sha256(pair);
        }
    }

    function _root(bytes32[] memory leaves) internal pure returns (bytes32) {
        return _rootWith(leaves, false);
    }

    function _proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory) {
        return _proofWith(leaves, index, false);
    }

    /// `keccak` builds the tree of the previous version (keccak inner nodes), for the tests that
    /// show such proofs no longer pay.
    function _rootWith(bytes32[] memory leaves, bool keccak) internal pure returns (bytes32) {
        if (leaves.length == 0) return bytes32(0);
        bytes32[] memory level = _level0(leaves);
        while (level.length > 1) level = _up(level, keccak);
        return level[0];
    }

    function _proofWith(bytes32[] memory leaves, uint256 index, bool keccak)
        internal
        pure
        returns (bytes32[] memory proof)
    {
        bytes32[] memory level = _level0(leaves);
        uint256 depth = 0;
        while ((uint256(1) << depth) < level.length) depth++;
        proof = new bytes32[](depth);
        for (uint256 l = 0; l < depth; l++) {
            proof[l] = level[(index >> l) ^ 1];
            level = _up(level, keccak);
        }
    }

    /// A 129-byte L2 withdraw transaction (SPEC 9) with a dummy signature.
    function _withdrawTx(uint32 from, address toL1, uint64 amount) internal pure returns (bytes memory) {
        bytes memory b = abi.encodePacked(
            uint8(3), _le32(from), toL1, _le64(amount), _le64(1), _le64(0), _le64(2_000_000_000), new bytes(72)
        );
        return b;
    }

    function _le32(uint32 v) internal pure returns (bytes4) {
        return bytes4(uint32(_rev(v, 4)));
    }

    function _le64(uint64 v) internal pure returns (bytes8) {
        return bytes8(uint64(_rev(v, 8)));
    }

    function _rev(uint256 v, uint256 n) private pure returns (uint256 r) {
        for (uint256 i = 0; i < n; i++) {
            r = (r << 8) | (v & 0xff);
            v >>= 8;
        }
    }
}
