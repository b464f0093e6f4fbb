//! Node configuration: every option is a flag with an environment-variable twin.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// rollup-node: the sequencer of the agent-payments rollup.
///
/// Takes signed payments over gRPC (rollup.v1, with reflection and the standard health
/// service), orders them in a single writer, makes them durable in Postgres with group commit
/// before answering, seals blocks and prover batches, and serves health, metrics and JSON
/// queries over HTTP.
#[derive(Parser, Debug, Clone)]
#[command(name = "rollup-node", version)]
pub struct Config {
    /// Postgres connection URL. The schema is created/migrated at start.
    #[arg(
        long,
        env = "DATABASE_URL",
        required_unless_present_any = ["print_genesis_root", "print_operator_pubkey"]
    )]
    pub database_url: Option<String>,

    /// Address of the gRPC API (rollup.v1).
    #[arg(long, env = "ROLLUP_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,

    /// Address of the HTTP server (/healthz, /readyz, /metrics, /v1/...).
    #[arg(long, env = "ROLLUP_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// L1 chain id, part of every signed message's domain.
    #[arg(long, env = "ROLLUP_CHAIN_ID", default_value_t = 31337)]
    pub chain_id: u64,

    /// L1 Rollup contract address (20 bytes hex), part of every signed message's domain.
    #[arg(
        long,
        env = "ROLLUP_ADDRESS",
        default_value = "0x0000000000000000000000000000000000000001"
    )]
    pub rollup_address: String,

    /// File with the operator's 40-byte secret key in hex (the fee account, index 0).
    /// Required unless --devnet, which uses a fixed, publicly known development key.
    #[arg(long, env = "ROLLUP_OPERATOR_KEY")]
    pub operator_key: Option<PathBuf>,

    /// Development network: enables the Faucet RPC and the development operator key.
    #[arg(long, env = "ROLLUP_DEVNET")]
    pub devnet: bool,

    /// Devnet only, experimental: accept payment-stream transactions (open, settle, close)
    /// and revenue-share accounts (register shares, distribute), and relay ticks (SendTicks,
    /// WatchTicks, GetStream), whatever the pinned circuits prove. A batch that holds a kind
    /// they do not prove is never finalized: for developing agents against the stream and
    /// share APIs, never for real money. (Split payments need no flag: they are accepted
    /// whenever the pinned circuits include the `-splits` final circuits; the stream kinds,
    /// and the tick relay, whenever they include the `-walks` ones, built by a prover whose
    /// leaf has the stream kinds; revenue shares whenever they include a `v4-shares` final,
    /// built by a prover whose leaf has the revenue-share kinds.)
    #[arg(long, env = "ROLLUP_EXPERIMENTAL_STREAMS", requires = "devnet")]
    pub experimental_streams: bool,

    /// Devnet only, experimental: accept agent passports (delegate, set policy, revoke, sweep:
    /// docs/SPEC.md 20) and nonces of lanes 1 to 7, and answer GetPassport. Every agent spend
    /// is judged by its policy natively and by a leaf with policy checks, but the diff of a
    /// batch that creates an agent or changes a policy (its policy's body) is not proven yet,
    /// so such a batch is never finalized: for developing agents, never for real money.
    /// (Without this flag, lanes are accepted whenever the pinned circuits include a
    /// `v4-agents` final, built by a prover with `--leaf-policies`.)
    #[arg(long, env = "ROLLUP_EXPERIMENTAL_AGENTS", requires = "devnet")]
    pub experimental_agents: bool,

    /// Largest amount one Faucet call may credit (devnet only).
    #[arg(long, env = "ROLLUP_FAUCET_MAX", default_value_t = 1_000_000_000_000)]
    pub faucet_max: u64,

    /// A block is sealed this long after its first transaction (milliseconds).
    #[arg(long, env = "ROLLUP_BLOCK_INTERVAL_MS", default_value_t = 250)]
    pub block_interval_ms: u64,

    /// A prover batch is sealed after this many blocks...
    #[arg(long, env = "ROLLUP_BATCH_MAX_BLOCKS", default_value_t = 40)]
    pub batch_max_blocks: u64,

    /// ...or once its first block is this old (seconds), whichever comes first.
    #[arg(long, env = "ROLLUP_BATCH_MAX_SECS", default_value_t = 10)]
    pub batch_max_secs: u64,

    /// ...or before a transaction that could take it past what one batch proof holds: leaves
    /// of this many transactions, `2^--batch-top-level` chunks per proof tree (docs/SPEC.md
    /// 13.11, "Batch capacity"). Default: read from the pinned proof verifiers' manifest
    /// (`--proof-verifiers`); set with --batch-top-level to cap a node without verifiers. A
    /// cap above the pinned circuits' is refused. A single transaction larger than a batch (a
    /// split to too many payees) is refused with EXCEEDS_BATCH_CAPACITY.
    #[arg(long, env = "ROLLUP_BATCH_LEAF_SIZE", requires = "batch_top_level")]
    pub batch_leaf_size: Option<usize>,

    /// Lanes per tick-walk chunk of the batch cap (see --batch-leaf-size; the prover's
    /// --walk-lanes): a settlement of `n` ticks takes `n / 32` lanes. Default: the pinned
    /// manifest's, else 16 per leaf slot; with pins, it must be theirs.
    #[arg(long, env = "ROLLUP_BATCH_WALK_LANES", requires = "batch_leaf_size", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub batch_walk_lanes: Option<u64>,

    /// The top aggregation level of the batch cap (see --batch-leaf-size).
    #[arg(long, env = "ROLLUP_BATCH_TOP_LEVEL", requires = "batch_leaf_size", value_parser = clap::value_parser!(u32).range(0..=24))]
    pub batch_top_level: Option<u32>,

    /// Capacity of the writer queue (transactions waiting to be ordered). When full, clients
    /// receive RESOURCE_EXHAUSTED instead of the node growing its memory.
    #[arg(long, env = "ROLLUP_QUEUE_CAPACITY", default_value_t = 32768)]
    pub queue_capacity: usize,

    /// How long a submission may wait for room in a full queue (milliseconds).
    #[arg(long, env = "ROLLUP_ENQUEUE_PATIENCE_MS", default_value_t = 50)]
    pub enqueue_patience_ms: u64,

    /// Most transactions in one commit group.
    #[arg(long, env = "ROLLUP_MAX_GROUP", default_value_t = 4096)]
    pub max_group: usize,

    /// Requests one PaymentStream may have in flight; beyond it the stream is not read, which
    /// pushes back on the client through HTTP/2 flow control.
    #[arg(long, env = "ROLLUP_MAX_IN_FLIGHT_PER_STREAM", default_value_t = 1024)]
    pub max_in_flight_per_stream: usize,

    /// Largest accepted gRPC message (bytes); larger ones are refused. The largest
    /// transaction, a split to 1,024 payees, is 12,391 bytes.
    #[arg(long, env = "ROLLUP_MAX_MESSAGE_BYTES", default_value_t = 16_384)]
    pub max_message_bytes: usize,

    /// Concurrent HTTP/2 streams (calls) one gRPC connection may open (SETTINGS frame).
    #[arg(
        long,
        env = "ROLLUP_GRPC_MAX_STREAMS_PER_CONNECTION",
        default_value_t = 256
    )]
    pub grpc_max_streams_per_connection: u32,

    /// gRPC connections open at once; further connections are closed on accept.
    #[arg(long, env = "ROLLUP_GRPC_MAX_CONNECTIONS", default_value_t = 4096)]
    pub grpc_max_connections: usize,

    /// gRPC connections open at once from one IP address (0 = no limit).
    #[arg(
        long,
        env = "ROLLUP_GRPC_MAX_CONNECTIONS_PER_PEER",
        default_value_t = 256
    )]
    pub grpc_max_connections_per_peer: usize,

    /// Calls and streams in flight from one IP address; beyond it calls are answered
    /// RESOURCE_EXHAUSTED (limit PEER_RPCS_LIMITED). 0 = no limit.
    #[arg(long, env = "ROLLUP_MAX_RPCS_PER_PEER", default_value_t = 4096)]
    pub max_rpcs_per_peer: usize,

    /// Longest unary gRPC call (milliseconds; streams are not cut).
    #[arg(long, env = "ROLLUP_GRPC_TIMEOUT_MS", default_value_t = 30_000)]
    pub grpc_timeout_ms: u64,

    /// Transactions per second accepted from one IP address, checked before the signature is
    /// verified (limit PEER_RATE_LIMITED). Bursts of twice the rate pass. 0 = no limit.
    #[arg(long, env = "ROLLUP_PEER_RATE", default_value_t = 50_000)]
    pub peer_rate: u32,

    /// Transactions per second signed by one account in one nonce lane (docs/SPEC.md 20.1),
    /// checked after verification (limit ACCOUNT_RATE_LIMITED). Bursts of twice the rate pass.
    /// 0 = no limit.
    #[arg(long, env = "ROLLUP_ACCOUNT_RATE", default_value_t = 2_000)]
    pub account_rate: u32,

    /// Signatures waiting for the verifier pool at most; a submission beyond it is refused
    /// before any work (limit VERIFY_QUEUE_FULL).
    #[arg(long, env = "ROLLUP_VERIFY_QUEUE", default_value_t = 16_384)]
    pub verify_queue: usize,

    /// Leading zero bits of the proof of work a Register must carry (SubmitRequest.work_nonce,
    /// docs/API.md "Registration"), checked before its signature; a Register without it is
    /// refused (limit REGISTRATION_WORK_REQUIRED). Each bit doubles the work: 20 is about a
    /// million SHA-256 hashes, a third of a second of one core. 0 = registration is free.
    #[arg(
        long,
        env = "ROLLUP_REGISTRATION_WORK_BITS",
        default_value_t = 20,
        value_parser = clap::value_parser!(u32).range(0..=i64::from(rollup_proto::work::MAX_BITS))
    )]
    pub registration_work_bits: u32,

    /// Serve the x402 v2 facilitator under /x402 (/supported, /verify, /settle) so that any
    /// x402 resource server can be paid in this rollup's transfers (docs/API.md, "x402
    /// facilitator"). `--x402 false` turns it off.
    #[arg(long, env = "ROLLUP_X402", default_value_t = true, action = clap::ArgAction::Set)]
    pub x402: bool,

    /// The settlement token's id in x402 documents (`asset` of the requirements the
    /// facilitator settles): set it to the L1 token contract's address when the rollup is
    /// bridged, so that resource servers and clients name the same stablecoin.
    #[arg(long, env = "ROLLUP_X402_ASSET", default_value = "token")]
    pub x402_asset: String,

    /// The explorer links L1 transactions to this block explorer: an http(s) URL template in
    /// which `{tx}` stands for the transaction hash, e.g. `https://sepolia.etherscan.io/tx/{tx}`.
    /// Without it the explorer shows the hashes and their L1 block as text.
    #[arg(long, env = "ROLLUP_EXPLORER_L1_TX_URL", value_parser = parse_l1_tx_url)]
    pub explorer_l1_tx_url: Option<String>,

    /// HTTP connections open at once (further ones are closed on accept).
    #[arg(long, env = "ROLLUP_HTTP_MAX_CONNECTIONS", default_value_t = 1024)]
    pub http_max_connections: usize,

    /// HTTP connections open at once from one IP address (0 = no limit).
    #[arg(
        long,
        env = "ROLLUP_HTTP_MAX_CONNECTIONS_PER_PEER",
        default_value_t = 64
    )]
    pub http_max_connections_per_peer: usize,

    /// Time a client has to send a request's headers (milliseconds); slower connections are
    /// closed (slowloris).
    #[arg(long, env = "ROLLUP_HTTP_HEADER_TIMEOUT_MS", default_value_t = 5_000)]
    pub http_header_timeout_ms: u64,

    /// Longest HTTP request (milliseconds), answered 408 beyond it; the SSE event stream is
    /// exempt.
    #[arg(long, env = "ROLLUP_HTTP_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_request_timeout_ms: u64,

    /// Postgres connections in the pool for reads, feeds and the bridge.
    #[arg(long, env = "ROLLUP_DB_CONNECTIONS", default_value_t = 8)]
    pub db_connections: u32,

    /// Postgres connections of the committer's own pool (writes never wait behind reads).
    #[arg(long, env = "ROLLUP_DB_COMMIT_CONNECTIONS", default_value_t = 2)]
    pub db_commit_connections: u32,

    /// How long Postgres may stay unreachable before the node gives up and exits non-zero
    /// (seconds). Meanwhile it retries, reports DATABASE_UNAVAILABLE on /readyz and gRPC health,
    /// and answers new submissions with UNAVAILABLE; nothing acknowledged is lost either way.
    #[arg(long, env = "ROLLUP_DB_OUTAGE_LIMIT_SECS", default_value_t = 300)]
    pub db_outage_limit_secs: u64,

    /// Bytes of rows waiting to be committed, at most; beyond it the writer waits and clients
    /// get RESOURCE_EXHAUSTED.
    #[arg(long, env = "ROLLUP_COMMIT_QUEUE_BYTES", default_value_t = 64 << 20)]
    pub commit_queue_bytes: usize,

    /// Durable transaction ids the writer keeps in memory to answer resubmissions at once;
    /// a resubmission of an older transaction is answered from Postgres (ids not yet durable
    /// are always kept).
    #[arg(long, env = "ROLLUP_DEDUP_WINDOW", default_value_t = 65_536)]
    pub dedup_window: usize,

    /// Take a state snapshot at the first batch seal after this many transactions since the
    /// last one (0: never). A restart loads the newest snapshot and replays only the
    /// transactions after it, so this bounds restart time; each snapshot costs the writer a
    /// pause of ~0.1 s and Postgres ~150 MB per million accounts.
    #[arg(long, env = "ROLLUP_SNAPSHOT_EVERY_TXS", default_value_t = 100_000)]
    pub snapshot_every_txs: u64,

    /// State snapshots kept in Postgres (older ones are deleted when a new one is stored).
    #[arg(long, env = "ROLLUP_SNAPSHOTS_KEEP", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub snapshots_keep: u32,

    /// Longest graceful shutdown (seconds) after SIGTERM, also when saturated or when Postgres
    /// is away; after it the node exits non-zero (what was acknowledged is durable already).
    #[arg(long, env = "ROLLUP_SHUTDOWN_TIMEOUT_SECS", default_value_t = 20)]
    pub shutdown_timeout_secs: u64,

    /// L1 JSON-RPC endpoint. When set, the node runs the bridge (docs/SPEC.md section 16): the
    /// L1 watcher, crediting of confirmed deposits (the faucet is then disabled: money enters
    /// through L1) and, with an operator L1 key, the batch submitter. The L1 contract is
    /// --rollup-address on chain --chain-id (checked against the endpoint at start).
    #[arg(long, env = "ROLLUP_L1_RPC")]
    pub l1_rpc: Option<String>,

    /// Directory of exported final-circuit verifier data (`rollup-prover circuits
    /// --export-verifiers DIR`). The batch submitter verifies every batch proof with it before
    /// committing the batch on L1; without it only a --devnet node commits (unverified, logged),
    /// and any other node commits nothing. Loaded at start against --circuit-pins.
    #[arg(long, env = "ROLLUP_PROOF_VERIFIERS")]
    pub proof_verifiers: Option<std::path::PathBuf>,

    /// The deployment's circuit pins: a `circuits.json` manifest naming each final circuit by
    /// the SHA-256 of its complete verifier data (gates, config and FRI parameters included,
    /// which plonky2's circuit digest leaves out). Keep it with the deployment (next to the L1
    /// contract's configuration), not in the --proof-verifiers directory. Every verifier file
    /// must be pinned with exactly its fingerprint and every pinned circuit must have its file,
    /// or the node refuses to start. Required with --proof-verifiers unless --devnet, where it
    /// defaults to the directory's own circuits.json (still checked against the files).
    #[arg(long, env = "ROLLUP_CIRCUIT_PINS", requires = "proof_verifiers")]
    pub circuit_pins: Option<std::path::PathBuf>,

    /// Credit confirmed L1 deposits from Postgres even without --l1-rpc (the watcher runs in
    /// another process on the same database). Implied by --l1-rpc.
    #[arg(long, env = "ROLLUP_L1_DEPOSITS")]
    pub l1_deposits: bool,

    /// L1 blocks a deposit must be buried under before it is credited, and a finalization
    /// before its batch counts as finalized (`head - block >= confirmations`).
    #[arg(long, env = "ROLLUP_L1_CONFIRMATIONS", default_value_t = 12)]
    pub l1_confirmations: u64,

    /// Expected time from a batch's seal to its commit on L1 (proving plus the confirmation
    /// depth), in seconds. A batch that would leave an L1 priority op unconsumed whose deadline
    /// falls within this time is held open until it takes the op (L1 would refuse its commit:
    /// `PriorityOpOverdue`); see docs/SPEC.md 16.2.
    #[arg(long, env = "ROLLUP_SEAL_DEADLINE_MARGIN_SECS", default_value_t = 1800)]
    pub seal_deadline_margin_secs: u64,

    /// First L1 block the watcher scans (the Rollup contract's deployment block).
    #[arg(long, env = "ROLLUP_L1_START_BLOCK", default_value_t = 0)]
    pub l1_start_block: u64,

    /// How often the bridge polls L1 and the database (milliseconds).
    #[arg(long, env = "ROLLUP_L1_POLL_MS", default_value_t = 1000)]
    pub l1_poll_ms: u64,

    /// File with the operator's secp256k1 L1 key (32 bytes hex): sends commitBatch and
    /// finalizeBatch. On --devnet it defaults to anvil's first dev key. Without a key the
    /// submitter does not run.
    #[arg(long, env = "ROLLUP_OPERATOR_L1_KEY")]
    pub operator_l1_key: Option<PathBuf>,

    /// File with the stage 0 attester's secp256k1 key (32 bytes hex): signs the statement of
    /// every batch whose proof verified (what `AttestationVerifier` accepts). It must not be the
    /// operator's key: the node refuses to start with one key for both. On --devnet it defaults
    /// to anvil's third dev key (the devnet deployment's attester).
    #[arg(long, env = "ROLLUP_ATTESTER_L1_KEY")]
    pub attester_l1_key: Option<PathBuf>,

    /// Seconds before an unmined L1 transaction is replaced with a higher gas price.
    #[arg(long, env = "ROLLUP_L1_RESEND_AFTER_SECS", default_value_t = 60)]
    pub l1_resend_after_secs: u64,

    /// Gas price increase per replacement (percent).
    #[arg(long, env = "ROLLUP_L1_GAS_BUMP_PERCENT", default_value_t = 20)]
    pub l1_gas_bump_percent: u64,

    /// Print the L2 genesis state root (what the L1 Rollup contract is deployed with) and exit.
    #[arg(long)]
    pub print_genesis_root: bool,

    /// Print the operator's L2 public key (what `rollup-l1 rebuild-state --operator-pubkey`
    /// rebuilds the genesis state from) and exit.
    #[arg(long)]
    pub print_operator_pubkey: bool,

    /// Log format: "text" or "json".
    #[arg(long, env = "ROLLUP_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl Config {
    pub fn block_interval(&self) -> Duration {
        Duration::from_millis(self.block_interval_ms.max(1))
    }

    /// The pins manifest the proof verifiers are checked against: --circuit-pins, or on
    /// --devnet the verifier directory's own `circuits.json`; `None` without --proof-verifiers.
    /// A non-devnet node with verifiers but no pins is refused.
    pub fn circuit_pins_file(&self) -> anyhow::Result<Option<PathBuf>> {
        match (&self.proof_verifiers, &self.circuit_pins, self.devnet) {
            (None, None, _) => Ok(None),
            (None, Some(_), _) => anyhow::bail!("--circuit-pins needs --proof-verifiers"),
            (Some(_), Some(pins), _) => Ok(Some(pins.clone())),
            (Some(dir), None, true) => Ok(Some(dir.join(rollup_prover::pins::PINS_FILE))),
            (Some(_), None, false) => anyhow::bail!(
                "--proof-verifiers needs --circuit-pins (ROLLUP_CIRCUIT_PINS): the manifest of \
                 the circuits this deployment runs, so that a swapped verifier file is refused \
                 (only a --devnet node may trust the directory's own circuits.json)"
            ),
        }
    }
}

