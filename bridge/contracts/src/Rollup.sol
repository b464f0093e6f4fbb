// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "./IERC20.sol";
import {IVerifier} from "./IVerifier.sol";
import {ReentrancyGuard} from "./ReentrancyGuard.sol";
import {ExodusVerifier} from "./ExodusVerifier.sol";
import {Schnorr} from "./Schnorr.sol";

/// @title Rollup: the L1 side of the validity rollup (docs/SPEC.md, section "L1 contract").
/// @notice One ERC-20 settlement token per deployment. Holds the deposited tokens, the L1
/// priority queue (deposits and forced withdrawals, serial numbers 0, 1, 2, ...), the chain of
/// committed and finalized batches, and the payout roots that release funds on L1.
///
/// Everything the batch proof must reproduce (the priority-queue chain, the payout tree and the
/// batch statement) is SHA-256 over packed bytes: a precompile on L1 and ~15 times cheaper than
/// keccak in the circuit (SPEC 15.8). keccak remains only in the attestation digest, which no
/// circuit computes.
///
/// Roles: `admin` (announces a new verifier or operator, sets the guardian), `operator`
/// (commits batches), `guardian` (pauses and unpauses; the admin can too). Finalization is
/// open to anyone: the verifier decides.
///
/// Protected control (SPEC 15.1): a new verifier or operator takes effect only `changeDelay`
/// after it is announced (`ChangeAnnounced`), longer than the forced-withdrawal deadline plus
/// `EXIT_WINDOW`, so that anyone who distrusts the change has time to force a withdrawal and
/// see it processed (or the deadline missed) first; the admin can cancel an announced change.
/// A pause stops deposits, commits and finalization only (never claims or forced requests),
/// lasts at most `MAX_PAUSE`, and cannot be renewed before the same time has passed.
///
/// Exodus (SPEC 15.9): once the operator has failed its duty (a priority op past its deadline
/// and not consumed by a committed batch, or not consumed by a finalized one a deadline period
/// later), anyone may switch the contract to exodus for good. Commits, finalization, deposits
/// and forced requests stop; every account of the last finalized state is paid its balance
/// once, against a Merkle proof, to the L1 address its key authorised with a signature; every
/// queued deposit no finalized batch consumed is refunded once to its depositor. None of it
/// needs the operator, and no pause can stop it.
contract Rollup is ReentrancyGuard {
    // ------------------------------------------------------------------ types and constants

    /// What the operator supplies with a batch (SPEC 15.3): only what the contract cannot know.
    /// Everything else in the statement comes from this contract's storage and the calldata, so
    /// an operator cannot restate the old root, where the batch starts in the queue or either
    /// queue hash.
    struct BatchHeader {
        uint64 batchNumber; // lastCommittedBatch + 1; batch 0 is genesis
        bytes32 newRoot; // state root after the batch (Digest::to_bytes, 32 bytes)
        bytes32 payoutRoot; // SHA-256 payout tree of the batch (SPEC 15.5), 0 if none
        uint64 nextPriorityOp; // the batch consumes serials [nextPriorityOpCommitted, next)
        uint64 timestamp; // the batch timestamp: its first L2 block's time
    }

    /// What the batch proof is verified against (SPEC 15.3). `commitBatch` builds it and emits it
    /// whole in `BatchCommitted`, so a finalizer needs nothing but L1 logs; only its hash is
    /// stored. `statementHash` packs the fields in this order (252 bytes).
    struct BatchStatement {
        uint64 chainId; // block.chainid (the constructor requires it < 2^64)
        address rollup; // address(this)
        uint64 batchNumber;
        bytes32 oldRoot; // committedRoot before the commit
        bytes32 newRoot;
        bytes32 diffHash; // sha256(pubdata): the state diff actually published
        bytes32 payoutRoot;
        uint64 firstPriorityOp; // nextPriorityOpCommitted before the commit
        uint64 nextPriorityOp;
        bytes32 priorityHashBefore; // priorityHashAfter[firstPriorityOp]
        bytes32 priorityHashAfter; // priorityHashAfter[nextPriorityOp]
        uint64 timestamp;
    }

    /// Priority op kinds: the tag of the L2 transaction kind they become (SPEC 8.2).
    uint8 public constant KIND_FORCED_WITHDRAWAL = 3;
    uint8 public constant KIND_DEPOSIT = 4;
    /// Largest amount (and serial) the L2 can represent (SPEC 5).
    uint64 public constant MAX_AMOUNT = type(uint64).max >> 1;
    /// L2 wire length of a signed withdraw transaction (SPEC 9).
    uint256 public constant WITHDRAW_TX_LENGTH = 129;
    /// Goldilocks prime: each of the four challenge limbs of a signature is below it (SPEC 4).
    uint64 private constant GOLDILOCKS_P = 0xFFFFFFFF00000001;
    /// ECgFp5 group order n = N_HI * 2^256 + N_LO: a signature's scalar is below it (SPEC 4).
    uint64 private constant ORDER_N_HI = 0x7FFFFFFD80000007;
    uint256 private constant ORDER_N_LO = 0x7FFFFFF1000000167FFFFFE6CFB80639E8885C39D724A09CE80FD996948BFFE1;
    /// Bytes of one payout entry in `commitBatch`'s list: uint64 from ‖ address to ‖ uint64 amount.
    uint256 public constant PAYOUT_ENTRY_LENGTH = 36;
    /// Payout leaves with `from >= REFUND_FROM_BASE` refund deposit `from - REFUND_FROM_BASE`.
    uint64 public constant REFUND_FROM_BASE = 1 << 32;
    /// Bounds of the forced-withdrawal deadline period: long enough for the sequencer to prove
    /// a batch, short enough that a censored user is not held for months.
    uint64 public constant MIN_DEADLINE_PERIOD = 1 hours;
    uint64 public constant MAX_DEADLINE_PERIOD = 30 days;
    /// Time users get, after a forced withdrawal's deadline, to act on it before an announced
    /// verifier or operator change may apply.
    uint64 public constant EXIT_WINDOW = 7 days;
    /// Longest pause, and the least time between the end of a pause and the next one.
    uint64 public constant MAX_PAUSE = 3 days;
    /// What a forced withdrawal request costs, in wei, owed to the operator (SPEC 15.2). Each
    /// request forces a signature check into a proof before a deadline; the fee prices a flood
    /// that could otherwise push the operator past its deadlines (and the rollup into exodus)
    /// for the cost of L1 gas. A protocol constant, not a setting: neither the operator nor the
    /// admin can price users out of their escape hatch. No cap on open requests: a cap (per
    /// account or in total) could be filled by the operator itself to censor.
    uint256 public constant FORCED_REQUEST_FEE = 0.001 ether;

    /// What an announced change replaces.
    enum ChangeKind {
        Verifier,
        Operator
    }

    // ------------------------------------------------------------------ state

    IERC20 public immutable token;
    /// Seconds the sequencer has to consume a priority op once it is queued.
    uint64 public immutable priorityDeadlinePeriod;
    /// Seconds between announcing a verifier or operator change and applying it:
    /// `priorityDeadlinePeriod + EXIT_WINDOW`.
    uint64 public immutable changeDelay;

    address public admin;
    address public pendingAdmin;
    address public operator;
    address public guardian;
    IVerifier public verifier;
    /// End of the current pause (0: never paused); paused while `block.timestamp < pausedUntil`.
    uint64 public pausedUntil;

    /// Poseidon and ECgFp5 checks of exodus, created by the constructor (code size limit).
    ExodusVerifier public immutable exodusVerifier;
    /// This deployment's domain digest (SPEC 8.1): what every L2 signature binds.
    bytes32 public immutable domainDigest;

    /// An announced change: the new address and the earliest time it may apply (0: none).
    struct PendingChange {
        address next;
        uint64 eta;
    }

    /// The announced change of each kind.
    mapping(ChangeKind => PendingChange) public pendingChange;

    /// Number of priority ops ever queued (the next serial).
    uint64 public priorityQueueLength;
    /// First serial not consumed by a committed batch.
    uint64 public nextPriorityOpCommitted;
    uint64 public lastCommittedBatch;
    uint64 public lastFinalizedBatch;
    /// Time of the last committed batch (0 before the first): the next batch may not claim an
    /// earlier one. Declared here to fill the slot of the batch counters, which every commit
    /// already reads and writes (the declaration order above is the storage packing).
    uint64 public lastCommittedTimestamp;

    bytes32 public committedRoot;
    bytes32 public finalizedRoot;

    /// `priorityHashAfter[n]`: SHA-256 rolling hash of the first n priority ops (0 for n = 0), kept
    /// per index so that a batch's range [first, next) is bound by two reads.
    mapping(uint256 => bytes32) public priorityHashAfter;
    /// Latest time at which a committed batch may still leave priority op `serial` unconsumed.
    mapping(uint256 => uint64) public priorityDeadline;
    /// `statementHash` of every committed batch's statement.
    mapping(uint256 => bytes32) public batchStatement;
    /// Payout root of every finalized batch (0: no payouts).
    mapping(uint256 => bytes32) public payoutRootOf;
    /// Claimed payout leaves.
    mapping(bytes32 => bool) public claimed;

    /// First serial not consumed by a finalized batch: in exodus, the first refundable deposit.
    uint64 public nextPriorityOpFinalized;
    /// Timestamp of the last finalized batch (0 for genesis): where a revert to it resumes.
    uint64 public lastFinalizedTimestamp;
    /// Set once, by `activateExodus`; never cleared.
    bool public exodus;
    /// The L1 address the accounts of a key exit to, by `keyId(w)`; set once, by a signature.
    mapping(bytes32 => address) public exitAddress;
    /// The L1 address that answers for a key's accounts, by `keyId(w)` (SPEC 20.9); set once,
    /// by the key's signature sent from that address.
    mapping(bytes32 => address) public ownerOf;
    /// The kind elements of the messages a key signs about an L1 address (ExodusVerifier).
    uint256 internal constant TAG_EXIT_AUTHORISATION = 6;
    uint256 internal constant TAG_OWNER_BINDING = 17;
    /// Accounts (by index) that have exited.
    mapping(uint256 => bool) public exited;
    /// Streams whose escrow was paid back in exodus, by `payer << 16 | slot`.
    mapping(uint256 => bool) public streamExited;
    /// Deposits (by serial) refunded in exodus.
    mapping(uint256 => bool) public depositRefunded;
    /// Forced-request fees the operator may withdraw (pulled, so that an operator address that
    /// refuses ether cannot block requests).
    uint256 public operatorFees;

    // ------------------------------------------------------------------ events

    event Deposit(
        uint64 indexed serial,
        address indexed depositor,
        uint32 indexed recipient,
        uint64 amount,
        uint64 deadline,
        bytes32 priorityHash
    );
    event ForcedWithdrawalRequested(
        uint64 indexed serial,
        address indexed requester,
        uint32 indexed account,
        address toL1,
        uint64 amount,
        uint64 requestedAt,
        uint64 deadline,
        bytes32 priorityHash,
        bytes withdrawTx
    );
    event BatchCommitted(uint64 indexed batchNumber, bytes32 indexed statement, BatchStatement s);
    event BatchFinalized(uint64 indexed batchNumber, bytes32 indexed statement, bytes32 newRoot, bytes32 payoutRoot);
    event WithdrawalClaimed(
        uint64 indexed batchNumber, uint64 indexed index, address indexed to, uint64 from, uint64 amount, bytes32 leaf
    );
    event ChangeAnnounced(ChangeKind indexed kind, address indexed next, uint64 eta);
    event ChangeCancelled(ChangeKind indexed kind, address indexed next);
    event Paused(address indexed by, uint64 until);
    event Unpaused(address indexed by);
    event ExodusActivated(uint64 indexed lastFinalizedBatch, bytes32 finalizedRoot, uint64 nextPriorityOpFinalized);
    event ExitAuthorised(bytes32 indexed keyId, address indexed to);
    event OwnerBound(bytes32 indexed keyId, address indexed owner);
    event ExitPerformed(uint32 indexed account, bytes32 indexed keyId, address indexed to, uint64 amount);
    event StreamEscrowExited(uint32 indexed payer, uint16 slot, bytes32 indexed keyId, address indexed to, uint64 amount);
    event DepositRefunded(uint64 indexed serial, address indexed depositor, uint64 amount);
    event FeesWithdrawn(address indexed to, uint256 amount);
    event BatchesReverted(uint64 indexed firstReverted, uint64 indexed lastReverted, bytes32 committedRoot);
    event AdminTransferStarted(address indexed current, address indexed pending);
    event AdminChanged(address indexed previous, address indexed current);
    event OperatorChanged(address indexed previous, address indexed current);
    event GuardianChanged(address indexed previous, address indexed current);
    event VerifierChanged(address indexed previous, address indexed current);

    // ------------------------------------------------------------------ errors

    error NotAdmin();
    error NotOperator();
    error NotGuardian();
    error NotPendingAdmin();
    error ZeroAddress();
    error IsPaused();
    error NotPaused();
    error PauseCoolingDown(uint64 until);
    error NoPendingChange();
    error ChangeNotReady(uint64 eta);
    error BadDeadlinePeriod(uint64 period);
    error BadAmount(uint256 amount);
    error TokenTransferFailed();
    error BadWithdrawTx();
    error ChainIdTooLarge();
    error BatchNumberMismatch(uint64 expected, uint64 got);
    error UnknownPriorityOp(uint64 next, uint64 queueLength);
    error PriorityOpOverdue(uint64 serial, uint64 deadline);
    error TimestampOutOfRange(uint64 lower, uint64 upper, uint64 got);
    error NothingToFinalize();
    error StatementMismatch(bytes32 expected, bytes32 got);
    error ProofRejected();
    error BatchNotFinalized(uint64 batchNumber);
    error AlreadyClaimed(bytes32 leaf);
    error BadMerkleProof();
    error InExodus();
    error NotInExodus();
    error ExodusNotDue();
    error ExitAlreadyAuthorised(bytes32 keyId);
    error BadExitAuthorisation();
    error OwnerAlreadyBound(bytes32 keyId);
    error BadOwnerBinding();
    error ExitNotAuthorised(bytes32 keyId);
    error ExtNotOpened(uint32 account);
    error AlreadyExited(uint32 account);
    error StreamAlreadyExited(uint32 payer, uint16 slot);
    error NotRefundable(uint64 serial);
    error AlreadyRefunded(uint64 serial);
    error BadDepositData();
    error BadRevert(uint64 keep);
    error BadPayouts(uint256 length);
    error PayoutRootMismatch(bytes32 header, bytes32 computed);
    error WrongFee(uint256 expected, uint256 got);
    error FeeTransferFailed();

    // ------------------------------------------------------------------ setup and roles

    constructor(
        IERC20 token_,
        IVerifier verifier_,
        address admin_,
        address operator_,
        address guardian_,
        bytes32 genesisRoot,
        uint64 priorityDeadlinePeriod_,
        address poseidonPermutation_
    ) {
        if (
            address(token_) == address(0) || address(verifier_) == address(0) || admin_ == address(0)
                || operator_ == address(0) || guardian_ == address(0)
        ) revert ZeroAddress();
        // The statement binds the chain id as 8 bytes; a larger id would be truncated and two
        // chains could share statements (and attestations).
        if (block.chainid > type(uint64).max) revert ChainIdTooLarge();
        if (priorityDeadlinePeriod_ < MIN_DEADLINE_PERIOD || priorityDeadlinePeriod_ > MAX_DEADLINE_PERIOD) {
            revert BadDeadlinePeriod(priorityDeadlinePeriod_);
        }
        token = token_;
        verifier = verifier_;
        admin = admin_;
        operator = operator_;
        guardian = guardian_;
        priorityDeadlinePeriod = priorityDeadlinePeriod_;
        changeDelay = priorityDeadlinePeriod_ + EXIT_WINDOW;
        committedRoot = genesisRoot;
        finalizedRoot = genesisRoot;
        // The permutation is deployed beforehand; ExodusVerifier checks its code hash.
        exodusVerifier = new ExodusVerifier(poseidonPermutation_);
        domainDigest = exodusVerifier.domainDigest(uint64(block.chainid), address(this));
        emit AdminChanged(address(0), admin_);
        emit OperatorChanged(address(0), operator_);
        emit GuardianChanged(address(0), guardian_);
        emit VerifierChanged(address(0), address(verifier_));
    }

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin();
        _;
    }

    modifier whenNotPaused() {
        if (paused()) revert IsPaused();
        _;
    }

    modifier notInExodus() {
        if (exodus) revert InExodus();
        _;
    }

    function paused() public view returns (bool) {
        return block.timestamp < pausedUntil;
    }

    function transferAdmin(address next) external onlyAdmin {
        pendingAdmin = next;
        emit AdminTransferStarted(admin, next);
    }

    function acceptAdmin() external {
        if (msg.sender != pendingAdmin) revert NotPendingAdmin();
        emit AdminChanged(admin, msg.sender);
        admin = msg.sender;
        pendingAdmin = address(0);
    }

    function setGuardian(address next) external onlyAdmin {
        if (next == address(0)) revert ZeroAddress();
        emit GuardianChanged(guardian, next);
        guardian = next;
    }

    /// Announces a new verifier (the stage switch, e.g. to an on-chain proof verifier) or
    /// operator; it may apply `changeDelay` from now. A new announcement of the same kind
    /// replaces the pending one (and its delay starts again).
    function announceChange(ChangeKind kind, address next) external onlyAdmin {
        if (next == address(0)) revert ZeroAddress();
        uint64 eta = uint64(block.timestamp) + changeDelay;
        pendingChange[kind] = PendingChange(next, eta);
        emit ChangeAnnounced(kind, next, eta);
    }

    /// Withdraws an announced change.
    function cancelChange(ChangeKind kind) external onlyAdmin {
        PendingChange memory c = pendingChange[kind];
        if (c.eta == 0) revert NoPendingChange();
        delete pendingChange[kind];
        emit ChangeCancelled(kind, c.next);
    }

    /// Applies an announced change once its delay has passed. Anyone may call it: the admin
    /// decided when it announced the change, and could cancel it until now.
    function applyChange(ChangeKind kind) external {
        PendingChange memory c = pendingChange[kind];
        if (c.eta == 0) revert NoPendingChange();
        if (block.timestamp < c.eta) revert ChangeNotReady(c.eta);
        delete pendingChange[kind];
        if (kind == ChangeKind.Verifier) {
            emit VerifierChanged(address(verifier), c.next);
            verifier = IVerifier(c.next);
        } else {
            emit OperatorChanged(operator, c.next);
            operator = c.next;
        }
    }

    /// Pauses deposits, commits and finalization for `MAX_PAUSE` at most. Claims and forced
    /// withdrawal requests are never paused. A new pause needs `MAX_PAUSE` to have passed
    /// since the last one ended.
    function pause() external {
        if (msg.sender != guardian && msg.sender != admin) revert NotGuardian();
        if (paused()) revert IsPaused();
        uint64 now_ = uint64(block.timestamp);
        if (pausedUntil != 0 && now_ < pausedUntil + MAX_PAUSE) revert PauseCoolingDown(pausedUntil + MAX_PAUSE);
        pausedUntil = now_ + MAX_PAUSE;
        emit Paused(msg.sender, pausedUntil);
    }

    function unpause() external {
        if (msg.sender != guardian && msg.sender != admin) revert NotGuardian();
        if (!paused()) revert NotPaused();
        pausedUntil = uint64(block.timestamp);
        emit Unpaused(msg.sender);
    }

    // ------------------------------------------------------------------ priority queue

    /// Locks `amount` base units of the token (approve first) and queues a deposit to L2 account
    /// `recipient`. Returns its serial (the L2 deposit `seq`).
    function deposit(uint32 recipient, uint64 amount)
        external
        nonReentrant
        whenNotPaused
        notInExodus
        returns (uint64 serial) {
        if (amount == 0 || amount > MAX_AMOUNT) revert BadAmount(amount);
        uint256 before = token.balanceOf(address(this));
        _safeTransferFrom(msg.sender, amount);
        // Tokens that take a fee on transfer would credit more on L2 than the contract holds.
        if (token.balanceOf(address(this)) - before != amount) revert TokenTransferFailed();
        serial = priorityQueueLength;
        // The entry (41 bytes) carries every field the L2 acts on, the depositor included (a
        // refund pays them), so the circuit can recompute the chain from what it applies.
        bytes32 hashAfter = sha256(
            abi.encodePacked(priorityHashAfter[serial], KIND_DEPOSIT, serial, msg.sender, recipient, amount)
        );
        uint64 deadline = _enqueue(serial, hashAfter);
        emit Deposit(serial, msg.sender, recipient, amount, deadline, hashAfter);
    }

    /// Queues a withdrawal the sequencer must process (apply or reject by the L2 rules) before the
    /// deadline. `withdrawTx` is the 129-byte L2 wire encoding of a signed withdraw (SPEC 9): L1
    /// cannot check an ECgFp5 signature, the L2 does (its expiry at this block's time). Only
    /// canonical encodings are queued, so every queued request decodes on L2. Anyone may submit,
    /// paying `FORCED_REQUEST_FEE` (`WrongFee` otherwise).
    function requestForcedWithdrawal(bytes calldata withdrawTx)
        external
        payable
        nonReentrant
        notInExodus
        returns (uint64 serial)
    {
        if (msg.value != FORCED_REQUEST_FEE) revert WrongFee(FORCED_REQUEST_FEE, msg.value);
        operatorFees += msg.value;
        _checkWithdrawTx(withdrawTx);
        uint64 requestedAt = uint64(block.timestamp);
        serial = priorityQueueLength;
        // The entry (146 bytes) holds the signed bytes themselves, not a hash of them, so the
        // circuit recomputes the chain from the very bytes it decodes, verifies and applies.
        bytes32 hashAfter = sha256(
            abi.encodePacked(priorityHashAfter[serial], KIND_FORCED_WITHDRAWAL, serial, requestedAt, withdrawTx)
        );
        uint64 deadline = _enqueue(serial, hashAfter);
        _emitForcedWithdrawal(serial, hashAfter, requestedAt, deadline, withdrawTx);
    }

    /// Sends the forced-request fees collected so far to `to`; the operator only.
    function withdrawFees(address payable to) external nonReentrant {
        if (msg.sender != operator) revert NotOperator();
        uint256 amount = operatorFees;
        operatorFees = 0;
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert FeeTransferFailed();
        emit FeesWithdrawn(to, amount);
    }

    /// The L2 decoder's rules for a withdraw (SPEC 9): length, tag, a non-zero destination,
    /// `0 < amount`, fee, nonce and valid_until `<= 2^63 - 1`, challenge limbs below p, scalar
    /// below n.
    function _checkWithdrawTx(bytes calldata w) private pure {
        if (w.length != WITHDRAW_TX_LENGTH || uint8(w[0]) != KIND_FORCED_WITHDRAWAL) revert BadWithdrawTx();
        if (bytes20(w[5:25]) == bytes20(0)) revert BadWithdrawTx();
        uint64 amount = uint64(_le(w[25:33]));
        if (amount == 0 || amount > MAX_AMOUNT) revert BadAmount(amount);
        for (uint256 at = 33; at < 57; at += 8) {
            if (_le(w[at:at + 8]) > MAX_AMOUNT) revert BadWithdrawTx();
        }
        for (uint256 at = 57; at < 89; at += 8) {
            if (_le(w[at:at + 8]) >= GOLDILOCKS_P) revert BadWithdrawTx();
        }
        uint256 sLo = _le(w[89:121]);
        uint256 sHi = _le(w[121:129]);
        if (sHi > ORDER_N_HI || (sHi == ORDER_N_HI && sLo >= ORDER_N_LO)) revert BadWithdrawTx();
    }

    function _emitForcedWithdrawal(
        uint64 serial,
        bytes32 hashAfter,
        uint64 requestedAt,
        uint64 deadline,
        bytes calldata withdrawTx
    ) private {
        emit ForcedWithdrawalRequested(
            serial,
            msg.sender,
            uint32(_le(withdrawTx[1:5])),
            address(bytes20(withdrawTx[5:25])),
            uint64(_le(withdrawTx[25:33])),
            requestedAt,
            deadline,
            hashAfter,
            withdrawTx
        );
    }

    /// Whether a queued priority op is past its deadline and still unconsumed by committed
    /// batches (the sequencer failed its duty; the next commit must consume it).
    function priorityOpOverdue() public view returns (bool) {
        uint64 next = nextPriorityOpCommitted;
        return next < priorityQueueLength && priorityDeadline[next] < block.timestamp;
    }

    /// Appends op `serial` (= priorityQueueLength) whose chain value H_{serial+1} = `hashAfter`
    /// = sha256(H_serial ‖ entry) the caller computed from the entry's packed fields.
    function _enqueue(uint64 serial, bytes32 hashAfter) private returns (uint64 deadline) {
        deadline = uint64(block.timestamp) + priorityDeadlinePeriod;
        priorityHashAfter[serial + 1] = hashAfter;
        priorityDeadline[serial] = deadline;
        priorityQueueLength = serial + 1;
    }

    // ------------------------------------------------------------------ batches

    /// The hash a batch is committed and verified under (SPEC 15.3): SHA-256 of the 252 packed
    /// bytes of `s` in field order, the form the batch circuit computes and exposes as its
    /// public input.
    function statementHash(BatchStatement memory s) public pure returns (bytes32) {
        return sha256(
            abi.encodePacked(
                s.chainId,
                s.rollup,
                s.batchNumber,
                s.oldRoot,
                s.newRoot,
                s.diffHash,
                s.payoutRoot,
                s.firstPriorityOp,
                s.nextPriorityOp,
                s.priorityHashBefore,
                s.priorityHashAfter,
                s.timestamp
            )
        );
    }

    /// Commits batch `h` with its pubdata and its payout list (both published here as calldata
    /// for data availability). The statement is built from storage: the operator's header only
    /// adds the new root, the payout root, how far the batch reads the queue and its timestamp.
    /// `payouts` (SPEC 15.5) must be the list whose tree has the header's payout root, so every
    /// payout the proof binds can be read back from L1 alone and claimed without the operator.
    function commitBatch(BatchHeader calldata h, bytes calldata pubdata, bytes calldata payouts)
        external
        whenNotPaused
        notInExodus
    {
        if (msg.sender != operator) revert NotOperator();
        uint64 n = lastCommittedBatch + 1;
        if (h.batchNumber != n) revert BatchNumberMismatch(n, h.batchNumber);
        bytes32 listed = payoutRoot(n, payouts);
        if (listed != h.payoutRoot) revert PayoutRootMismatch(h.payoutRoot, listed);
        uint64 first = nextPriorityOpCommitted;
        uint64 queued = priorityQueueLength;
        uint64 next = h.nextPriorityOp;
        if (next < first || next > queued) revert UnknownPriorityOp(next, queued);
        if (next < queued) {
            uint64 deadline = priorityDeadline[next];
            if (deadline < block.timestamp) revert PriorityOpOverdue(next, deadline);
        }
        // Not before the predecessor (an earlier time would let expired transactions through),
        // not after this block (the L2 cannot have run in the future).
        uint64 lower = lastCommittedTimestamp;
        if (h.timestamp < lower || h.timestamp > block.timestamp) {
            revert TimestampOutOfRange(lower, uint64(block.timestamp), h.timestamp);
        }

        BatchStatement memory s = BatchStatement({
            chainId: uint64(block.chainid),
            rollup: address(this),
            batchNumber: n,
            oldRoot: committedRoot,
            newRoot: h.newRoot,
            diffHash: sha256(pubdata),
            payoutRoot: h.payoutRoot,
            firstPriorityOp: first,
            nextPriorityOp: next,
            priorityHashBefore: priorityHashAfter[first],
            priorityHashAfter: priorityHashAfter[next],
            timestamp: h.timestamp
        });
        bytes32 statement = statementHash(s);
        batchStatement[n] = statement;
        committedRoot = h.newRoot;
        lastCommittedBatch = n;
        nextPriorityOpCommitted = next;
        lastCommittedTimestamp = h.timestamp;
        emit BatchCommitted(n, statement, s);
    }

    /// Finalizes the next committed batch once the verifier accepts `proof` for its statement.
    /// Anyone may call it. `s` is the statement emitted in `BatchCommitted`; only its hash is
    /// stored, so any other statement is refused before the verifier sees it.
    function finalizeBatch(BatchStatement calldata s, bytes calldata proof) external whenNotPaused notInExodus {
        uint64 n = lastFinalizedBatch + 1;
        if (n > lastCommittedBatch) revert NothingToFinalize();
        if (s.batchNumber != n) revert BatchNumberMismatch(n, s.batchNumber);
        bytes32 statement = statementHash(s);
        bytes32 stored = batchStatement[n];
        if (statement != stored) revert StatementMismatch(stored, statement);
        if (!verifier.verifyBatch(statement, proof)) revert ProofRejected();
        lastFinalizedBatch = n;
        finalizedRoot = s.newRoot;
        nextPriorityOpFinalized = s.nextPriorityOp;
        lastFinalizedTimestamp = s.timestamp;
        payoutRootOf[n] = s.payoutRoot;
        emit BatchFinalized(n, statement, s.newRoot, s.payoutRoot);
    }

    /// Reverts the committed, unfinalized batches after `keep` (SPEC 15.9): the operator's way
    /// out of a batch it cannot prove. `keep` is the statement of the batch that stays last
    /// (as emitted in `BatchCommitted`); to revert every unfinalized batch pass the last
    /// finalized batch's statement, or, before any finalization, a statement with
    /// `batchNumber = 0` (the rest is then ignored). The priority ops the reverted batches
    /// consumed are queued again with their deadlines unchanged, so the next commit must still
    /// consume any that is due.
    function revertBatches(BatchStatement calldata keep) external notInExodus {
        if (msg.sender != operator) revert NotOperator();
        uint64 k = keep.batchNumber;
        uint64 last = lastCommittedBatch;
        if (k < lastFinalizedBatch || k >= last) revert BadRevert(k);
        if (k == 0) {
            committedRoot = finalizedRoot;
            nextPriorityOpCommitted = 0;
            lastCommittedTimestamp = 0;
        } else {
            bytes32 statement = statementHash(keep);
            if (statement != batchStatement[k]) revert StatementMismatch(batchStatement[k], statement);
            committedRoot = keep.newRoot;
            nextPriorityOpCommitted = keep.nextPriorityOp;
            lastCommittedTimestamp = keep.timestamp;
        }
        for (uint64 n = k + 1; n <= last; n++) {
            delete batchStatement[n];
        }
        lastCommittedBatch = k;
        emit BatchesReverted(k + 1, last, committedRoot);
    }

    // ------------------------------------------------------------------ exodus

    /// Whether the operator has failed so that anyone may activate exodus: a priority op is past
    /// its deadline and no committed batch consumed it, or no finalized batch consumed it a
    /// further `priorityDeadlinePeriod` later (committed but never proven).
    function exodusDue() public view returns (bool) {
        if (priorityOpOverdue()) return true;
        uint64 k = nextPriorityOpFinalized;
        return k < priorityQueueLength && priorityDeadline[k] + priorityDeadlinePeriod < block.timestamp;
    }

    /// Switches to exodus, for good. Anyone may call it once `exodusDue()`.
    function activateExodus() external {
        if (exodus) revert InExodus();
        if (!exodusDue()) revert ExodusNotDue();
        exodus = true;
        emit ExodusActivated(lastFinalizedBatch, finalizedRoot, nextPriorityOpFinalized);
    }

    /// The id of an L2 key in `exitAddress`: keccak of its five encoding limbs.
    function keyId(uint256[5] calldata w) public pure returns (bytes32) {
        return keccak256(abi.encode(w));
    }

    /// Records the sender as the L1 address that answers for the accounts of key `w` (SPEC
    /// 20.9), on the key's signature of the owner binding naming the sender: the signature
    /// proves control of the key, sending proves control of the address. Once per key, so that
    /// an old signature cannot be replayed over a newer choice. Works in every mode (it moves
    /// no money).
    function bindOwner(uint256[5] calldata w, Schnorr.Signature calldata sig) external {
        bytes32 id = keyId(w);
        if (ownerOf[id] != address(0)) revert OwnerAlreadyBound(id);
        if (!exodusVerifier.signsAddress(domainDigest, TAG_OWNER_BINDING, w, msg.sender, sig)) {
            revert BadOwnerBinding();
        }
        ownerOf[id] = msg.sender;
        emit OwnerBound(id, msg.sender);
    }

    /// Records `to` as the L1 address the accounts of key `w` exit to, on the key's signature
    /// of the exit authorisation (SPEC 15.9). Once per key: a second authorisation, even a
    /// valid one, is refused, so an old signature cannot be replayed over a newer choice.
    /// Allowed before exodus too (a cautious user can prepare); anyone may submit it.
    function authoriseExit(uint256[5] calldata w, address to, Schnorr.Signature calldata sig) external {
        if (to == address(0)) revert ZeroAddress();
        bytes32 id = keyId(w);
        if (exitAddress[id] != address(0)) revert ExitAlreadyAuthorised(id);
        if (!exodusVerifier.signsAddress(domainDigest, TAG_EXIT_AUTHORISATION, w, to, sig)) {
            revert BadExitAuthorisation();
        }
        exitAddress[id] = to;
        emit ExitAuthorised(id, to);
    }

    /// Pays account `index` its whole balance in the last finalized state, once, to the
    /// address its key authorised. The account's fields and `siblings` must prove its leaf
    /// under `finalizedRoot` (SPEC 6, 7). Anyone may call it (the funds go to the owner's
    /// choice); a zero balance is recorded as exited and pays nothing. For a leaf whose `ext` is
    /// not zero (streams, shares, lanes or a passport) use `exitOpened`, which learns from the
    /// opened `ext` whether the account is an agent.
    function exit(
        uint32 index,
        uint256[5] calldata w,
        uint64 balance,
        uint64 nonce,
        bytes32 ext,
        bytes32[32] calldata siblings
    ) external nonReentrant {
        if (!exodus) revert NotInExodus();
        if (exited[index]) revert AlreadyExited(index);
        if (ext != bytes32(0)) revert ExtNotOpened(index);
        bytes32 id = keyId(w);
        address to = exitAddress[id];
        if (to == address(0)) revert ExitNotAuthorised(id);
        if (exodusVerifier.accountRoot(index, w, balance, nonce, ext, siblings) != finalizedRoot) {
            revert BadMerkleProof();
        }
        _exited(index, id, to, balance);
    }

    /// `exit` for a leaf whose `ext` is not zero (SPEC 15.9, 20.9): `streamsRoot` and `profile`
    /// open it (SPEC 18.3). An agent's balance goes to the address its **owner's** key
    /// authorised, not the agent key's (a leaked agent key must not take more than its policy
    /// allows): `owner` is then the owner's leaf, proven under the same root at the index the
    /// passport names. `owner` is ignored otherwise.
    function exitOpened(
        uint32 index,
        ExodusVerifier.AccountProof calldata account,
        bytes32 streamsRoot,
        ExodusVerifier.Profile calldata profile,
        ExodusVerifier.Leaf calldata owner
    ) external nonReentrant {
        if (!exodus) revert NotInExodus();
        if (exited[index]) revert AlreadyExited(index);
        (bytes32 id, address to) = _payee(account.w, profile, owner);
        bytes32 ext = exodusVerifier.extOf(streamsRoot, profile);
        if (
            exodusVerifier.accountRoot(index, account.w, account.balance, account.nonce, ext, account.siblings)
                != finalizedRoot
        ) revert BadMerkleProof();
        _exited(index, id, to, account.balance);
    }

    function _exited(uint32 index, bytes32 id, address to, uint64 balance) private {
        exited[index] = true;
        if (balance != 0) _safeTransfer(to, balance);
        emit ExitPerformed(index, id, to, balance);
    }

    /// Whose exit address receives what an account with key `w` and `profile` leaves with: its
    /// own key's, or for an agent its owner's (whose leaf `owner` must be under
    /// `finalizedRoot` at the index the passport names).
    function _payee(uint256[5] calldata w, ExodusVerifier.Profile calldata profile, ExodusVerifier.Leaf calldata owner)
        private
        view
        returns (bytes32 id, address to)
    {
        if (profile.agent) {
            if (exodusVerifier.leafRoot(profile.owner, owner) != finalizedRoot) revert BadMerkleProof();
            id = keyId(owner.w);
        } else {
            id = keyId(w);
        }
        to = exitAddress[id];
        if (to == address(0)) revert ExitNotAuthorised(id);
    }

    /// Pays back, once, the escrow of stream `slot` of account `payer` in the last finalized
    /// state (SPEC 15.9, "Streams"): `price x (maxTicks - settled)` to the address the payer's
    /// key authorised (its owner's, for an agent: `owner` as in `exitOpened`). The stream's
    /// fields and `streamPath` must give the payer's stream root, which with `profile` gives its
    /// `ext`, and the payer's leaf with that `ext` and `siblings` must lead to `finalizedRoot`.
    /// Ticks not settled before the last finalized batch are not paid: the payee settles as it
    /// goes. Independent of the exit of the balance.
    function exitStream(
        uint32 payer,
        ExodusVerifier.AccountProof calldata account,
        uint16 slot,
        ExodusVerifier.StreamLeaf calldata stream,
        bytes32[16] calldata streamPath,
        ExodusVerifier.Profile calldata profile,
        ExodusVerifier.Leaf calldata owner
    ) external nonReentrant {
        if (!exodus) revert NotInExodus();
        uint256 key = (uint256(payer) << 16) | slot;
        if (streamExited[key]) revert StreamAlreadyExited(payer, slot);
        (bytes32 id, address to) = _payee(account.w, profile, owner);
        if (stream.settled > stream.maxTicks) revert BadMerkleProof();
        bytes32 p = exodusVerifier.profileOf(profile);
        if (exodusVerifier.streamAccountRoot(payer, account, slot, stream, streamPath, p) != finalizedRoot) {
            revert BadMerkleProof();
        }
        streamExited[key] = true;
        uint64 amount = stream.price * (stream.maxTicks - stream.settled);
        if (amount != 0) _safeTransfer(to, amount);
        emit StreamEscrowExited(payer, slot, id, to, amount);
    }

    /// Refunds queued deposit `serial` to its depositor, once, if no finalized batch consumed
    /// it. The deposit's fields (from its `Deposit` event) must rebuild the queue chain.
    function refundDeposit(uint64 serial, address depositor, uint32 recipient, uint64 amount) external nonReentrant {
        if (!exodus) revert NotInExodus();
        if (serial < nextPriorityOpFinalized || serial >= priorityQueueLength) revert NotRefundable(serial);
        if (depositRefunded[serial]) revert AlreadyRefunded(serial);
        bytes32 hashAfter = sha256(
            abi.encodePacked(priorityHashAfter[serial], KIND_DEPOSIT, serial, depositor, recipient, amount)
        );
        if (hashAfter != priorityHashAfter[serial + 1]) revert BadDepositData();
        depositRefunded[serial] = true;
        _safeTransfer(depositor, amount);
        emit DepositRefunded(serial, depositor, amount);
    }

    // ------------------------------------------------------------------ withdrawals

    /// The payout leaf (SPEC 15.5): a withdrawal from L2 account `from`, or the refund of deposit
    /// `from - REFUND_FROM_BASE`. 52 packed bytes, one SHA-256 block; inner nodes hash 64, so a
    /// leaf can never pass for a node or the reverse.
    function payoutLeaf(uint64 batchNumber, uint64 index, uint64 from, address to, uint64 amount)
        public
        pure
        returns (bytes32)
    {
        return sha256(abi.encodePacked(batchNumber, index, from, to, amount));
    }

    /// The root of the payout tree (SPEC 15.5) of batch `batchNumber` whose entries are
    /// `payouts` (36 bytes each: uint64 from ‖ address to ‖ uint64 amount, packed); 0 for none.
    function payoutRoot(uint64 batchNumber, bytes calldata payouts) public pure returns (bytes32) {
        if (payouts.length % PAYOUT_ENTRY_LENGTH != 0) revert BadPayouts(payouts.length);
        uint256 n = payouts.length / PAYOUT_ENTRY_LENGTH;
        if (n == 0) return bytes32(0);
        uint256 width = 1;
        while (width < n) width <<= 1;
        bytes32[] memory level = new bytes32[](width);
        for (uint256 i = 0; i < n; i++) {
            uint256 at = i * PAYOUT_ENTRY_LENGTH;
            level[i] = sha256(abi.encodePacked(batchNumber, uint64(i), payouts[at:at + PAYOUT_ENTRY_LENGTH]));
        }
        for (; width > 1; width >>= 1) {
            for (uint256 j = 0; j < width / 2; j++) {
                level[j] = sha256(abi.encodePacked(level[2 * j], level[2 * j + 1]));
            }
        }
        return level[0];
    }

    /// Pays out leaf `index` of finalized batch `batchNumber` to `to`, once. Anyone may call it
    /// (the funds go to `to`). `proof` holds the siblings, leaf level first.
    function claimWithdrawal(
        uint64 batchNumber,
        uint64 index,
        uint64 from,
        address to,
        uint64 amount,
        bytes32[] calldata proof
    ) external nonReentrant {
        bytes32 root = payoutRootOf[batchNumber];
        if (batchNumber > lastFinalizedBatch || root == bytes32(0)) revert BatchNotFinalized(batchNumber);
        bytes32 leaf = payoutLeaf(batchNumber, index, from, to, amount);
        if (claimed[leaf]) revert AlreadyClaimed(leaf);
        if (proof.length > 64 || (index >> proof.length) != 0) revert BadMerkleProof();
        bytes32 node = leaf;
        for (uint256 l = 0; l < proof.length; l++) {
            node = ((index >> l) & 1) == 0
                ? sha256(abi.encodePacked(node, proof[l]))
                : sha256(abi.encodePacked(proof[l], node));
        }
        if (node != root) revert BadMerkleProof();
        claimed[leaf] = true;
        _safeTransfer(to, amount);
        emit WithdrawalClaimed(batchNumber, index, to, from, amount, leaf);
    }

    // ------------------------------------------------------------------ helpers

    /// Little-endian integer of up to 32 bytes.
    function _le(bytes calldata b) private pure returns (uint256 v) {
        for (uint256 i = b.length; i > 0; i--) {
            v = (v << 8) | uint8(b[i - 1]);
        }
    }

    function _safeTransferFrom(address from, uint256 amount) private {
        (bool ok, bytes memory ret) =
            address(token).call(abi.encodeCall(IERC20.transferFrom, (from, address(this), amount)));
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool)))) revert TokenTransferFailed();
    }

    function _safeTransfer(address to, uint256 amount) private {
        (bool ok, bytes memory ret) = address(token).call(abi.encodeCall(IERC20.transfer, (to, amount)));
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool)))) revert TokenTransferFailed();
    }
}
