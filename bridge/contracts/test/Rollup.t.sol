// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {RollupBase} from "./RollupBase.sol";
import {Vm} from "./Base.sol";
import {Rollup} from "../src/Rollup.sol";
import {IERC20} from "../src/IERC20.sol";
import {IVerifier} from "../src/IVerifier.sol";
import {AttestationVerifier} from "../src/AttestationVerifier.sol";
import {ReentrancyGuard} from "../src/ReentrancyGuard.sol";
import {ExodusVerifier} from "../src/ExodusVerifier.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";

contract RollupTest is RollupBase {
    event Deposit(
        uint64 indexed serial,
        address indexed depositor,
        uint32 indexed recipient,
        uint64 amount,
        uint64 deadline,
        bytes32 priorityHash
    );
    event BatchCommitted(uint64 indexed batchNumber, bytes32 indexed statement, Rollup.BatchStatement s);
    event BatchFinalized(uint64 indexed batchNumber, bytes32 indexed statement, bytes32 newRoot, bytes32 payoutRoot);

    address internal carol = address(0xCA201);

    // ------------------------------------------------------------------ deposits and the queue

    function testDepositQueuesAndEmitsEverything() public {
        token.mint(alice, 5_000_000);
        vm.prank(alice);
        token.approve(address(rollup), 5_000_000);
        // H_1 = sha256(H_0 ‖ 04 ‖ serial ‖ depositor ‖ recipient ‖ amount), spelled out byte by byte.
        bytes32 expectedHash = sha256(
            bytes.concat(bytes32(0), hex"04", hex"0000000000000000", bytes20(alice), hex"00000007", hex"000000000016e360")
        );
        assertEq(expectedHash, _depositStep(bytes32(0), 0, alice, 7, 1_500_000), "helper agrees");
        vm.expectEmit(true, true, true, true, address(rollup));
        emit Deposit(0, alice, 7, 1_500_000, uint64(block.timestamp) + DEADLINE_PERIOD, expectedHash);
        vm.prank(alice);
        uint64 serial = rollup.deposit(7, 1_500_000);
        assertEq(serial, 0, "serial");
        assertEq(rollup.priorityQueueLength(), 1, "queue length");
        assertEq(rollup.priorityHashAfter(1), expectedHash, "rolling hash");
        assertEq(token.balanceOf(address(rollup)), 1_500_000, "locked");
        assertEq(token.balanceOf(alice), 3_500_000, "left");
        assertEq(_deposit(bob, 8, 1), 1, "second serial");
        assertEq(rollup.priorityHashAfter(2), _depositStep(expectedHash, 1, bob, 8, 1), "second step");
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
            uint64 serial;
            if ((r >> 180) % 4 == 0) {
                bytes memory wtx = _withdrawTx(to, who, amount);
                serial = rollup.requestForcedWithdrawal{value: FEE}(wtx);
                h = _forcedStep(h, uint64(i), uint64(block.timestamp), wtx);
            } else {
                serial = _deposit(who, to, amount);
                h = _depositStep(h, uint64(i), who, to, amount);
                total += amount;
            }
            assertEq(serial, i, "dense serials");
            assertEq(rollup.priorityHashAfter(i + 1), h, "rolling hash");
            assertEq(rollup.priorityDeadline(i), block.timestamp + DEADLINE_PERIOD, "deadline");
            if (i > 0) assertTrue(rollup.priorityDeadline(i) >= rollup.priorityDeadline(i - 1), "monotonic deadlines");
        }
        assertEq(rollup.priorityQueueLength(), n, "length");
        assertEq(token.balanceOf(address(rollup)), total, "locked sum");
    }

    /// SPEC 15.2: the chain after a deposit and after a forced withdrawal is exactly
    /// sha256(H ‖ packed entry); every field of the entry is bound (changing any one changes
    /// the hash), and the previous keccak/abi.encode chain is not what the contract computes.
    function testPriorityChainIsTheSha256OfThePackedEntries() public {
        _deposit(alice, 7, 1_500_000);
        bytes32 h1 = sha256(abi.encodePacked(bytes32(0), uint8(4), uint64(0), alice, uint32(7), uint64(1_500_000)));
        assertEq(rollup.priorityHashAfter(1), h1, "after the deposit");

        vm.warp(block.timestamp + 100);
        bytes memory wtx = _withdrawTx(5, bob, 42);
        vm.deal(carol, FEE);
        vm.prank(carol);
        rollup.requestForcedWithdrawal{value: FEE}(wtx);
        bytes32 h2 = sha256(abi.encodePacked(h1, uint8(3), uint64(1), uint64(block.timestamp), wtx));
        assertEq(rollup.priorityHashAfter(2), h2, "after the forced withdrawal");

        // Each deposit field is bound.
        assertTrue(_depositStep(bytes32(0), 0, bob, 7, 1_500_000) != h1, "depositor");
        assertTrue(_depositStep(bytes32(0), 0, alice, 7, 1_500_001) != h1, "amount");
        assertTrue(_depositStep(bytes32(0), 0, alice, 8, 1_500_000) != h1, "recipient");
        assertTrue(_depositStep(bytes32(0), 1, alice, 7, 1_500_000) != h1, "serial");
        assertTrue(_depositStep(bytes32(uint256(1)), 0, alice, 7, 1_500_000) != h1, "previous hash");
        assertTrue(
            sha256(abi.encodePacked(bytes32(0), uint8(3), uint64(0), alice, uint32(7), uint64(1_500_000))) != h1, "kind"
        );
        // Each forced-withdrawal field is bound, the signed bytes themselves included.
        assertTrue(_forcedStep(h1, 2, uint64(block.timestamp), wtx) != h2, "forced serial");
        assertTrue(_forcedStep(h1, 1, uint64(block.timestamp) - 1, wtx) != h2, "requestedAt");
        bytes memory otherTx = _withdrawTx(5, bob, 43);
        assertTrue(_forcedStep(h1, 1, uint64(block.timestamp), otherTx) != h2, "withdrawTx");
        // The previous version's chain (keccak of abi.encode, hashed withdrawTx) is gone.
        bytes32 oldEntry = keccak256(abi.encode(uint8(4), uint64(0), alice, uint32(7), uint64(1_500_000)));
        assertTrue(keccak256(abi.encode(bytes32(0), oldEntry)) != h1, "not the keccak chain");
    }

    /// Any deposit lands on the chain as the hand-computed step, and no single-field change of
    /// the deposit (what a dishonest sequencer would credit instead) has the same hash.
    function testFuzzDepositFieldsAreBound(address who, uint32 to, uint64 amount, uint256 change) public {
        vm.assume(who != address(0) && who != address(rollup));
        amount = uint64(bound(amount, 1, rollup.MAX_AMOUNT() - 1));
        _deposit(who, to, amount);
        bytes32 h = rollup.priorityHashAfter(1);
        assertEq(h, _depositStep(bytes32(0), 0, who, to, amount), "hand-computed");
        uint256 delta = bound(change, 1, type(uint32).max);
        assertTrue(_depositStep(bytes32(0), 0, address(uint160(who) ^ uint160(delta)), to, amount) != h, "depositor");
        assertTrue(_depositStep(bytes32(0), 0, who, uint32(to ^ uint32(delta)), amount) != h, "recipient");
        assertTrue(_depositStep(bytes32(0), 0, who, to, amount ^ uint64(delta)) != h, "amount");
        assertTrue(_depositStep(bytes32(0), uint64(delta), who, to, amount) != h, "serial");
    }

    // ------------------------------------------------------------------ commit

    function testCommitAndFinalize() public {
        _deposit(alice, 1, 100);
        _deposit(bob, 2, 200);
        bytes memory pubdata = hex"0400000000000000000100000064000000000000000000";
        vm.warp(block.timestamp + 12);
        Rollup.BatchHeader memory h = _next(keccak256("root 1"), 2);
        h.timestamp -= 5;
        Rollup.BatchStatement memory s = _expected(h, pubdata);
        bytes32 statement = _hash(s);
        vm.expectEmit(true, true, true, true, address(rollup));
        emit BatchCommitted(1, statement, s);
        vm.prank(operator);
        rollup.commitBatch(h, pubdata, "");
        assertEq(rollup.lastCommittedBatch(), 1, "committed");
        assertEq(rollup.committedRoot(), h.newRoot, "committed root");
        assertEq(rollup.nextPriorityOpCommitted(), 2, "consumed");
        assertEq(rollup.lastCommittedTimestamp(), h.timestamp, "timestamp");
        assertEq(rollup.finalizedRoot(), GENESIS, "not final yet");
        assertEq(rollup.batchStatement(1), statement, "statement");
        assertEq(rollup.statementHash(s), statement, "statement view");
        // What came from storage, not from the operator.
        assertEq(s.oldRoot, GENESIS, "old root");
        assertEq(s.firstPriorityOp, 0, "first");
        assertEq(s.priorityHashBefore, bytes32(0), "H_0");
        assertEq(
            s.priorityHashAfter,
            _depositStep(_depositStep(bytes32(0), 0, alice, 1, 100), 1, bob, 2, 200),
            "H_2 from the deposits"
        );
        assertEq(s.diffHash, sha256(pubdata), "diff hash");

        vm.expectEmit(true, true, true, true, address(rollup));
        emit BatchFinalized(1, statement, h.newRoot, h.payoutRoot);
        vm.prank(alice); // anyone may finalize
        rollup.finalizeBatch(s, _attest(statement));
        assertEq(rollup.lastFinalizedBatch(), 1, "finalized");
        assertEq(rollup.finalizedRoot(), h.newRoot, "final root");

        // A batch that consumes nothing starts where the first ended.
        Rollup.BatchStatement memory s2 = _commit(_next(keccak256("root 2"), 2), "");
        assertEq(s2.oldRoot, h.newRoot, "chained root");
        assertEq(s2.firstPriorityOp, 2, "chained position");
        assertEq(s2.priorityHashBefore, s.priorityHashAfter, "chained queue hash");
        assertEq(s2.priorityHashAfter, s.priorityHashAfter, "nothing consumed");
        _finalize(s2);
        assertEq(rollup.lastFinalizedBatch(), 2, "finalized 2");
    }

    function testCommitRejectsNonOperator() public {
        Rollup.BatchHeader memory h = _next(keccak256("r"), 0);
        vm.prank(alice);
        vm.expectRevert(Rollup.NotOperator.selector);
        rollup.commitBatch(h, "", "");
        vm.prank(admin);
        vm.expectRevert(Rollup.NotOperator.selector);
        rollup.commitBatch(h, "", "");
    }

    function testCommitRejectsSkippedBatchNumber() public {
        Rollup.BatchHeader memory h = _next(keccak256("r"), 0);
        h.batchNumber = 2;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BatchNumberMismatch.selector, 1, 2));
        rollup.commitBatch(h, "", "");
        h.batchNumber = 0;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BatchNumberMismatch.selector, 1, 0));
        rollup.commitBatch(h, "", "");
    }

    function testCommitRejectsReplayedBatch() public {
        Rollup.BatchHeader memory h = _next(keccak256("r"), 0);
        _commit(h, "");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BatchNumberMismatch.selector, 2, 1));
        rollup.commitBatch(h, "", "");
        // The same header renumbered is a new batch from the current root: the operator cannot
        // restate the old root, so its statement is not the first batch's.
        h.batchNumber = 2;
        Rollup.BatchStatement memory s2 = _commit(h, "");
        assertEq(s2.oldRoot, h.newRoot, "old root from storage");
    }

    function testCommitRejectsUnknownDeposit() public {
        _deposit(alice, 1, 100);
        Rollup.BatchHeader memory h = _next(keccak256("r"), 1);
        h.nextPriorityOp = 2; // only one deposit exists
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.UnknownPriorityOp.selector, 2, 1));
        rollup.commitBatch(h, "", "");
    }

    function testCommitRejectsGoingBackInTheQueue() public {
        _deposit(alice, 1, 100);
        _deposit(alice, 1, 100);
        _commit(_next(keccak256("r1"), 1), "");
        // Re-consuming deposit 0 (next < first) is unknown; the start is always storage's.
        Rollup.BatchHeader memory h = _next(keccak256("r2"), 0);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.UnknownPriorityOp.selector, 0, 2));
        rollup.commitBatch(h, "", "");
        Rollup.BatchStatement memory s = _commit(_next(keccak256("r2"), 2), "");
        assertEq(s.firstPriorityOp, 1, "starts where the last batch ended");
        assertEq(s.priorityHashBefore, rollup.priorityHashAfter(1), "H_first");
    }

    /// An operator whose view of the queue differs from L1's (here: deposit 0 of 101 instead of
    /// 100) cannot get a statement with its queue hash committed: the contract puts L1's hash in
    /// the statement, and an attestation of the operator's version does not finalize.
    function testOperatorCannotChooseTheQueueHash() public {
        _deposit(alice, 1, 100);
        Rollup.BatchStatement memory s = _commit(_next(keccak256("r"), 1), "");
        Rollup.BatchStatement memory forged = _copy(s);
        forged.priorityHashAfter = _depositStep(bytes32(0), 0, alice, 1, 101);
        bytes32 forgedHash = _hash(forged);
        bytes memory attestation = _attest(forgedHash);
        vm.expectRevert(abi.encodeWithSelector(Rollup.StatementMismatch.selector, _hash(s), forgedHash));
        rollup.finalizeBatch(forged, attestation);
        _finalize(s);
    }

    /// SPEC 15.3: `lastCommittedTimestamp <= timestamp <= block.timestamp`, both ends inclusive.
    function testCommitRejectsTimestampOutOfRange() public {
        uint64 t0 = uint64(block.timestamp);
        // First batch: the lower bound is 0, the upper the commit's block.
        Rollup.BatchHeader memory h = _next(keccak256("r1"), 0);
        h.timestamp = t0 + 1;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.TimestampOutOfRange.selector, 0, t0, t0 + 1));
        rollup.commitBatch(h, "", "");
        h.timestamp = t0 - 50;
        _commit(h, "");
        assertEq(rollup.lastCommittedTimestamp(), t0 - 50, "stored");

        vm.warp(t0 + 100);
        Rollup.BatchHeader memory h2 = _next(keccak256("r2"), 0);
        // Before the predecessor.
        h2.timestamp = t0 - 51;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.TimestampOutOfRange.selector, t0 - 50, t0 + 100, t0 - 51));
        rollup.commitBatch(h2, "", "");
        h2.timestamp = 0;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.TimestampOutOfRange.selector, t0 - 50, t0 + 100, 0));
        rollup.commitBatch(h2, "", "");
        // After the commit's block.
        h2.timestamp = t0 + 101;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.TimestampOutOfRange.selector, t0 - 50, t0 + 100, t0 + 101));
        rollup.commitBatch(h2, "", "");
        h2.timestamp = type(uint64).max;
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(Rollup.TimestampOutOfRange.selector, t0 - 50, t0 + 100, type(uint64).max)
        );
        rollup.commitBatch(h2, "", "");
        // Both ends are allowed: equal to the predecessor's, then equal to the block's.
        h2.timestamp = t0 - 50;
        _commit(h2, "");
        Rollup.BatchHeader memory h3 = _next(keccak256("r3"), 0);
        h3.timestamp = t0 + 100;
        Rollup.BatchStatement memory s3 = _commit(h3, "");
        assertEq(s3.timestamp, t0 + 100, "timestamp in the statement");
        assertEq(rollup.lastCommittedTimestamp(), t0 + 100, "stored 3");
    }

    /// The checks run in the order SPEC 15.3 lists them.
    function testCommitCheckOrder() public {
        Rollup.BatchHeader memory h = _next(keccak256("r"), 5);
        h.batchNumber = 9;
        h.timestamp = type(uint64).max;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BatchNumberMismatch.selector, 1, 9));
        rollup.commitBatch(h, "", "");
        h.batchNumber = 1;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.UnknownPriorityOp.selector, 5, 0));
        rollup.commitBatch(h, "", "");
        rollup.requestForcedWithdrawal{value: FEE}(_withdrawTx(1, alice, 1));
        uint64 deadline = rollup.priorityDeadline(0);
        vm.warp(deadline + 1);
        h.nextPriorityOp = 0;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.PriorityOpOverdue.selector, 0, deadline));
        rollup.commitBatch(h, "", "");
        h.nextPriorityOp = 1;
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(Rollup.TimestampOutOfRange.selector, 0, deadline + 1, type(uint64).max)
        );
        rollup.commitBatch(h, "", "");
    }

    /// Commit invariant under random interleavings of deposits and batches: batch numbers are
    /// dense, each statement starts where the previous ended (root, queue position and hash),
    /// the committed position never passes the queue, time never goes back, and a random
    /// single-field corruption of the header is refused.
    function testFuzzCommitContinuity(uint256 seed, uint8 steps) public {
        uint256 n = bound(steps, 1, 30);
        bytes32 root = GENESIS;
        uint64 consumed;
        uint64 batches;
        uint64 lastTime;
        for (uint256 i = 0; i < n; i++) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            vm.warp(block.timestamp + (r >> 230) % 600);
            if (r % 3 == 0) {
                _deposit(alice, uint32(r >> 8), uint64(bound(r >> 64, 1, 1e9)));
                continue;
            }
            uint64 queued = rollup.priorityQueueLength();
            uint64 next = uint64(bound(r >> 16, consumed, queued));
            bytes32 newRoot = keccak256(abi.encode(seed, i, "root"));
            Rollup.BatchHeader memory h = _next(newRoot, next);
            h.timestamp = uint64(bound(r >> 150, lastTime, block.timestamp));
            Rollup.BatchHeader memory bad = abi.decode(abi.encode(h), (Rollup.BatchHeader));
            uint256 field = (r >> 100) % 4;
            if (field == 0) bad.batchNumber += uint64(bound(r >> 120, 1, 3));
            if (field == 1) bad.nextPriorityOp = queued + 1;
            if (field == 2) bad.timestamp = uint64(block.timestamp) + 1;
            if (field == 3) bad.timestamp = lastTime == 0 ? type(uint64).max : lastTime - 1;
            vm.prank(operator);
            vm.expectRevert();
            rollup.commitBatch(bad, "", "");
            Rollup.BatchStatement memory s = _commit(h, abi.encodePacked(r));
            assertEq(s.oldRoot, root, "old root is the last new root");
            assertEq(s.firstPriorityOp, consumed, "first is the last next");
            assertEq(s.priorityHashBefore, rollup.priorityHashAfter(consumed), "queue hash before");
            batches++;
            root = newRoot;
            consumed = next;
            lastTime = h.timestamp;
            assertEq(rollup.lastCommittedBatch(), batches, "dense batch numbers");
            assertEq(rollup.committedRoot(), root, "root");
            assertEq(rollup.nextPriorityOpCommitted(), consumed, "position");
            assertEq(rollup.lastCommittedTimestamp(), lastTime, "time");
            assertTrue(consumed <= rollup.priorityQueueLength(), "never past the queue");
        }
    }

    // ------------------------------------------------------------------ the statement

    /// The statement emitted at commit is sha256 of the 252 bytes a test packs by hand from what
    /// it knows independently (chain id, addresses, its own deposits, the pubdata it sent), and
    /// every one of the 12 fields is bound: a statement with any single field changed does not
    /// finalize, even with a valid attestation of the changed statement.
    function testStatementIsThePackedSha256AndBindsEveryField() public {
        _deposit(alice, 3, 1_000);
        _deposit(bob, 4, 2_000);
        vm.warp(block.timestamp + 30);
        bytes memory pubdata = hex"000000030000000000000bb80000000000000001";
        Rollup.BatchHeader memory h = _next(keccak256("new root"), 2);
        bytes memory payouts = bytes.concat(_entry(3, alice, 250), _entry(4, bob, 750));
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = _leaf(1, 0, 3, alice, 250);
        leaves[1] = _leaf(1, 1, 4, bob, 750);
        h.payoutRoot = _root(leaves);
        h.timestamp = uint64(block.timestamp) - 7;
        bytes32 queueAfter = _depositStep(_depositStep(bytes32(0), 0, alice, 3, 1_000), 1, bob, 4, 2_000);
        bytes memory packed = abi.encodePacked(
            uint64(block.chainid),
            address(rollup),
            uint64(1),
            GENESIS,
            h.newRoot,
            sha256(pubdata),
            h.payoutRoot,
            uint64(0),
            uint64(2),
            bytes32(0),
            queueAfter,
            h.timestamp
        );
        assertEq(packed.length, 252, "252 bytes");
        bytes32 statement = sha256(packed);

        vm.recordLogs();
        vm.prank(operator);
        rollup.commitBatch(h, pubdata, payouts);
        Rollup.BatchStatement memory s = _committedStatement();
        assertEq(_encode(s), packed, "emitted fields");
        assertEq(rollup.batchStatement(1), statement, "stored");
        assertEq(rollup.statementHash(s), statement, "statementHash");

        for (uint256 f = 0; f < 12; f++) {
            Rollup.BatchStatement memory bad = _flip(s, f);
            bytes32 badHash = _hash(bad);
            assertTrue(badHash != statement, "field changes the hash");
            assertEq(rollup.statementHash(bad), badHash, "contract agrees on the changed one");
            bytes memory attestation = _attest(badHash);
            if (f == 2) {
                // batchNumber is checked first (SPEC 15.3): the changed one is not the next batch.
                vm.expectRevert(abi.encodeWithSelector(Rollup.BatchNumberMismatch.selector, 1, bad.batchNumber));
            } else {
                vm.expectRevert(abi.encodeWithSelector(Rollup.StatementMismatch.selector, statement, badHash));
            }
            rollup.finalizeBatch(bad, attestation);
        }
        rollup.finalizeBatch(s, _attest(statement));
        assertEq(rollup.finalizedRoot(), h.newRoot, "finalized");
    }

    /// The statement of the BatchCommitted event in the recorded logs (its topics checked).
    function _committedStatement() internal returns (Rollup.BatchStatement memory s) {
        bytes32 topic = keccak256(
            "BatchCommitted(uint64,bytes32,(uint64,address,uint64,bytes32,bytes32,bytes32,bytes32,uint64,uint64,bytes32,bytes32,uint64))"
        );
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i = 0; i < logs.length; i++) {
            if (logs[i].emitter != address(rollup) || logs[i].topics[0] != topic) continue;
            s = abi.decode(logs[i].data, (Rollup.BatchStatement));
            assertEq(logs[i].topics[1], bytes32(uint256(s.batchNumber)), "indexed batch number");
            assertEq(logs[i].topics[2], _hash(s), "indexed statement");
            return s;
        }
        revert("no BatchCommitted");
    }

    function _flip(Rollup.BatchStatement memory s, uint256 field) internal pure returns (Rollup.BatchStatement memory b) {
        b = _copy(s);
        bytes32 one = bytes32(uint256(1));
        if (field == 0) b.chainId ^= 1;
        if (field == 1) b.rollup = address(uint160(b.rollup) ^ 1);
        if (field == 2) b.batchNumber ^= 1;
        if (field == 3) b.oldRoot ^= one;
        if (field == 4) b.newRoot ^= one;
        if (field == 5) b.diffHash ^= one;
        if (field == 6) b.payoutRoot ^= one;
        if (field == 7) b.firstPriorityOp ^= 1;
        if (field == 8) b.nextPriorityOp ^= 1;
        if (field == 9) b.priorityHashBefore ^= one;
        if (field == 10) b.priorityHashAfter ^= one;
        if (field == 11) b.timestamp ^= 1;
    }

    /// The statement's chain id is the chain's (a statement attested for one chain cannot be
    /// finalized on another), up to the largest id its 8 bytes hold. (`ChainIdTooLarge`, for an
    /// id of 2^64 or more, cannot be reached here: forge's `vm.chainId` refuses such ids.)
    function testStatementBindsTheChainId() public {
        vm.chainId(10);
        rollup = _deployRollup(IERC20(address(token)));
        Rollup.BatchStatement memory s = _commit(_next(keccak256("r"), 0), "");
        assertEq(s.chainId, 10, "chain id");
        _finalize(s);

        vm.chainId(type(uint64).max);
        rollup = _deployRollup(IERC20(address(token)));
        s = _commit(_next(keccak256("r"), 0), "");
        assertEq(s.chainId, type(uint64).max, "largest chain id");
        _finalize(s);
    }

    // ------------------------------------------------------------------ finalization

    function testFinalizeRejectsBadAttestations() public {
        Rollup.BatchHeader memory h = _next(keccak256("r"), 0);
        Rollup.BatchStatement memory early = _expected(h, "pd");
        vm.expectRevert(Rollup.NothingToFinalize.selector);
        rollup.finalizeBatch(early, "");

        Rollup.BatchStatement memory s = _commit(h, "pd");
        bytes32 statement = _hash(s);
        // Wrong key.
        bytes memory bad = _sign(0xBAD, address(rollup), statement);
        vm.expectRevert(Rollup.ProofRejected.selector);
        rollup.finalizeBatch(s, bad);
        // Right key, but for another rollup (domain separation).
        bad = _sign(ATTESTER_KEY, address(0xDEAD), statement);
        vm.expectRevert(Rollup.ProofRejected.selector);
        rollup.finalizeBatch(s, bad);
        // Truncated.
        vm.expectRevert(Rollup.ProofRejected.selector);
        rollup.finalizeBatch(s, hex"00");
        // A statement other than the committed one (another payout root).
        Rollup.BatchStatement memory other = _copy(s);
        other.payoutRoot = keccak256("steal");
        bytes32 otherStatement = _hash(other);
        bytes memory otherAttestation = _attest(otherStatement);
        vm.expectRevert(abi.encodeWithSelector(Rollup.StatementMismatch.selector, statement, otherStatement));
        rollup.finalizeBatch(other, otherAttestation);
        // Other pubdata than the bytes published.
        other = _copy(s);
        other.diffHash = sha256("other");
        otherStatement = _hash(other);
        otherAttestation = _attest(otherStatement);
        vm.expectRevert(abi.encodeWithSelector(Rollup.StatementMismatch.selector, statement, otherStatement));
        rollup.finalizeBatch(other, otherAttestation);
        // Malleated (high-s) signature of the right statement.
        bytes memory good = _attest(statement);
        assertTrue(!verifier.verifyBatch(statement, _malleate(good)), "high s refused");
        vm.prank(address(rollup));
        assertTrue(verifier.verifyBatch(statement, good), "verifier accepts for the rollup");
        rollup.finalizeBatch(s, good);
        assertEq(rollup.payoutRootOf(1), bytes32(0), "no payouts");
        vm.expectRevert(Rollup.NothingToFinalize.selector);
        rollup.finalizeBatch(s, good);
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

    /// Announces `next` as the new verifier or operator and applies it once the delay passed.
    function _change(Rollup.ChangeKind kind, address next) internal {
        vm.prank(admin);
        rollup.announceChange(kind, next);
        vm.warp(block.timestamp + rollup.changeDelay());
        rollup.applyChange(kind);
    }

    function testVerifierSwap() public {
        AttestationVerifier other = new AttestationVerifier(vm.addr(0xB0B0));
        vm.prank(alice);
        vm.expectRevert(Rollup.NotAdmin.selector);
        rollup.announceChange(Rollup.ChangeKind.Verifier, address(other));
        _change(Rollup.ChangeKind.Verifier, address(other));
        assertEq(address(rollup.verifier()), address(other), "verifier swapped");
        Rollup.BatchStatement memory s = _commit(_next(keccak256("r"), 0), "");
        bytes32 statement = _hash(s);
        bytes memory oldAttestation = _attest(statement);
        vm.expectRevert(Rollup.ProofRejected.selector);
        rollup.finalizeBatch(s, oldAttestation);
        (uint8 v, bytes32 r, bytes32 sig) = vm.sign(0xB0B0, other.attestationDigest(address(rollup), statement));
        rollup.finalizeBatch(s, abi.encodePacked(r, sig, v));
    }

    // ------------------------------------------------------------------ withdrawals

    function _payoutBatch() internal returns (bytes32[] memory leaves, Rollup.BatchStatement memory s) {
        _deposit(alice, 1, 1_000_000);
        _deposit(bob, 99, 500); // refunded on L2: account 99 does not exist
        leaves = new bytes32[](3);
        leaves[0] = _leaf(1, 0, 1, alice, 300_000);
        leaves[1] = _leaf(1, 1, 1, bob, 200_000);
        leaves[2] = _leaf(1, 2, uint64(1 << 32) + 1, bob, 500); // refund of deposit 1
        bytes memory payouts =
            bytes.concat(_entry(1, alice, 300_000), _entry(1, bob, 200_000), _entry(uint64(1 << 32) + 1, bob, 500));
        Rollup.BatchHeader memory h = _next(keccak256("root 1"), 2);
        h.payoutRoot = _root(leaves);
        s = _commitWith(h, "", payouts);
    }

    function testWithdrawalClaimedOnce() public {
        (bytes32[] memory leaves, Rollup.BatchStatement memory s) = _payoutBatch();
        bytes32[] memory p0 = _proof(leaves, 0);
        // Not finalized yet.
        vm.expectRevert(abi.encodeWithSelector(Rollup.BatchNotFinalized.selector, 1));
        rollup.claimWithdrawal(1, 0, 1, alice, 300_000, p0);
        _finalize(s);
        assertEq(rollup.payoutRootOf(1), s.payoutRoot, "root stored");
        assertEq(rollup.payoutLeaf(1, 0, 1, alice, 300_000), leaves[0], "leaf view");

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
        Rollup.BatchStatement memory s2 = _commit(_next(keccak256("root 2"), 2), "");
        _finalize(s2);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BatchNotFinalized.selector, 2));
        rollup.claimWithdrawal(2, 0, 1, alice, 1, new bytes32[](0));
    }

    /// SPEC 15.5: leaves and inner nodes are SHA-256. A proof of the previous keccak tree (keccak
    /// leaves of abi.encode, keccak inner nodes) pays nothing, whether the batch's root is the
    /// SHA-256 one or the keccak one; the SHA-256 proof of the same payout pays.
    function testKeccakPayoutProofIsRefused() public {
        _deposit(alice, 1, 1_000_000);
        bytes32[] memory leaves = new bytes32[](3);
        bytes32[] memory oldLeaves = new bytes32[](3);
        bytes memory payouts;
        for (uint256 i = 0; i < 3; i++) {
            leaves[i] = _leaf(1, uint64(i), 1, alice, 1_000);
            oldLeaves[i] = keccak256(abi.encode(uint64(1), uint64(i), uint64(1), alice, uint64(1_000)));
            payouts = bytes.concat(payouts, _entry(1, alice, 1_000));
        }
        // Batch 1 publishes the SHA-256 root.
        Rollup.BatchHeader memory h = _next(keccak256("r1"), 1);
        h.payoutRoot = _root(leaves);
        _finalize(_commitWith(h, "", payouts));
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        rollup.claimWithdrawal(1, 0, 1, alice, 1_000, _proofWith(oldLeaves, 0, true));
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        rollup.claimWithdrawal(1, 0, 1, alice, 1_000, _proofWith(leaves, 0, true)); // keccak nodes
        rollup.claimWithdrawal(1, 0, 1, alice, 1_000, _proof(leaves, 0));
        assertEq(token.balanceOf(alice), 1_000, "the SHA-256 proof pays");

        // Batch 2 cannot even publish the root of the old keccak tree: the contract recomputes
        // the SHA-256 root of the listed payouts.
        for (uint256 i = 0; i < 3; i++) {
            oldLeaves[i] = keccak256(abi.encode(uint64(2), uint64(i), uint64(1), alice, uint64(1_000)));
        }
        Rollup.BatchHeader memory h2 = _next(keccak256("r2"), 1);
        h2.payoutRoot = _rootWith(oldLeaves, true);
        vm.prank(operator);
        vm.expectRevert();
        rollup.commitBatch(h2, "", payouts);
        assertEq(token.balanceOf(alice), 1_000, "nothing more paid");
    }

    /// SPEC 15.5: a commit carries its payout list, and only the list of its payout root: a
    /// missing, altered, extra or truncated entry is refused, so every payout a finalized batch
    /// pays can be read back from L1 calldata.
    function testCommitCarriesThePayoutListOfItsRoot() public {
        _deposit(alice, 1, 1_000);
        bytes memory payouts = bytes.concat(_entry(1, alice, 400), _entry(1, bob, 100));
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = _leaf(1, 0, 1, alice, 400);
        leaves[1] = _leaf(1, 1, 1, bob, 100);
        Rollup.BatchHeader memory h = _next(keccak256("r1"), 1);
        h.payoutRoot = _root(leaves);
        bytes memory altered = bytes.concat(_entry(1, alice, 400), _entry(1, bob, 101));
        bytes memory extra = bytes.concat(payouts, _entry(1, carol, 1));
        bytes memory truncated = new bytes(71);
        for (uint256 i = 0; i < 71; i++) truncated[i] = payouts[i];
        vm.startPrank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.PayoutRootMismatch.selector, h.payoutRoot, bytes32(0)));
        rollup.commitBatch(h, "", "");
        vm.expectRevert();
        rollup.commitBatch(h, "", altered);
        vm.expectRevert();
        rollup.commitBatch(h, "", extra);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BadPayouts.selector, 71));
        rollup.commitBatch(h, "", truncated);
        vm.stopPrank();
        _commitWith(h, "", payouts);
    }

    /// Any leaf of a tree of 1 to 33 payouts is claimable exactly once with the spec's proof.
    function testFuzzWithdrawalTree(uint8 size, uint8 pick, uint256 seed) public {
        uint256 n = bound(size, 1, 33);
        uint256 k = bound(pick, 0, n - 1);
        _deposit(alice, 1, 1e15);
        bytes32[] memory leaves = new bytes32[](n);
        address[] memory to = new address[](n);
        uint64[] memory amount = new uint64[](n);
        bytes memory payouts;
        for (uint256 i = 0; i < n; i++) {
            to[i] = address(uint160(uint256(keccak256(abi.encode(seed, i)))));
            amount[i] = uint64(bound(uint256(keccak256(abi.encode(seed, i, 1))), 1, 1e9));
            leaves[i] = _leaf(1, uint64(i), uint64(i), to[i], amount[i]);
            payouts = bytes.concat(payouts, _entry(uint64(i), to[i], amount[i]));
        }
        Rollup.BatchHeader memory h = _next(keccak256("r"), 1);
        h.payoutRoot = _root(leaves);
        assertEq(rollup.payoutRoot(1, payouts), h.payoutRoot, "the contract's root of the list");
        _finalize(_commitWith(h, "", payouts));
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
        (bytes32[] memory leaves, Rollup.BatchStatement memory s) = _payoutBatch();
        _finalize(s);
        Rollup.BatchHeader memory h2 = _next(keccak256("r2"), 2);
        Rollup.BatchStatement memory s2 = _commit(h2, "");
        vm.prank(guardian);
        rollup.pause();
        assertTrue(rollup.paused(), "paused");
        assertEq(rollup.pausedUntil(), block.timestamp + rollup.MAX_PAUSE(), "pause ends");

        token.mint(alice, 10);
        vm.prank(alice);
        token.approve(address(rollup), 10);
        vm.prank(alice);
        vm.expectRevert(Rollup.IsPaused.selector);
        rollup.deposit(1, 10);
        Rollup.BatchHeader memory h3 = _next(keccak256("r3"), 2);
        vm.prank(operator);
        vm.expectRevert(Rollup.IsPaused.selector);
        rollup.commitBatch(h3, "", "");
        bytes memory attestation = _attest(_hash(s2));
        vm.expectRevert(Rollup.IsPaused.selector);
        rollup.finalizeBatch(s2, attestation);
        // Money can always leave: claims and forced withdrawal requests are not paused.
        bytes32[] memory p0 = _proof(leaves, 0);
        rollup.claimWithdrawal(1, 0, 1, alice, 300_000, p0);
        rollup.requestForcedWithdrawal{value: FEE}(_withdrawTx(1, alice, 5));

        vm.prank(alice);
        vm.expectRevert(Rollup.NotGuardian.selector);
        rollup.unpause();
        vm.prank(guardian);
        rollup.unpause();
        rollup.finalizeBatch(s2, attestation);
    }

    function testPauseExpiresAndCannotBeRenewedAtOnce() public {
        vm.prank(guardian);
        rollup.pause();
        uint64 end = rollup.pausedUntil();
        vm.warp(end - 1);
        assertTrue(rollup.paused(), "still paused");
        vm.warp(end);
        assertTrue(!rollup.paused(), "expired on its own");
        _commit(_next(keccak256("r"), 0), "");
        // Not again before MAX_PAUSE has passed since it ended.
        uint64 again = end + rollup.MAX_PAUSE();
        vm.prank(guardian);
        vm.expectRevert(abi.encodeWithSelector(Rollup.PauseCoolingDown.selector, again));
        rollup.pause();
        vm.warp(again);
        vm.prank(admin);
        rollup.pause();
        assertTrue(rollup.paused(), "paused again");
    }

    function testChangesWaitForTheDelayAndCanBeCancelled() public {
        assertEq(rollup.changeDelay(), DEADLINE_PERIOD + rollup.EXIT_WINDOW(), "delay");
        assertTrue(rollup.changeDelay() > rollup.priorityDeadlinePeriod(), "longer than a deadline");
        vm.expectRevert(Rollup.NoPendingChange.selector);
        rollup.applyChange(Rollup.ChangeKind.Operator);
        vm.prank(admin);
        vm.expectRevert(Rollup.ZeroAddress.selector);
        rollup.announceChange(Rollup.ChangeKind.Operator, address(0));

        uint64 eta = uint64(block.timestamp) + rollup.changeDelay();
        vm.expectEmit(true, true, false, true, address(rollup));
        emit Rollup.ChangeAnnounced(Rollup.ChangeKind.Operator, alice, eta);
        vm.prank(admin);
        rollup.announceChange(Rollup.ChangeKind.Operator, alice);
        vm.warp(eta - 1);
        vm.expectRevert(abi.encodeWithSelector(Rollup.ChangeNotReady.selector, eta));
        rollup.applyChange(Rollup.ChangeKind.Operator);
        assertEq(rollup.operator(), operator, "unchanged before the delay");

        // Cancelled: nothing to apply, even after the delay.
        vm.prank(alice);
        vm.expectRevert(Rollup.NotAdmin.selector);
        rollup.cancelChange(Rollup.ChangeKind.Operator);
        vm.prank(admin);
        rollup.cancelChange(Rollup.ChangeKind.Operator);
        vm.warp(eta);
        vm.expectRevert(Rollup.NoPendingChange.selector);
        rollup.applyChange(Rollup.ChangeKind.Operator);

        // Announced again: applies after a full delay from the new announcement.
        _change(Rollup.ChangeKind.Operator, alice);
        assertEq(rollup.operator(), alice, "applied");
    }

    /// The drain the issue describes: swap in an always-true verifier, make yourself operator,
    /// commit a batch paying yourself and claim it, all in one block. Each change now waits
    /// `changeDelay`, announced on L1, so nothing of it happens at once.
    function testAdminCannotDrainInOneBlock() public {
        _deposit(alice, 1, 1_000_000);
        AlwaysTrue yes = new AlwaysTrue();
        vm.startPrank(admin);
        rollup.announceChange(Rollup.ChangeKind.Verifier, address(yes));
        rollup.announceChange(Rollup.ChangeKind.Operator, admin);
        vm.stopPrank();
        uint256 eta = block.timestamp + rollup.changeDelay();
        vm.expectRevert(abi.encodeWithSelector(Rollup.ChangeNotReady.selector, eta));
        rollup.applyChange(Rollup.ChangeKind.Verifier);
        vm.expectRevert(abi.encodeWithSelector(Rollup.ChangeNotReady.selector, eta));
        rollup.applyChange(Rollup.ChangeKind.Operator);
        Rollup.BatchHeader memory h = _next(keccak256("drain"), 1);
        vm.prank(admin);
        vm.expectRevert(Rollup.NotOperator.selector);
        rollup.commitBatch(h, "", "");
        assertEq(address(rollup.verifier()), address(verifier), "verifier unchanged");
    }

    /// The permutation the exodus checks call is pinned by code hash: the deployer cannot name
    /// another contract (one that answers anything would make every exit proof pass).
    function testConstructorPinsThePermutation() public {
        assertEq(permutation.codehash, rollup.exodusVerifier().PERMUTATION_CODEHASH(), "the pin is this code");
        assertEq(rollup.exodusVerifier().permutation(), permutation, "the one named");
        address fake = address(new TestStablecoin(address(this)));
        vm.expectRevert(abi.encodeWithSelector(ExodusVerifier.WrongPermutation.selector, fake, fake.codehash));
        new Rollup(IERC20(address(token)), IVerifier(address(verifier)), admin, operator, guardian, GENESIS, DEADLINE_PERIOD, fake);
        vm.expectRevert(abi.encodeWithSelector(ExodusVerifier.WrongPermutation.selector, address(0), bytes32(0)));
        new Rollup(IERC20(address(token)), IVerifier(address(verifier)), admin, operator, guardian, GENESIS, DEADLINE_PERIOD, address(0));
    }

    function testConstructorValidatesTheDeadlinePeriod() public {
        uint64 low = rollup.MIN_DEADLINE_PERIOD() - 1;
        uint64 high = rollup.MAX_DEADLINE_PERIOD() + 1;
        vm.expectRevert(abi.encodeWithSelector(Rollup.BadDeadlinePeriod.selector, low));
        new Rollup(IERC20(address(token)), IVerifier(address(verifier)), admin, operator, guardian, GENESIS, low, permutation);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BadDeadlinePeriod.selector, high));
        new Rollup(IERC20(address(token)), IVerifier(address(verifier)), admin, operator, guardian, GENESIS, high, permutation);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BadDeadlinePeriod.selector, 0));
        new Rollup(IERC20(address(token)), IVerifier(address(verifier)), admin, operator, guardian, GENESIS, 0, permutation);
    }

    function testRoles() public {
        vm.prank(alice);
        vm.expectRevert(Rollup.NotAdmin.selector);
        rollup.announceChange(Rollup.ChangeKind.Operator, alice);
        _change(Rollup.ChangeKind.Operator, alice);
        Rollup.BatchHeader memory h = _next(keccak256("r"), 0);
        vm.prank(operator);
        vm.expectRevert(Rollup.NotOperator.selector);
        rollup.commitBatch(h, "", "");
        vm.prank(alice);
        rollup.commitBatch(h, "", "");

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
        vm.deal(bob, FEE);
        vm.prank(bob);
        uint64 serial = rollup.requestForcedWithdrawal{value: FEE}(wtx);
        assertEq(serial, 0, "serial");
        assertEq(rollup.priorityHashAfter(1), _forcedStep(bytes32(0), 0, uint64(block.timestamp), wtx), "queued");
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
        rollup.commitBatch(h, "", "");
        // A later deposit does not help: the overdue op is first in line.
        _deposit(alice, 1, 10);
        _commit(_next(keccak256("r3"), 1), "");
        assertTrue(!rollup.priorityOpOverdue(), "served");
        assertEq(rollup.nextPriorityOpCommitted(), 1, "consumed");
    }

    /// The anti-spam fee (SPEC 15.2): exactly `FORCED_REQUEST_FEE`, owed to the operator, who
    /// alone withdraws it.
    function testForcedRequestsPayTheFeeToTheOperator() public {
        bytes memory wtx = _withdrawTx(5, alice, 42);
        assertEq(rollup.FORCED_REQUEST_FEE(), FEE, "fee");
        vm.expectRevert(abi.encodeWithSelector(Rollup.WrongFee.selector, FEE, 0));
        rollup.requestForcedWithdrawal(wtx);
        vm.expectRevert(abi.encodeWithSelector(Rollup.WrongFee.selector, FEE, FEE + 1));
        rollup.requestForcedWithdrawal{value: FEE + 1}(wtx);
        rollup.requestForcedWithdrawal{value: FEE}(wtx);
        rollup.requestForcedWithdrawal{value: FEE}(wtx);
        assertEq(rollup.operatorFees(), 2 * FEE, "owed");
        assertEq(address(rollup).balance, 2 * FEE, "held");
        vm.prank(alice);
        vm.expectRevert(Rollup.NotOperator.selector);
        rollup.withdrawFees(payable(alice));
        address payable sink = payable(address(0xFEE5));
        vm.prank(operator);
        rollup.withdrawFees(sink);
        assertEq(sink.balance, 2 * FEE, "paid out");
        assertEq(rollup.operatorFees(), 0, "nothing owed");
    }

    function testForcedWithdrawalRejectsMalformed() public {
        bytes memory wtx = _withdrawTx(5, alice, 42);
        bytes memory short = new bytes(128);
        vm.expectRevert(Rollup.BadWithdrawTx.selector);
        rollup.requestForcedWithdrawal{value: FEE}(short);
        wtx[0] = 0x02; // a transfer
        vm.expectRevert(Rollup.BadWithdrawTx.selector);
        rollup.requestForcedWithdrawal{value: FEE}(wtx);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BadAmount.selector, 0));
        rollup.requestForcedWithdrawal{value: FEE}(_withdrawTx(5, alice, 0));
        // To the zero address (L2's ZERO_DESTINATION: the payout could never be claimed).
        vm.expectRevert(Rollup.BadWithdrawTx.selector);
        rollup.requestForcedWithdrawal{value: FEE}(_withdrawTx(5, address(0), 42));
        // Fee, nonce, valid_until above 2^63 - 1 (the L2 decoder would refuse them).
        for (uint256 at = 33; at < 57; at += 8) {
            bytes memory bad = _withdrawTx(5, alice, 42);
            bad[at + 7] = 0x80;
            vm.expectRevert(Rollup.BadWithdrawTx.selector);
            rollup.requestForcedWithdrawal{value: FEE}(bad);
        }
        // A challenge limb equal to p = 2^64 - 2^32 + 1 (little-endian bytes 01 00 00 00 ff ff ff ff).
        for (uint256 at = 57; at < 89; at += 8) {
            bytes memory bad = _withdrawTx(5, alice, 42);
            bad[at] = 0x01;
            for (uint256 i = 4; i < 8; i++) {
                bad[at + i] = 0xff;
            }
            vm.expectRevert(Rollup.BadWithdrawTx.selector);
            rollup.requestForcedWithdrawal{value: FEE}(bad);
            bad[at] = 0x00; // p - 1: canonical
            rollup.requestForcedWithdrawal{value: FEE}(bad);
        }
        // A scalar equal to the group order n, and one just below it.
        bytes memory order = hex"e1ff8b9496d90fe89ca024d7395c88e83906b8cfe6ffff7f16000000f1ffff7f07000080fdffff7f";
        bytes memory atOrder = _withdrawTx(5, alice, 42);
        for (uint256 i = 0; i < 40; i++) {
            atOrder[89 + i] = order[i];
        }
        vm.expectRevert(Rollup.BadWithdrawTx.selector);
        rollup.requestForcedWithdrawal{value: FEE}(atOrder);
        atOrder[89] = 0xe0;
        rollup.requestForcedWithdrawal{value: FEE}(atOrder);
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
        h.payoutRoot = _root(leaves);
        _finalize(_commitWith(h, "", bytes.concat(_entry(1, alice, 100), _entry(1, alice, 100))));
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

/// A verifier that accepts anything (what a compromised admin would swap in).
contract AlwaysTrue {
    function verifyBatch(bytes32, bytes calldata) external pure returns (bool) {
        return true;
    }
}