/// `--explorer-l1-tx-url`: an http(s) URL with `{tx}` in it.
fn parse_l1_tx_url(s: &str) -> Result<String, String> {
    if !(s.starts_with("https://") || s.starts_with("http://")) {
        return Err("must start with https:// or http://".into());
    }
    if !s.contains("{tx}") {
        return Err("must contain {tx}, where the transaction hash goes".into());
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let mut v = vec!["rollup-node", "--database-url", "postgres://x"];
        v.extend_from_slice(args);
        Config::try_parse_from(v)
    }

    #[test]
    fn proof_verifiers_need_pins_unless_devnet() {
        let cfg = parse(&[]).unwrap();
        assert_eq!(cfg.circuit_pins_file().unwrap(), None);
        let cfg = parse(&["--proof-verifiers", "/v"]).unwrap();
        let e = cfg.circuit_pins_file().unwrap_err().to_string();
        assert!(e.contains("--circuit-pins"), "{e}");
        let cfg = parse(&["--proof-verifiers", "/v", "--circuit-pins", "/p.json"]).unwrap();
        assert_eq!(
            cfg.circuit_pins_file().unwrap(),
            Some(PathBuf::from("/p.json"))
        );
        let cfg = parse(&["--proof-verifiers", "/v", "--devnet"]).unwrap();
        assert_eq!(
            cfg.circuit_pins_file().unwrap(),
            Some(PathBuf::from("/v/circuits.json"))
        );
        assert!(parse(&["--circuit-pins", "/p.json"]).is_err());
    }

    #[test]
    fn experimental_agents_need_devnet() {
        assert!(!parse(&[]).unwrap().experimental_agents);
        assert!(parse(&["--experimental-agents"]).is_err());
        assert!(
            parse(&["--experimental-agents", "--devnet"])
                .unwrap()
                .experimental_agents
        );
    }

    #[test]
    fn the_batch_cap_takes_a_walk_chunk_of_its_own() {
        use rollup_prover::capacity::BatchCapacity;
        let cap = |args: &[&str]| crate::node::batch_capacity(&parse(args).unwrap(), None);
        let base = ["--batch-leaf-size", "8", "--batch-top-level", "4"];
        assert_eq!(cap(&base).unwrap(), Some(BatchCapacity::new(8, 4)));
        let dense = [&base[..], &["--batch-walk-lanes", "1600"]].concat();
        let c = cap(&dense).unwrap().unwrap();
        assert_eq!((c.walk_lanes, c.leaf_size, c.top_level), (1_600, 8, 4));
        assert!(
            parse(&["--batch-walk-lanes", "1600"]).is_err(),
            "needs the leaf size"
        );
        let too_many = [&base[..], &["--batch-walk-lanes", "4097"]].concat();
        assert!(parse(&too_many).is_err());
    }

    #[test]
    fn experimental_streams_need_devnet() {
        assert!(!parse(&[]).unwrap().experimental_streams);
        assert!(parse(&["--experimental-streams"]).is_err());
        assert!(
            parse(&["--experimental-streams", "--devnet"])
                .unwrap()
                .experimental_streams
        );
    }

    #[test]
    fn the_l1_link_template_is_checked_at_start_up() {
        assert_eq!(parse(&[]).unwrap().explorer_l1_tx_url, None);
        let ok = "https://sepolia.etherscan.io/tx/{tx}";
        let cfg = parse(&["--explorer-l1-tx-url", ok]).unwrap();
        assert_eq!(cfg.explorer_l1_tx_url.as_deref(), Some(ok));
        for bad in [
            "ftp://x/{tx}",
            "https://etherscan.io/tx/",
            "javascript:{tx}",
        ] {
            assert!(parse(&["--explorer-l1-tx-url", bad]).is_err(), "{bad}");
        }
    }
}
