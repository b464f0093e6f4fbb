// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {RollupBase} from "./RollupBase.sol";
import {Rollup} from "../src/Rollup.sol";
import {IERC20} from "../src/IERC20.sol";
import {IVerifier} from "../src/IVerifier.sol";
import {AttestationVerifier} from "../src/AttestationVerifier.sol";
import {ReentrancyGuard} from "../src/ReentrancyGuard.sol";

contract RollupTest is RollupBase {
    event Deposit(
        uint64 indexed serial,
        address indexed depositor,
        uint32 indexed recipient,
        uint64 amount,
        uint64 deadline,
        bytes32 priorityHash
    );
    event BatchFinalized(uint64 indexed batchNumber, bytes32 indexed statement, bytes32 newRoot, bytes32 withdrawalsRoot);

    // ------------------------------------------------------------------ deposits and the queue

    function testDepositQueuesAndEmitsEverything() public {
        token.mint(alice, 5_000_000);
        vm.prank(alice);
        token.approve(address(rollup), 5_000_000);
        bytes32 entry = keccak256(abi.encode(uint8(4), uint64(0), alice, uint32(7), uint64(1_500_000)));
        bytes32 expectedHash = keccak256(abi.encode(bytes32(0), entry));
        vm.expectEmit(true, true, true, true);
        emit Deposit(0, alice, 7, 1_500_000, uint64(block.timestamp) + DEADLINE_PERIOD, expectedHash);
        vm.prank(alice);
        uint64 serial = rollup.deposit(7, 1_500_000);
        assertEq(serial, 0, "serial");
        assertEq(rollup.priorityQueueLength(), 1, "queue length");
        assertEq(rollup.priorityHashAfter(1), expectedHash, "rolling hash");
        assertEq(token.balanceOf(address(rollup)), 1_500_000, "locked");
        assertEq(token.balanceOf(alice), 3_500_000, "left");
        assertEq(_deposit(bob, 8, 1), 1, "second serial");
    }

    function testDepositRejectsZeroAndOutOfRange() public {
        token.mint(alice, type(uint64).max);
        vm.prank(alice);
        token.approve(address(rollup), type(uint256).max);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BadAmount.selector, 0));
        rollup.deposit(1, 0);
        uint64 tooMuch = uint64(1) << 63;
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BadAmount.selector, tooMuch));
        rollup.deposit(1, tooMuch);
        vm.prank(alice);
        rollup.deposit(1, tooMuch - 1);
    }

    function testDepositWithoutAllowanceFails() public {
        token.mint(alice, 10);
        vm.prank(alice);
        vm.expectRevert(Rollup.TokenTransferFailed.selector);
        rollup.deposit(1, 10);
        assertEq(rollup.priorityQueueLength(), 0, "nothing queued");
    }

    /// Queue invariant: serials are dense, the rolling hash follows the spec formula at every
    /// index, deadlines are enqueue time + period (so non-decreasing), and the contract holds
    /// exactly the deposited sum.
    function testFuzzQueueRollingHash(uint8 count, uint256 seed) public {
        uint256 n = bound(count, 1, 40);
        bytes32 h;
        uint256 total;
        for (uint256 i = 0; i < n; i++) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            address who = address(uint160(bound(r, 1, 5)));
            uint32 to = uint32(r >> 8);
            uint64 amount = uint64(bound(r >> 40, 1, 1e12));
            vm.warp(block.timestamp + (r >> 200) % 1000);
            uint64 serial = _deposit(who, to, amount);
            assertEq(serial, i, "dense serials");
            h = keccak256(abi.encode(h, keccak256(abi.encode(uint8(4), uint64(i), who, to, amount))));
            assertEq(rollup.priorityHashAfter(i + 1), h, "rolling hash");
            assertEq(rollup.priorityDeadline(i), block.timestamp + DEADLINE_PERIOD, "deadline");
            if (i > 0) assertTrue(rollup.priorityDeadline(i) >= rollup.priorityDeadline(i - 1), "monotonic deadlines");
            total += amount;
        }
        assertEq(rollup.priorityQueueLength(), n, "length");
        assertEq(token.balanceOf(address(rollup)), total, "locked sum");
    }

    // ------------------------------------------------------------------ commit continuity

    function testCommitAndFinalize() public {
        _deposit(alice, 1, 100);
        _deposit(bob, 2, 200);
        bytes memory pubdata = hex"0400000000000000000100000064000000000000000000";
        Rollup.BatchHeader memory h = _next(keccak256("root 1"), 2);
        _commit(h, pubdata);
        assertEq(rollup.lastCommittedBatch(), 1, "committed");
        assertEq(rollup.committedRoot(), h.newRoot, "committed root");
        assertEq(rollup.nextPriorityOpCommitted(), 2, "consumed");
        assertEq(rollup.finalizedRoot(), GENESIS, "not final yet");
        bytes32 statement = keccak256(abi.encode(h, keccak256(pubdata)));
        assertEq(rollup.batchStatement(1), statement, "statement");
        assertEq(rollup.batchStatementOf(h, keccak256(pubdata)), statement, "statement view");

        vm.expectEmit(true, true, true, true);
        emit BatchFinalized(1, statement, h.newRoot, h.withdrawalsRoot);
        vm.prank(alice); // anyone may finalize
        rollup.finalizeBatch(h, keccak256(pubdata), _attest(statement));
        assertEq(rollup.lastFinalizedBatch(), 1, "finalized");
        assertEq(rollup.finalizedRoot(), h.newRoot, "final root");

        // A batch that consumes nothing.
        Rollup.BatchHeader memory h2 = _next(keccak256("root 2"), 2);
        _commit(h2, "");
        _finalize(h2, "");
        assertEq(rollup.lastFinalizedBatch(), 2, "finalized 2");
    }

    function testCommitRejectsNonOperator() public {
        Rollup.BatchHeader memory h = _next(keccak256("r"), 0);
        vm.prank(alice);
        vm.expectRevert(Rollup.NotOperator.selector);
        rollup.commitBatch(h, "");
        vm.prank(admin);
        vm.expectRevert(Rollup.NotOperator.selector);
        rollup.commitBatch(h, "");
    }

    function testCommitRejectsWrongOldRoot() public {
        Rollup.BatchHeader memory h = _next(keccak256("r"), 0);
        h.oldRoot = keccak256("not the root");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.OldRootMismatch.selector, GENESIS, h.oldRoot));
        rollup.commitBatch(h, "");
    }

    function testCommitRejectsSkippedBatchNumber() public {
        Rollup.BatchHeader memory h = _next(keccak256("r"), 0);
        h.batchNumber = 2;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BatchNumberMismatch.selector, 1, 2));
        rollup.commitBatch(h, "");
        h.batchNumber = 0;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BatchNumberMismatch.selector, 1, 0));
        rollup.commitBatch(h, "");
    }

    function testCommitRejectsReplayedBatch() public {
        Rollup.BatchHeader memory h = _next(keccak256("r"), 0);
        _commit(h, "");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BatchNumberMismatch.selector, 2, 1));
        rollup.commitBatch(h, "");
        // Same batch renumbered: its old root is no longer current.
        h.batchNumber = 2;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.OldRootMismatch.selector, h.newRoot, GENESIS));
        rollup.commitBatch(h, "");
    }

    function testCommitRejectsUnknownDeposit() public {
        _deposit(alice, 1, 100);
        Rollup.BatchHeader memory h = _next(keccak256("r"), 1);
        h.nextPriorityOp = 2; // only one deposit exists
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.UnknownPriorityOp.selector, 2, 1));
        rollup.commitBatch(h, "");
    }

    function testCommitRejectsDepositsThatDoNotMatchTheQueue() public {
        _deposit(alice, 1, 100);
        Rollup.BatchHeader memory h = _next(keccak256("r"), 1);
        bytes32 good = h.priorityOpsHash;
        // The operator's view of deposit 0 differs (say amount 101): its rolling hash differs.
        h.priorityOpsHash = keccak256(
            abi.encode(bytes32(0), keccak256(abi.encode(uint8(4), uint64(0), alice, uint32(1), uint64(101))))
        );
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.PriorityOpsHashMismatch.selector, good, h.priorityOpsHash));
        rollup.commitBatch(h, "");
    }

    function testCommitRejectsNonContiguousPriorityOps() public {
        _deposit(alice, 1, 100);
        _deposit(alice, 1, 100);
        _commit(_next(keccak256("r1"), 1), "");
        // Skipping deposit 1 (first = 2) or re-consuming deposit 0 (first = 0) both fail.
        Rollup.BatchHeader memory h = _next(keccak256("r2"), 2);
        h.firstPriorityOp = 2;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.PriorityOpsNotContiguous.selector, 1, 2));
        rollup.commitBatch(h, "");
        h.firstPriorityOp = 0;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.PriorityOpsNotContiguous.selector, 1, 0));
        rollup.commitBatch(h, "");
        // Going backwards (next < first) is unknown.
        h = _next(keccak256("r2"), 0);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.UnknownPriorityOp.selector, 0, 2));
        rollup.commitBatch(h, "");
    }

    /// Commit invariant under random interleavings of deposits and batches: batch numbers are
    /// dense, each batch starts where the previous ended (root and queue position), the committed
    /// position never passes the queue, and only the exact next header is accepted.
    function testFuzzCommitContinuity(uint256 seed, uint8 steps) public {
        uint256 n = bound(steps, 1, 30);
        bytes32 root = GENESIS;
        uint64 consumed;
        uint64 batches;
        for (uint256 i = 0; i < n; i++) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            if (r % 3 == 0) {
                _deposit(alice, uint32(r >> 8), uint64(bound(r >> 64, 1, 1e9)));
                continue;
            }
            uint64 queued = rollup.priorityQueueLength();
            uint64 next = uint64(bound(r >> 16, consumed, queued));
            bytes32 newRoot = keccak256(abi.encode(seed, i, "root"));
            Rollup.BatchHeader memory h = _next(newRoot, next);
            assertEq(h.oldRoot, root, "old root is the last new root");
            assertEq(h.firstPriorityOp, consumed, "first is the last next");
            // A random single-field corruption is always rejected.
            Rollup.BatchHeader memory bad = _copy(h);
            uint256 field = (r >> 100) % 5;
            if (field == 0) bad.batchNumber += uint64(bound(r >> 120, 1, 3));
            if (field == 1) bad.oldRoot = keccak256(abi.encode(r));
            if (field == 2) bad.firstPriorityOp += 1;
            if (field == 3) bad.nextPriorityOp = queued + 1;
            if (field == 4) bad.priorityOpsHash = keccak256(abi.encode(r, "hash"));
            vm.prank(operator);
            vm.expectRevert();
            rollup.commitBatch(bad, "");
            _commit(h, abi.encodePacked(r));
            batches++;
            root = newRoot;
            consumed = next;
            assertEq(rollup.lastCommittedBatch(), batches, "dense batch numbers");
            assertEq(rollup.committedRoot(), root, "root");
            assertEq(rollup.nextPriorityOpCommitted(), consumed, "position");
            assertTrue(consumed <= rollup.priorityQueueLength(), "never past the queue");
        }
    }

    // ------------------------------------------------------------------ finalization

    function testFinalizeRejectsBadAttestations() public {
        Rollup.BatchHeader memory h = _next(keccak256("r"), 0);
        vm.expectRevert(Rollup.NothingToFinalize.selector);
        rollup.finalizeBatch(h, bytes32(0), "");

        _commit(h, "pd");
        bytes32 pdh = keccak256("pd");
        bytes32 statement = keccak256(abi.encode(h, pdh));
        // Wrong key.
        bytes memory bad = _sign(0xBAD, address(rollup), statement);
        vm.expectRevert(Rollup.ProofRejected.selector);
        rollup.finalizeBatch(h, pdh, bad);
        // Right key, but for another rollup (domain separation).
        bad = _sign(ATTESTER_KEY, address(0xDEAD), statement);
        vm.expectRevert(Rollup.ProofRejected.selector);
        rollup.finalizeBatch(h, pdh, bad);
        // Truncated.
        vm.expectRevert(Rollup.ProofRejected.selector);
        rollup.finalizeBatch(h, pdh, hex"00");
        // A header other than the committed one.
        Rollup.BatchHeader memory other = _copy(h);
        other.withdrawalsRoot = keccak256("steal");
        bytes32 otherStatement = keccak256(abi.encode(other, pdh));
        bytes memory otherAttestation = _attest(otherStatement);
        vm.expectRevert(abi.encodeWithSelector(Rollup.StatementMismatch.selector, statement, otherStatement));
        rollup.finalizeBatch(other, pdh, otherAttestation);
        // Other pubdata.
        bytes32 otherPdh = keccak256("other");
        otherAttestation = _attest(keccak256(abi.encode(h, otherPdh)));
        vm.expectRevert();
        rollup.finalizeBatch(h, otherPdh, otherAttestation);
        // Malleated (high-s) signature of the right statement.
        bytes memory good = _attest(statement);
        assertTrue(!verifier.verifyBatch(statement, _malleate(good)), "high s refused");
        vm.prank(address(rollup));
        assertTrue(verifier.verifyBatch(statement, good), "verifier accepts for the rollup");
        rollup.finalizeBatch(h, pdh, good);
        vm.expectRevert(Rollup.NothingToFinalize.selector);
        rollup.finalizeBatch(h, pdh, good);
    }

    function _malleate(bytes memory sig) private pure returns (bytes memory) {
        uint256 n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141;
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
        return abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }

    function testVerifierSwap() public {
        AttestationVerifier other = new AttestationVerifier(vm.addr(0xB0B0));
        vm.prank(alice);
        vm.expectRevert(Rollup.NotAdmin.selector);
        rollup.setVerifier(IVerifier(address(other)));
        vm.prank(admin);
        rollup.setVerifier(IVerifier(address(other)));
        Rollup.BatchHeader memory h = _next(keccak256("r"), 0);
        _commit(h, "");
        bytes32 statement = keccak256(abi.encode(h, keccak256("")));
        bytes memory oldAttestation = _attest(statement);
        vm.expectRevert(Rollup.ProofRejected.selector);
        rollup.finalizeBatch(h, keccak256(""), oldAttestation);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(0xB0B0, other.attestationDigest(address(rollup), statement));
        rollup.finalizeBatch(h, keccak256(""), abi.encodePacked(r, s, v));
    }

    // ------------------------------------------------------------------ withdrawals

    function _payoutBatch() internal returns (bytes32[] memory leaves, Rollup.BatchHeader memory h) {
        _deposit(alice, 1, 1_000_000);
        _deposit(bob, 99, 500); // refunded on L2: account 99 does not exist
        leaves = new bytes32[](3);
        leaves[0] = _leaf(1, 0, 1, alice, 300_000);
        leaves[1] = _leaf(1, 1, 1, bob, 200_000);
        leaves[2] = _leaf(1, 2, uint64(1 << 32) + 1, bob, 500); // refund of deposit 1
        h = _next(keccak256("root 1"), 2);
        h.withdrawalsRoot = _root(leaves);
        _commit(h, "");
    }

    function testWithdrawalClaimedOnce() public {
        (bytes32[] memory leaves, Rollup.BatchHeader memory h) = _payoutBatch();
        bytes32[] memory p0 = _proof(leaves, 0);
        // Not finalized yet.
        vm.expectRevert(abi.encodeWithSelector(Rollup.BatchNotFinalized.selector, 1));
        rollup.claimWithdrawal(1, 0, 1, alice, 300_000, p0);
        _finalize(h, "");
        assertEq(rollup.withdrawalsRootOf(1), h.withdrawalsRoot, "root stored");

        vm.prank(bob); // anyone may claim; funds go to `to`
        rollup.claimWithdrawal(1, 0, 1, alice, 300_000, p0);
        assertEq(token.balanceOf(alice), 300_000, "paid");
        assertTrue(rollup.claimed(leaves[0]), "marked");
        vm.expectRevert(abi.encodeWithSelector(Rollup.AlreadyClaimed.selector, leaves[0]));
        rollup.claimWithdrawal(1, 0, 1, alice, 300_000, p0);

        // Wrong amount, wrong recipient, wrong index: bad proof.
        bytes32[] memory p1 = _proof(leaves, 1);
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        rollup.claimWithdrawal(1, 1, 1, bob, 200_001, p1);
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        rollup.claimWithdrawal(1, 1, 1, alice, 200_000, p1);
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        rollup.claimWithdrawal(1, 3, 1, bob, 200_000, p1);
        // Index beyond the proof's depth.
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        rollup.claimWithdrawal(1, 5, 1, bob, 200_000, p1);
        rollup.claimWithdrawal(1, 1, 1, bob, 200_000, p1);
        rollup.claimWithdrawal(1, 2, uint64(1 << 32) + 1, bob, 500, _proof(leaves, 2));
        assertEq(token.balanceOf(bob), 200_500, "bob paid");
        assertEq(token.balanceOf(address(rollup)), 1_000_500 - 500_500, "rest locked");
        // A batch without payouts has no claims.
        Rollup.BatchHeader memory h2 = _next(keccak256("root 2"), 2);
        _commit(h2, "");
        _finalize(h2, "");
        vm.expectRevert(abi.encodeWithSelector(Rollup.BatchNotFinalized.selector, 2));
        rollup.claimWithdrawal(2, 0, 1, alice, 1, new bytes32[](0));
    }

    /// Any leaf of a tree of 1 to 33 payouts is claimable exactly once with the spec's proof.
    function testFuzzWithdrawalTree(uint8 size, uint8 pick, uint256 seed) public {
        uint256 n = bound(size, 1, 33);
        uint256 k = bound(pick, 0, n - 1);
        _deposit(alice, 1, 1e15);
        bytes32[] memory leaves = new bytes32[](n);
        address[] memory to = new address[](n);
        uint64[] memory amount = new uint64[](n);
        for (uint256 i = 0; i < n; i++) {
            to[i] = address(uint160(uint256(keccak256(abi.encode(seed, i)))));
            amount[i] = uint64(bound(uint256(keccak256(abi.encode(seed, i, 1))), 1, 1e9));
            leaves[i] = _leaf(1, uint64(i), uint64(i), to[i], amount[i]);
        }
        Rollup.BatchHeader memory h = _next(keccak256("r"), 1);
        h.withdrawalsRoot = _root(leaves);
        _commit(h, "");
        _finalize(h, "");
        bytes32[] memory p = _proof(leaves, k);
        rollup.claimWithdrawal(1, uint64(k), uint64(k), to[k], amount[k], p);
        assertEq(token.balanceOf(to[k]), amount[k], "paid");
        vm.expectRevert(abi.encodeWithSelector(Rollup.AlreadyClaimed.selector, leaves[k]));
        rollup.claimWithdrawal(1, uint64(k), uint64(k), to[k], amount[k], p);
    }

    // ------------------------------------------------------------------ pause and roles

    function testPauseByGuardian() public {
        vm.prank(alice);
        vm.expectRevert(Rollup.NotGuardian.selector);
        rollup.pause();
        (bytes32[] memory leaves, Rollup.BatchHeader memory h) = _payoutBatch();
        _finalize(h, "");
        vm.prank(guardian);
        rollup.pause();
        assertTrue(rollup.paused(), "paused");

        token.mint(alice, 10);
        vm.prank(alice);
        token.approve(address(rollup), 10);
        vm.prank(alice);
        vm.expectRevert(Rollup.IsPaused.selector);
        rollup.deposit(1, 10);
        vm.expectRevert(Rollup.IsPaused.selector);
        rollup.requestForcedWithdrawal(_withdrawTx(1, alice, 5));
        Rollup.BatchHeader memory h2 = _next(keccak256("r2"), 2);
        vm.prank(operator);
        vm.expectRevert(Rollup.IsPaused.selector);
        rollup.commitBatch(h2, "");
        bytes32[] memory p0 = _proof(leaves, 0);
        vm.expectRevert(Rollup.IsPaused.selector);
        rollup.claimWithdrawal(1, 0, 1, alice, 300_000, p0);

        vm.prank(alice);
        vm.expectRevert(Rollup.NotGuardian.selector);
        rollup.unpause();
        vm.prank(guardian);
        rollup.unpause();
        rollup.claimWithdrawal(1, 0, 1, alice, 300_000, p0);
        _commit(h2, "");
    }

    function testRoles() public {
        vm.prank(alice);
        vm.expectRevert(Rollup.NotAdmin.selector);
        rollup.setOperator(alice);
        vm.prank(admin);
        rollup.setOperator(alice);
        Rollup.BatchHeader memory h = _next(keccak256("r"), 0);
        vm.prank(operator);
        vm.expectRevert(Rollup.NotOperator.selector);
        rollup.commitBatch(h, "");
        vm.prank(alice);
        rollup.commitBatch(h, "");

        vm.prank(admin);
        rollup.transferAdmin(bob);
        vm.prank(alice);
        vm.expectRevert(Rollup.NotPendingAdmin.selector);
        rollup.acceptAdmin();
        vm.prank(bob);
        rollup.acceptAdmin();
        assertEq(rollup.admin(), bob, "new admin");
        vm.prank(admin);
        vm.expectRevert(Rollup.NotAdmin.selector);
        rollup.setGuardian(alice);
        vm.prank(bob);
        rollup.setGuardian(alice);
        vm.prank(alice);
        rollup.pause();
    }

    // ------------------------------------------------------------------ forced withdrawals

    function testForcedWithdrawalDeadline() public {
        bytes memory wtx = _withdrawTx(5, alice, 42);
        vm.prank(bob);
        uint64 serial = rollup.requestForcedWithdrawal(wtx);
        assertEq(serial, 0, "serial");
        bytes32 entry = keccak256(abi.encode(uint8(3), uint64(0), uint64(block.timestamp), keccak256(wtx)));
        assertEq(rollup.priorityHashAfter(1), keccak256(abi.encode(bytes32(0), entry)), "queued");
        uint64 deadline = rollup.priorityDeadline(0);
        assertEq(deadline, block.timestamp + DEADLINE_PERIOD, "deadline");

        // Before the deadline the sequencer may postpone it.
        _commit(_next(keccak256("r1"), 0), "");
        vm.warp(deadline);
        assertTrue(!rollup.priorityOpOverdue(), "due, not overdue");
        _commit(_next(keccak256("r2"), 0), "");
        // Past the deadline, no batch may leave it unconsumed.
        vm.warp(deadline + 1);
        assertTrue(rollup.priorityOpOverdue(), "overdue");
        Rollup.BatchHeader memory h = _next(keccak256("r3"), 0);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.PriorityOpOverdue.selector, 0, deadline));
        rollup.commitBatch(h, "");
        // A later deposit does not help: the overdue op is first in line.
        _deposit(alice, 1, 10);
        _commit(_next(keccak256("r3"), 1), "");
        assertTrue(!rollup.priorityOpOverdue(), "served");
        assertEq(rollup.nextPriorityOpCommitted(), 1, "consumed");
    }

    function testForcedWithdrawalRejectsMalformed() public {
        bytes memory wtx = _withdrawTx(5, alice, 42);
        bytes memory short = new bytes(128);
        vm.expectRevert(Rollup.BadWithdrawTx.selector);
        rollup.requestForcedWithdrawal(short);
        wtx[0] = 0x02; // a transfer
        vm.expectRevert(Rollup.BadWithdrawTx.selector);
        rollup.requestForcedWithdrawal(wtx);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BadAmount.selector, 0));
        rollup.requestForcedWithdrawal(_withdrawTx(5, alice, 0));
        // Fee, nonce, valid_until above 2^63 - 1 (the L2 decoder would refuse them).
        for (uint256 at = 33; at < 57; at += 8) {
            bytes memory bad = _withdrawTx(5, alice, 42);
            bad[at + 7] = 0x80;
            vm.expectRevert(Rollup.BadWithdrawTx.selector);
            rollup.requestForcedWithdrawal(bad);
        }
        // A challenge limb equal to p = 2^64 - 2^32 + 1 (little-endian bytes 01 00 00 00 ff ff ff ff).
        for (uint256 at = 57; at < 89; at += 8) {
            bytes memory bad = _withdrawTx(5, alice, 42);
            bad[at] = 0x01;
            for (uint256 i = 4; i < 8; i++) {
                bad[at + i] = 0xff;
            }
            vm.expectRevert(Rollup.BadWithdrawTx.selector);
            rollup.requestForcedWithdrawal(bad);
            bad[at] = 0x00; // p - 1: canonical
            rollup.requestForcedWithdrawal(bad);
        }
        // A scalar equal to the group order n, and one just below it.
        bytes memory order = hex"e1ff8b9496d90fe89ca024d7395c88e83906b8cfe6ffff7f16000000f1ffff7f07000080fdffff7f";
        bytes memory bad = _withdrawTx(5, alice, 42);
        for (uint256 i = 0; i < 40; i++) {
            bad[89 + i] = order[i];
        }
        vm.expectRevert(Rollup.BadWithdrawTx.selector);
        rollup.requestForcedWithdrawal(bad);
        bad[89] = 0xe0;
        rollup.requestForcedWithdrawal(bad);
    }

    // ------------------------------------------------------------------ reentrancy

    function testClaimCannotReenter() public {
        ReentrantToken evil = new ReentrantToken();
        rollup = _deployRollup(IERC20(address(evil)));
        evil.mint(address(rollup), 1000);
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = _leaf(1, 0, 1, alice, 100);
        leaves[1] = _leaf(1, 1, 1, alice, 100);
        Rollup.BatchHeader memory h = _next(keccak256("r"), 0);
        h.withdrawalsRoot = _root(leaves);
        _commit(h, "");
        _finalize(h, "");
        evil.arm(rollup, abi.encodeCall(Rollup.claimWithdrawal, (1, 1, 1, alice, 100, _proof(leaves, 1))));
        rollup.claimWithdrawal(1, 0, 1, alice, 100, _proof(leaves, 0));
        assertEq(bytes32(evil.innerError()), bytes32(ReentrancyGuard.Reentrancy.selector), "inner call refused");
        assertEq(evil.balanceOf(alice), 100, "paid once");
        assertTrue(!rollup.claimed(leaves[1]), "inner claim did not happen");
    }
}

/// A token whose transfer calls back into the rollup once and records how that call failed.
contract ReentrantToken {
    mapping(address => uint256) public balanceOf;
    Rollup private target;
    bytes private payload;
    bytes4 public innerError;

    function mint(address to, uint256 v) external {
        balanceOf[to] += v;
    }

    function arm(Rollup t, bytes calldata p) external {
        target = t;
        payload = p;
    }

    function transfer(address to, uint256 v) external returns (bool) {
        if (address(target) != address(0)) {
            Rollup t = target;
            target = Rollup(address(0));
            (bool ok, bytes memory err) = address(t).call(payload);
            if (!ok && err.length >= 4) innerError = bytes4(err);
        }
        balanceOf[msg.sender] -= v;
        balanceOf[to] += v;
        return true;
    }
}
