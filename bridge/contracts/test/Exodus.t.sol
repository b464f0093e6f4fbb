// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {ExodusVectors} from "./ExodusVectors.sol";
import {Rollup} from "../src/Rollup.sol";
import {Schnorr} from "../src/Schnorr.sol";
import {ExodusVerifier} from "../src/ExodusVerifier.sol";
import {PoseidonPermutation} from "../src/PoseidonPermutation.sol";
import {IERC20} from "../src/IERC20.sol";
import {IVerifier} from "../src/IVerifier.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";
import {AttestationVerifier} from "../src/AttestationVerifier.sol";
import {logGas} from "./Poseidon.t.sol";

/// Exodus (SPEC 15.9) and batch reverts, from the user's and the attacker's side. The Rollup is
/// deployed where the vectors' domain says (anvil's first deployment: chain 31337, address
/// 0x5fbd...), with the vectors' final state as its genesis (= finalized) root and the tokens
/// backing it, so the Rust-signed authorisations and Rust-built proofs apply as they are.
contract ExodusTest is ExodusVectors {
    address internal constant ANVIL_DEPLOYER = 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266;
    address internal constant VECTOR_ROLLUP = 0x5FbDB2315678afecb367f032d93F642f64180aa3;

    function setUp() public override {
        vm.warp(1_700_000_000);
        _loadVectors();
        token = new TestStablecoin(address(this));
        verifier = new AttestationVerifier(vm.addr(ATTESTER_KEY));
        permutation = address(new PoseidonPermutation());
        vm.prank(ANVIL_DEPLOYER);
        rollup = new Rollup(
            IERC20(address(token)),
            IVerifier(address(verifier)),
            admin,
            operator,
            guardian,
            _exodusRoot(),
            DEADLINE_PERIOD,
            permutation
        );
        assertEq(address(rollup), VECTOR_ROLLUP, "deployed where the vectors' domain says");
        // The tokens behind the vectors' balances and escrows (their deposits happened before
        // genesis here).
        token.mint(address(rollup), _totalBalance() + _totalEscrow());
    }

    function _totalBalance() internal view returns (uint256 total) {
        for (uint256 i = 0; i < _accountCount(); i++) {
            total += _account(i).balance;
        }
    }

    function _totalEscrow() internal view returns (uint256 total) {
        for (uint256 i = 0; i < _streamCount(); i++) {
            total += _stream(i).escrow;
        }
    }

    /// A deposit that nobody processes, then its deadline passes: the operator has failed.
    function _operatorFails() internal {
        _deposit(alice, 1, 1_000);
        vm.warp(block.timestamp + DEADLINE_PERIOD + 1);
    }

    function _authoriseAll() internal {
        address to = _authorisedTo();
        for (uint256 i = 0; i < _authCount(); i++) {
            (uint256[5] memory w, Schnorr.Signature memory sig) = _auth(i);
            uint256 g = gasleft();
            rollup.authoriseExit(w, to, sig);
            if (i == 0) logGas("gas: authoriseExit", g - gasleft());
        }
    }

    /// Exits `a` the way its leaf requires: `exit` for a zero `ext`, else `exitOpened` (with its
    /// owner's leaf for an agent).
    function _exit(VectorAccount memory a) internal {
        if (a.ext == bytes32(0)) {
            rollup.exit(a.index, a.w, a.balance, a.nonce, a.ext, a.siblings);
        } else {
            rollup.exitOpened(a.index, _proof(a), a.streamsRoot, a.profile, _ownerLeaf(a));
        }
    }

    /// The leaf of `a`'s owner if `a` is an agent (an empty one otherwise: ignored).
    function _ownerLeaf(VectorAccount memory a) internal view returns (ExodusVerifier.Leaf memory l) {
        if (a.profile.agent) l = _leaf(a.profile.owner);
    }

    /// The key whose exit address receives `a`'s exits: its owner's for an agent.
    function _payeeKey(VectorAccount memory a) internal view returns (bytes32) {
        return a.profile.agent ? rollup.keyId(_account(a.profile.owner).w) : rollup.keyId(a.w);
    }

    function testDomainDigestMatchesTheRustDomain() public view {
        assertEq(rollup.domainDigest(), vm.parseJsonBytes32(json, ".domain.main.digest"), "domain digest");
    }

    function testExodusIsNotDueWhileTheOperatorKeepsUp() public {
        vm.expectRevert(Rollup.ExodusNotDue.selector);
        rollup.activateExodus();
        _deposit(alice, 1, 1_000);
        vm.warp(block.timestamp + DEADLINE_PERIOD);
        assertTrue(!rollup.exodusDue(), "at the deadline, not past it");
        vm.expectRevert(Rollup.ExodusNotDue.selector);
        rollup.activateExodus();
        // Committed in time: not due even past the deadline ...
        _commit(_next(keccak256("r1"), 1), "");
        vm.warp(block.timestamp + DEADLINE_PERIOD);
        assertTrue(!rollup.exodusDue(), "committed, proving allowance running");
        // ... but a commit that is never finalized makes it due a deadline period later.
        vm.warp(block.timestamp + 1);
        assertTrue(rollup.exodusDue(), "committed but never proven");
    }

    function testFinalizedBatchesKeepExodusAway() public {
        _deposit(alice, 1, 1_000);
        Rollup.BatchStatement memory s = _commit(_next(_exodusRoot(), 1), "");
        _finalize(s);
        vm.warp(block.timestamp + 10 * DEADLINE_PERIOD);
        assertTrue(!rollup.exodusDue(), "nothing is owed");
        assertEq(rollup.nextPriorityOpFinalized(), 1, "finalized serials");
    }

    function testAnyoneActivatesExodusAndEverythingElseStops() public {
        _operatorFails();
        vm.prank(bob);
        vm.expectEmit(true, false, false, true, address(rollup));
        emit Rollup.ExodusActivated(0, _exodusRoot(), 0);
        rollup.activateExodus();
        assertTrue(rollup.exodus(), "exodus");
        vm.expectRevert(Rollup.InExodus.selector);
        rollup.activateExodus();
        Rollup.BatchHeader memory late = _next(keccak256("late"), 1);
        vm.prank(operator);
        vm.expectRevert(Rollup.InExodus.selector);
        rollup.commitBatch(late, "", "");
        token.mint(alice, 10);
        vm.prank(alice);
        token.approve(address(rollup), 10);
        vm.prank(alice);
        vm.expectRevert(Rollup.InExodus.selector);
        rollup.deposit(1, 10);
        vm.expectRevert(Rollup.InExodus.selector);
        rollup.requestForcedWithdrawal{value: FEE}(_withdrawTx(1, alice, 5));
    }

    function testEveryAccountExitsOnceWithItsFinalizedBalance() public {
        _operatorFails();
        rollup.activateExodus();
        _authoriseAll();
        address to = _authorisedTo();
        uint256 before = token.balanceOf(to);
        uint256 n = _accountCount();
        assertEq(n, 4, "four accounts in the vectors (the last an agent of alice)");
        for (uint256 i = 0; i < n; i++) {
            VectorAccount memory a = _account(i);
            ExodusVerifier.AccountProof memory proof = _proof(a);
            ExodusVerifier.Leaf memory owner = _ownerLeaf(a);
            vm.expectEmit(true, true, true, true, address(rollup));
            emit Rollup.ExitPerformed(a.index, _payeeKey(a), to, a.balance);
            // Only the contract call is measured (the vectors are read before).
            uint256 g = gasleft();
            if (a.ext == bytes32(0)) {
                rollup.exit(a.index, a.w, a.balance, a.nonce, a.ext, a.siblings);
            } else {
                rollup.exitOpened(a.index, proof, a.streamsRoot, a.profile, owner);
            }
            g -= gasleft();
            if (i == 0) logGas("gas: exit", g);
            if (i == 1) logGas("gas: exitOpened (a stream payer)", g);
            if (i == 3) logGas("gas: exitOpened (an agent, paid to its owner)", g);
            assertTrue(rollup.exited(a.index), "recorded");
        }
        assertEq(token.balanceOf(to) - before, _totalBalance(), "paid exactly the finalized balances");
        // Once.
        VectorAccount memory again = _account(1);
        vm.expectRevert(abi.encodeWithSelector(Rollup.AlreadyExited.selector, again.index));
        _exit(again);
    }

    function _proof(VectorAccount memory a) internal pure returns (ExodusVerifier.AccountProof memory p) {
        p.w = a.w;
        p.balance = a.balance;
        p.nonce = a.nonce;
        p.siblings = a.siblings;
    }

    function _exitStream(VectorStream memory s) internal {
        VectorAccount memory payer = _account(s.payer);
        rollup.exitStream(s.payer, _proof(payer), s.slot, s.leaf, s.path, payer.profile, _ownerLeaf(payer));
    }

    /// Issue 15 / SPEC 20.9: an agent's balance leaves to the address its owner's key
    /// authorised. The agent key's own authorisation is neither needed nor used; an opening
    /// that hides the passport, or names another leaf as the owner, does not verify; `exit`
    /// refuses a leaf whose `ext` it would have to trust.
    function testAnAgentExitsToItsOwnersAddress() public {
        _operatorFails();
        rollup.activateExodus();
        uint256 agentIndex = 3;
        VectorAccount memory agent = _account(agentIndex);
        assertTrue(agent.profile.agent, "account 3 is an agent");
        assertEq(uint256(agent.profile.owner), 1, "of alice");
        assertTrue(agent.balance > 0, "with a balance");
        // Only the agent key authorised: not enough, the owner's key decides.
        (uint256[5] memory wAgent, Schnorr.Signature memory sAgent) = _auth(agentIndex);
        rollup.authoriseExit(wAgent, _authorisedTo(), sAgent);
        vm.expectRevert(abi.encodeWithSelector(Rollup.ExitNotAuthorised.selector, rollup.keyId(_account(1).w)));
        _exit(agent);
        (uint256[5] memory wAlice, Schnorr.Signature memory sAlice) = _auth(1);
        rollup.authoriseExit(wAlice, _authorisedTo(), sAlice);
        // `exit` cannot tell an agent from its ext: refused.
        vm.expectRevert(abi.encodeWithSelector(Rollup.ExtNotOpened.selector, uint32(agentIndex)));
        rollup.exit(agent.index, agent.w, agent.balance, agent.nonce, agent.ext, agent.siblings);
        // Hiding the passport: another ext, another root. (Each forgery starts from a fresh copy:
        // a memory struct assigned is shared, not copied.)
        ExodusVerifier.Profile memory hidden = _account(agentIndex).profile;
        hidden.agent = false;
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        rollup.exitOpened(agent.index, _proof(agent), agent.streamsRoot, hidden, _ownerLeaf(agent));
        // Another owner's leaf (bob's) at the owner's index.
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        rollup.exitOpened(agent.index, _proof(agent), agent.streamsRoot, agent.profile, _leaf(2));
        // Another owner in the passport (bob, whose key authorised exits too): bob's leaf is
        // genuine, but the passport then is not the agent's.
        (uint256[5] memory wBob, Schnorr.Signature memory sBob) = _auth(2);
        rollup.authoriseExit(wBob, _authorisedTo(), sBob);
        ExodusVerifier.Profile memory moved = _account(agentIndex).profile;
        moved.owner = 2;
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        rollup.exitOpened(agent.index, _proof(agent), agent.streamsRoot, moved, _leaf(2));
        // The honest opening: paid to alice's address, under alice's key.
        uint256 before = token.balanceOf(_authorisedTo());
        vm.expectEmit(true, true, true, true, address(rollup));
        emit Rollup.ExitPerformed(agent.index, rollup.keyId(wAlice), _authorisedTo(), agent.balance);
        _exit(agent);
        assertEq(token.balanceOf(_authorisedTo()) - before, agent.balance, "the agent's balance");
    }

    function testStreamEscrowsExitOnceToThePayer() public {
        _operatorFails();
        rollup.activateExodus();
        _authoriseAll();
        address to = _authorisedTo();
        assertEq(_streamCount(), 1, "one open stream in the vectors");
        VectorStream memory s = _stream(0);
        assertEq(uint256(s.escrow), uint256(s.leaf.price) * (s.leaf.maxTicks - s.leaf.settled), "escrow");
        assertTrue(s.escrow > 0, "something to pay back");
        uint256 before = token.balanceOf(to);
        vm.expectEmit(true, true, true, true, address(rollup));
        emit Rollup.StreamEscrowExited(s.payer, s.slot, rollup.keyId(_account(s.payer).w), to, s.escrow);
        VectorAccount memory payer = _account(s.payer);
        ExodusVerifier.AccountProof memory proof = _proof(payer);
        ExodusVerifier.Leaf memory none = _ownerLeaf(payer);
        // Only the contract call is measured (the vectors are read before).
        uint256 g = gasleft();
        rollup.exitStream(s.payer, proof, s.slot, s.leaf, s.path, payer.profile, none);
        logGas("gas: exitStream", g - gasleft());
        assertEq(token.balanceOf(to) - before, s.escrow, "the escrow, to the payer's exit address");
        vm.expectRevert(abi.encodeWithSelector(Rollup.StreamAlreadyExited.selector, s.payer, s.slot));
        _exitStream(s);
        // The payer's balance is a separate exit, with the same leaf.
        _exit(_account(s.payer));
        assertEq(
            token.balanceOf(to) - before, uint256(s.escrow) + _account(s.payer).balance, "escrow and balance, once each"
        );
    }

    function testStreamExitRefusesForgedStreams() public {
        VectorStream memory s = _stream(0);
        vm.expectRevert(Rollup.NotInExodus.selector);
        _exitStream(s);
        _operatorFails();
        rollup.activateExodus();
        vm.expectRevert(abi.encodeWithSelector(Rollup.ExitNotAuthorised.selector, rollup.keyId(_account(s.payer).w)));
        _exitStream(s);
        _authoriseAll();
        // Fewer ticks settled, more ticks, a higher price: a larger escrow than the leaf's.
        VectorStream memory f = _stream(0);
        f.leaf.maxTicks += 1;
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        _exitStream(f);
        f = _stream(0);
        f.leaf.price += 1;
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        _exitStream(f);
        f = _stream(0);
        f.leaf.settled = f.leaf.maxTicks + 1;
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        _exitStream(f);
        // Another slot, a wrong sibling, a profile, another payer's account.
        f = _stream(0);
        f.slot += 1;
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        _exitStream(f);
        f = _stream(0);
        f.path[3] = bytes32(uint256(f.path[3]) ^ 1);
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        _exitStream(f);
        VectorAccount memory payer = _account(s.payer);
        ExodusVerifier.Profile memory wrong = payer.profile;
        wrong.shares = bytes32(uint256(1));
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        rollup.exitStream(s.payer, _proof(payer), s.slot, s.leaf, s.path, wrong, _ownerLeaf(payer));
        VectorAccount memory bob = _account(2);
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        rollup.exitStream(2, _proof(bob), s.slot, s.leaf, s.path, bob.profile, _ownerLeaf(bob));
        assertTrue(!rollup.streamExited((uint256(s.payer) << 16) | s.slot), "nothing recorded");
        _exitStream(s);
    }

    function testExitRefusesWrongProofsAmountsAndOrder() public {
        VectorAccount memory a = _account(2);
        vm.expectRevert(Rollup.NotInExodus.selector);
        _exit(a);
        _operatorFails();
        rollup.activateExodus();
        vm.expectRevert(abi.encodeWithSelector(Rollup.ExitNotAuthorised.selector, rollup.keyId(a.w)));
        _exit(a);
        _authoriseAll();
        // A larger amount than the leaf holds.
        VectorAccount memory more = _account(2);
        more.balance += 1;
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        _exit(more);
        // A wrong sibling.
        VectorAccount memory bad = _account(2);
        bad.siblings[7] = bytes32(uint256(bad.siblings[7]) ^ 1);
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        _exit(bad);
        // Another account's index with this account's leaf.
        VectorAccount memory moved = _account(2);
        moved.index = 5;
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        _exit(moved);
        // Another key claiming this leaf (its own authorisation exists: key 1 is alice's).
        VectorAccount memory other = _account(2);
        other.w = _account(1).w;
        vm.expectRevert(Rollup.BadMerkleProof.selector);
        _exit(other);
        // A non-canonical element is refused before hashing.
        VectorAccount memory wide = _account(2);
        wide.nonce = uint64(Schnorr.P);
        vm.expectRevert();
        _exit(wide);
        assertTrue(!rollup.exited(a.index), "nothing recorded");
        _exit(a);
    }

    function testAuthorisationRefusesForgeriesAndReplays() public {
        (uint256[5] memory w, Schnorr.Signature memory sig) = _auth(2);
        address to = _authorisedTo();
        // The signature names `to`; any other destination fails.
        vm.expectRevert(Rollup.BadExitAuthorisation.selector);
        rollup.authoriseExit(w, alice, sig);
        vm.expectRevert(Rollup.ZeroAddress.selector);
        rollup.authoriseExit(w, address(0), sig);
        // Another key's signature.
        (, Schnorr.Signature memory other) = _auth(1);
        vm.expectRevert(Rollup.BadExitAuthorisation.selector);
        rollup.authoriseExit(w, to, other);
        (, Schnorr.Signature memory flipped) = _auth(2);
        flipped.sLo ^= 1;
        vm.expectRevert(Rollup.BadExitAuthorisation.selector);
        rollup.authoriseExit(w, to, flipped);
        // Allowed before exodus; once per key.
        rollup.authoriseExit(w, to, sig);
        assertEq(rollup.exitAddress(rollup.keyId(w)), to, "recorded");
        vm.expectRevert(abi.encodeWithSelector(Rollup.ExitAlreadyAuthorised.selector, rollup.keyId(w)));
        rollup.authoriseExit(w, to, sig);
    }

    function testOwnerBindingIsSentByTheOwnerAndRecordedOnce() public {
        // The Rust message and the contract's are the same.
        uint256[4] memory m = rollup.exodusVerifier().addressMessage(rollup.domainDigest(), 17, _bindingOwner());
        uint256[4] memory want = _four(".exodus.owner_binding.message_elements");
        for (uint256 i = 0; i < 4; i++) {
            assertEq(m[i], want[i], "message");
        }
        (uint256[5] memory w, Schnorr.Signature memory sig) = _binding(1);
        address owner = _bindingOwner();
        bytes32 id = rollup.keyId(w);
        // Sent by anyone but the address the key named: refused (the sender is the owner).
        vm.prank(alice);
        vm.expectRevert(Rollup.BadOwnerBinding.selector);
        rollup.bindOwner(w, sig);
        // Another key's signature, a flipped one, and the exit authorisation of the same key.
        (, Schnorr.Signature memory other) = _binding(2);
        vm.prank(owner);
        vm.expectRevert(Rollup.BadOwnerBinding.selector);
        rollup.bindOwner(w, other);
        (, Schnorr.Signature memory flipped) = _binding(1);
        flipped.sLo ^= 1;
        vm.prank(owner);
        vm.expectRevert(Rollup.BadOwnerBinding.selector);
        rollup.bindOwner(w, flipped);
        (, Schnorr.Signature memory exitAuth) = _auth(1);
        vm.prank(_authorisedTo());
        vm.expectRevert(Rollup.BadOwnerBinding.selector);
        rollup.bindOwner(w, exitAuth);
        assertEq(rollup.ownerOf(id), address(0), "nothing recorded");
        // From the owner: recorded, announced, once.
        vm.expectEmit(true, true, false, false, address(rollup));
        emit Rollup.OwnerBound(id, owner);
        vm.prank(owner);
        uint256 g = gasleft();
        rollup.bindOwner(w, sig);
        logGas("gas: bindOwner", g - gasleft());
        assertEq(rollup.ownerOf(id), owner, "recorded");
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Rollup.OwnerAlreadyBound.selector, id));
        rollup.bindOwner(w, sig);
    }

    function testQueuedDepositsAreRefundedOnce() public {
        // Serial 0 is consumed by a finalized batch; 1 and 2 never are.
        _deposit(alice, 1, 700);
        _finalize(_commit(_next(_exodusRoot(), 1), ""));
        _deposit(alice, 1, 800);
        _deposit(bob, 2, 900);
        vm.warp(block.timestamp + DEADLINE_PERIOD + 1);
        vm.expectRevert(Rollup.NotInExodus.selector);
        rollup.refundDeposit(1, alice, 1, 800);
        rollup.activateExodus();
        vm.expectRevert(abi.encodeWithSelector(Rollup.NotRefundable.selector, 0));
        rollup.refundDeposit(0, alice, 1, 700);
        vm.expectRevert(abi.encodeWithSelector(Rollup.NotRefundable.selector, 3));
        rollup.refundDeposit(3, alice, 1, 800);
        vm.expectRevert(Rollup.BadDepositData.selector);
        rollup.refundDeposit(1, alice, 1, 801);
        vm.expectRevert(Rollup.BadDepositData.selector);
        rollup.refundDeposit(1, bob, 1, 800);
        uint256 aliceBefore = token.balanceOf(alice);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit Rollup.DepositRefunded(1, alice, 800);
        uint256 g = gasleft();
        rollup.refundDeposit(1, alice, 1, 800);
        logGas("gas: refundDeposit", g - gasleft());
        assertEq(token.balanceOf(alice) - aliceBefore, 800, "refunded");
        vm.expectRevert(abi.encodeWithSelector(Rollup.AlreadyRefunded.selector, 1));
        rollup.refundDeposit(1, alice, 1, 800);
        rollup.refundDeposit(2, bob, 2, 900);
    }

    function testPauseCannotStopExodus() public {
        _operatorFails();
        vm.prank(guardian);
        rollup.pause();
        rollup.activateExodus();
        _authoriseAll();
        _exit(_account(0));
        rollup.refundDeposit(0, alice, 1, 1_000);
        assertTrue(rollup.paused(), "still paused");
    }

    function testOperatorRevertsUnfinalizedBatches() public {
        _deposit(alice, 1, 100);
        _deposit(alice, 1, 200);
        Rollup.BatchStatement memory s1 = _commit(_next(keccak256("r1"), 1), "");
        _finalize(s1);
        vm.warp(block.timestamp + 10);
        Rollup.BatchStatement memory s2 = _commit(_next(keccak256("r2"), 2), "a");
        vm.warp(block.timestamp + 10);
        _commit(_next(keccak256("r3"), 2), "b");
        vm.prank(alice);
        vm.expectRevert(Rollup.NotOperator.selector);
        rollup.revertBatches(s1);
        // Not below the finalized batch, not the last batch itself, only its true statement.
        Rollup.BatchStatement memory genesis;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Rollup.BadRevert.selector, 0));
        rollup.revertBatches(genesis);
        Rollup.BatchStatement memory forged = _copy(s2);
        forged.newRoot = keccak256("forged");
        vm.prank(operator);
        vm.expectRevert();
        rollup.revertBatches(forged);
        // Keep batch 2: batch 3 goes.
        vm.prank(operator);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit Rollup.BatchesReverted(3, 3, keccak256("r2"));
        rollup.revertBatches(s2);
        assertEq(rollup.lastCommittedBatch(), 2, "batch 3 reverted");
        assertEq(rollup.batchStatement(3), bytes32(0), "statement cleared");
        // Back to the finalized batch: serial 1 is queued again and batch 2 is recommitted.
        vm.prank(operator);
        rollup.revertBatches(s1);
        assertEq(rollup.lastCommittedBatch(), 1, "back to the finalized batch");
        assertEq(rollup.committedRoot(), keccak256("r1"), "root");
        assertEq(rollup.nextPriorityOpCommitted(), 1, "serial 1 queued again");
        assertEq(rollup.lastCommittedTimestamp(), s1.timestamp, "time resumes at batch 1");
        Rollup.BatchStatement memory again = _commit(_next(keccak256("r2'"), 2), "c");
        _finalize(again);
        assertEq(rollup.finalizedRoot(), keccak256("r2'"), "the recommitted batch finalizes");
    }

    function testRevertToGenesisBeforeAnyFinalization() public {
        _deposit(alice, 1, 100);
        _commit(_next(keccak256("r1"), 1), "");
        Rollup.BatchStatement memory genesis;
        vm.prank(operator);
        rollup.revertBatches(genesis);
        assertEq(rollup.lastCommittedBatch(), 0, "no batch");
        assertEq(rollup.committedRoot(), _exodusRoot(), "genesis root");
        assertEq(rollup.nextPriorityOpCommitted(), 0, "deposit queued again");
    }

    function testCommitAndFinalizeGas() public {
        _deposit(alice, 1, 100);
        bytes memory pubdata = new bytes(1_000);
        Rollup.BatchHeader memory h = _next(keccak256("r1"), 1);
        Rollup.BatchStatement memory s = _expected(h, pubdata);
        vm.prank(operator);
        uint256 g = gasleft();
        rollup.commitBatch(h, pubdata, "");
        logGas("gas: commitBatch (1,000 bytes of pubdata, one deposit)", g - gasleft());
        bytes memory attestation = _attest(_hash(s));
        g = gasleft();
        rollup.finalizeBatch(s, attestation);
        logGas("gas: finalizeBatch (attestation)", g - gasleft());

        // The same with 16 payouts listed (SPEC 15.5): the list's calldata and its tree.
        bytes memory payouts;
        bytes32[] memory leaves = new bytes32[](16);
        for (uint256 i = 0; i < 16; i++) {
            address to = address(uint160(0x1000 + i));
            payouts = bytes.concat(payouts, _entry(uint64(i), to, uint64(100 + i)));
            leaves[i] = _leaf(2, uint64(i), uint64(i), to, uint64(100 + i));
        }
        h = _next(keccak256("r2"), 1);
        h.payoutRoot = _root(leaves);
        vm.prank(operator);
        g = gasleft();
        rollup.commitBatch(h, pubdata, payouts);
        logGas("gas: commitBatch (1,000 bytes of pubdata, 16 payouts)", g - gasleft());
    }
}
