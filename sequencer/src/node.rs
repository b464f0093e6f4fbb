//! Wiring: configuration, recovery, the writer, the committer and the servers, plus graceful
//! shutdown on SIGTERM/SIGINT.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rollup_proto::v1::bridge_events_server::BridgeEventsServer;
use rollup_proto::v1::rollup_server::RollupServer;
use state::crypto::schnorr::{PublicKey, SecretKey};
use state::tx::Domain;
use tokio::sync::{mpsc, watch};

use crate::committer::Committer;
use crate::config::Config;
use crate::http::{router, HttpLimits, HttpState};
use crate::limits::{limited_incoming, ConnLimits, PeerCounter, RateLimiter, TxLimits};
use crate::receipt_watch::AccountWakeups;
use crate::service::{RollupService, ServiceConfig, ServiceDeps};
use crate::supervisor::{Readiness, Supervisor};
use crate::writer::{self, WriterConfig};
use rollup_prover::capacity::BatchCapacity;
use rollup_storage::Store;

/// The fixed development operator key (devnet only; publicly known, never use on a real chain).
pub fn devnet_operator_key() -> SecretKey {
    let mut bytes = [0u8; 40];
    bytes[..14].copy_from_slice(b"rollup-devnet!");
    // Below n (the top bytes are zero), and non-zero.
    SecretKey::from_bytes(&bytes).unwrap_or_else(|_| unreachable!("fixed devnet key is valid"))
}

fn parse_address(s: &str) -> anyhow::Result<[u8; 20]> {
    let bytes =
        hex::decode(s.strip_prefix("0x").unwrap_or(s)).context("rollup address is not hex")?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("rollup address must be 20 bytes"))
}

fn operator_public_key(cfg: &Config) -> anyhow::Result<PublicKey> {
    match (&cfg.operator_key, cfg.devnet) {
        (Some(path), _) => {
            check_key_file_mode(path)?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read operator key {}", path.display()))?;
            let t = text.trim();
            let bytes = hex::decode(t.strip_prefix("0x").unwrap_or(t))
                .context("operator key is not hex")?;
            let arr: [u8; 40] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| anyhow::anyhow!("operator key must be 40 bytes"))?;
            Ok(SecretKey::from_bytes(&arr)
                .map_err(|e| anyhow::anyhow!("operator key: {e}"))?
                .public_key())
        }
        (None, true) => Ok(devnet_operator_key().public_key()),
        (None, false) => bail!("--operator-key is required unless --devnet"),
    }
}

/// Refuses a secret key file that other users can read (as ssh does): the operator key signs
/// for the fee account, and the L1 key moves the bridge's money.
pub fn check_key_file_mode(path: &std::path::Path) -> anyhow::Result<()> {
    Ok(rollup_bridge::signer::check_key_file_mode(path)?)
}

/// Refuses to run against a database created for another chain, rollup or operator.
async fn check_meta(store: &Store, domain: &Domain, operator: &PublicKey) -> anyhow::Result<()> {
    let expect = [
        ("chain_id", domain.chain_id.to_string()),
        (
            "rollup_address",
            format!("0x{}", hex::encode(domain.rollup)),
        ),
        ("operator_public_key", operator.to_hex()),
    ];
    for (k, v) in expect {
        let stored = store.meta().init(k, &v).await?;
        if stored != v {
            bail!("the database belongs to another deployment: {k} is {stored}, this node has {v}");
        }
    }
    Ok(())
}

/// A database whose deposits came from the devnet faucet must never be started with L1
/// deposits (or the reverse): both consume the same priority serials, so the faucet's would
/// make real L1 deposits look credited already. The source is recorded in `chain_meta`
/// (`deposit_source`): `l1` when a node starts with L1 deposits, `faucet` at the first faucet
/// credit (service.rs).
async fn check_deposit_source(store: &Store, cfg: &Config) -> anyhow::Result<()> {
    let l1 = cfg.l1_deposits || cfg.l1_rpc.is_some();
    let recorded = store.meta().get(DEPOSIT_SOURCE).await?;
    match (l1, recorded.as_deref()) {
        (true, Some("faucet")) => bail!(
            "this database holds devnet faucet deposits and this node would credit L1 deposits \
             (--l1-rpc/--l1-deposits): both use the same priority serials, so real deposits \
             would look credited already. Use a fresh database"
        ),
        (true, None) => {
            // Databases from before the record: a deposit in the log that no credited L1
            // deposit accounts for came from the faucet.
            if store.log().count_faucet_deposits().await? > 0 {
                bail!(
                    "this database holds deposits that no L1 watcher recorded (devnet faucet) \
                     and this node would credit L1 deposits: use a fresh database"
                );
            }
            store.meta().init(DEPOSIT_SOURCE, "l1").await?;
            Ok(())
        }
        (false, Some("l1")) if cfg.devnet => bail!(
            "this database credits L1 deposits; a devnet node without --l1-rpc would turn the \
             faucet on and consume L1 serials. Start it with --l1-rpc (or --l1-deposits)"
        ),
        _ => Ok(()),
    }
}

/// `chain_meta` key recording where deposits come from (see [`check_deposit_source`]).
pub const DEPOSIT_SOURCE: &str = "deposit_source";

pub fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sqlx=warn,h2=warn,tower=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The writer's settings from the node's flags (degenerate zeros raised to 1).
pub fn writer_config(cfg: &Config) -> WriterConfig {
    WriterConfig {
        block_interval: cfg.block_interval(),
        batch_max_blocks: cfg.batch_max_blocks.max(1),
        batch_max_age: Duration::from_secs(cfg.batch_max_secs.max(1)),
        max_group: cfg.max_group.max(1),
        queue_capacity: cfg.queue_capacity.max(1),
        commit_queue_bytes: cfg.commit_queue_bytes,
        dedup_window: cfg.dedup_window,
        snapshot_every_txs: cfg.snapshot_every_txs,
        seal_deadline_margin: Duration::from_secs(cfg.seal_deadline_margin_secs),
        capacity: None,
    }
}

/// What one batch can hold: the flags' cap, else the pinned verifiers' ([`VerifierSet::capacity`]);
/// a cap above the pinned circuits' is refused (its batches could not be verified).
pub fn batch_capacity(
    cfg: &Config,
    verifiers: Option<&rollup_prover::verify::VerifierSet>,
) -> anyhow::Result<Option<BatchCapacity>> {
    let pinned = verifiers.and_then(|v| v.capacity());
    let flags = match (cfg.batch_leaf_size, cfg.batch_top_level) {
        (Some(leaf_size), Some(top_level)) => {
            let cap = BatchCapacity::new(leaf_size, top_level);
            // Without --batch-walk-lanes, the pins' walk chunk (if any) is the flags' too.
            let lanes = cfg
                .batch_walk_lanes
                .map(|l| usize::try_from(l).unwrap_or(usize::MAX))
                .or(pinned.map(|p| p.walk_lanes));
            Some(match lanes {
                Some(lanes) => cap.with_walk_lanes(lanes),
                None => cap,
            })
        }
        _ => None,
    };
    match (flags, pinned) {
        (Some(f), Some(p)) => {
            anyhow::ensure!(
                f.leaf_size == p.leaf_size
                    && f.walk_lanes == p.walk_lanes
                    && f.top_level <= p.top_level,
                "--batch-leaf-size {} --batch-walk-lanes {} --batch-top-level {} is not within \
                 the pinned circuits' capacity (leaf size {}, walk lanes {}, top level {})",
                f.leaf_size,
                f.walk_lanes,
                f.top_level,
                p.leaf_size,
                p.walk_lanes,
                p.top_level
            );
            Ok(Some(f))
        }
        (f, p) => Ok(f.or(p)),
    }
}

pub async fn run(cfg: Config) -> anyhow::Result<()> {
    if cfg.print_operator_pubkey {
        println!("{}", operator_public_key(&cfg)?.to_hex());
        return Ok(());
    }
    if cfg.print_genesis_root {
        // The genesis root commits only the operator's account (not the domain).
        let domain = Domain {
            chain_id: cfg.chain_id,
            rollup: parse_address(&cfg.rollup_address)?,
        };
        let root = state::apply::State::genesis(domain, operator_public_key(&cfg)?).root();
        println!("0x{}", hex::encode(root.to_bytes()));
        return Ok(());
    }
    let database_url = cfg
        .database_url
        .clone()
        .context("--database-url (DATABASE_URL) is required")?;
    // Refuse to start with proof verifiers that are not the pinned circuits (or not pinned).
    let verifiers = crate::bridge::load_verifiers(&cfg)?;
    if let Some(set) = &verifiers {
        let finals: Vec<String> = set.ids().map(|id| id.name()).collect();
        tracing::info!(?finals, "pinned proof verifiers");
    }
    let capacity = batch_capacity(&cfg, verifiers.as_ref())?;
    match capacity {
        Some(c) => tracing::info!(
            leaf_size = c.leaf_size,
            walk_lanes = c.walk_lanes,
            top_level = c.top_level,
            max_chunks = c.max_chunks(),
            "batches are sealed within what one batch proof holds"
        ),
        None if verifiers.is_some() => tracing::warn!(
            "the pinned verifiers' manifest does not state the leaf size (written by an older \
             prover): batches are not capped; export the verifiers again or set \
             --batch-leaf-size and --batch-top-level"
        ),
        None => {}
    }
    let finals: Option<Vec<rollup_prover::pins::FinalId>> =
        verifiers.as_ref().map(|v| v.ids().collect());
    let splits = crate::service::splits_provable(finals.as_deref());
    let streams = crate::service::streams_provable(finals.as_deref());
    let shares = crate::service::shares_provable(finals.as_deref());
    let lanes = cfg.experimental_agents || crate::service::lanes_provable(finals.as_deref());
    let passports = crate::service::passports_provable(finals.as_deref());
    let allow_lists =
        crate::service::allow_lists_provable(verifiers.as_ref().and_then(|v| v.leaf_policies()));
    if lanes && !cfg.experimental_agents {
        tracing::info!(
            "the pinned circuits prove nonce lanes: nonces of lanes 1 to 7 are accepted"
        );
    }
    if passports && !cfg.experimental_agents {
        if allow_lists {
            tracing::info!(
                "the pinned circuits prove passports: the passport kinds are accepted, \
                 allow-lists included (the leaf takes membership paths)"
            );
        } else {
            tracing::info!(
                "the pinned circuits prove passports: the passport kinds are accepted (policies \
                 without an allow-list: the pins do not record a leaf with membership paths, \
                 rollup-prover --leaf-policies lists)"
            );
        }
    }
    if shares {
        tracing::info!(
            "the pinned circuits prove revenue shares: register shares and distribute are \
             accepted"
        );
    }
    if streams {
        tracing::info!(
            "the pinned circuits verify the tick-walk tree: the stream kinds are accepted"
        );
    }
    if !splits {
        tracing::warn!(
            "no pinned final circuit verifies the split-credit chain: splits are refused \
             (KIND_NOT_ENABLED); pin the `-splits` finals (rollup-prover circuits --splits)"
        );
    }
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
        ])
        .context("metrics buckets")?
        // A tick group is checked in microseconds; its size is a count.
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("rollup_tick_group_seconds".into()),
            &[
                0.00001, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01,
            ],
        )
        .context("metrics buckets")?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("rollup_tick_group_size".into()),
            &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
        )
        .context("metrics buckets")?
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    let domain = Domain {
        chain_id: cfg.chain_id,
        rollup: parse_address(&cfg.rollup_address)?,
    };
    let operator = operator_public_key(&cfg)?;
    let readiness = Arc::new(Readiness::default());
    let mut sup = Supervisor::default();
    // Reads, feeds and the bridge share this pool; the committer has its own (below), so no
    // number of readers can starve the writes.
    let store = Store::connect_and_migrate(&database_url, cfg.db_connections)
        .await
        .context("connecting to Postgres (DATABASE_URL)")?;
    let commit_store = Store::connect_pool(
        &database_url,
        cfg.db_commit_connections,
        Duration::from_secs(2),
    )
    .await
    .context("connecting the committer to Postgres")?;
    check_meta(&store, &domain, &operator).await?;
    check_deposit_source(&store, &cfg).await?;
    let recovered = crate::recovery::recover(&store, domain, operator, lanes).await?;
    let durable_start = recovered.next_seq - 1;

    // Not supervised as critical: a snapshot that fails only makes the next restart longer.
    let (snapshot_tx, snapshot_rx) = mpsc::channel(1);
    tokio::spawn(crate::snapshotter::run(
        store.clone(),
        snapshot_rx,
        cfg.snapshots_keep,
    ));
    let (commit_tx, commit_rx) = mpsc::channel(1024);
    let durable_seq = Arc::new(AtomicU64::new(durable_start));
    let (durable_tx, durable_rx) = watch::channel(durable_start);
    let wakeups = Arc::new(AccountWakeups::default());
    let unsealed = Arc::new(crate::unsealed::UnsealedActivity::new(durable_start));
    let committer = sup.spawn(
        "committer",
        Committer {
            log: commit_store,
            rx: commit_rx,
            durable_seq: durable_seq.clone(),
            durable_tx,
            wakeups: wakeups.clone(),
            unsealed: unsealed.clone(),
            readiness: readiness.clone(),
            outage_limit: Duration::from_secs(cfg.db_outage_limit_secs.max(1)),
        }
        .run(),
    );
    let (writer, writer_thread) = writer::spawn(
        WriterConfig {
            capacity,
            ..writer_config(&cfg)
        },
        recovered,
        commit_tx,
        durable_rx,
        durable_seq,
        Some(snapshot_tx),
        sup.guard("writer"),
    )?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    // Calls and streams in flight per peer, over both gRPC services.
    let rpcs = Arc::new(PeerCounter::with_gauge("rollup_rpcs_in_flight"));
    let tx_limits = TxLimits {
        peer_rate: RateLimiter::new(f64::from(cfg.peer_rate), 2.0 * f64::from(cfg.peer_rate)),
        account_rate: RateLimiter::new(
            f64::from(cfg.account_rate),
            2.0 * f64::from(cfg.account_rate),
        ),
        rpcs: rpcs.clone(),
        max_rpcs_per_peer: cfg.max_rpcs_per_peer,
        verify_slots: Arc::new(tokio::sync::Semaphore::new(cfg.verify_queue.max(1))),
        registration_work_bits: cfg.registration_work_bits,
    };
    let service = RollupService::new(ServiceDeps {
        writer: writer.clone(),
        store: store.clone(),
        wakeups,
        unsealed: unsealed.clone(),
        readiness: readiness.clone(),
        limits: tx_limits,
        domain,
        cfg: ServiceConfig {
            max_in_flight_per_stream: cfg.max_in_flight_per_stream,
            enqueue_patience: Duration::from_millis(cfg.enqueue_patience_ms),
            devnet: cfg.devnet,
            faucet_max: cfg.faucet_max,
            l1_deposits: cfg.l1_deposits || cfg.l1_rpc.is_some(),
            experimental_streams: cfg.experimental_streams,
            experimental_agents: cfg.experimental_agents,
            splits,
            streams,
            shares,
            lanes,
            passports,
            allow_lists,
            capacity,
        },
        shutdown: shutdown_rx.clone(),
    })?;
    let x402_service = service.clone();
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    tokio::spawn(crate::supervisor::follow_health(
        readiness.clone(),
        health_reporter,
    ));
    // Reflection is served under both names, as grpc-go does: many clients (grpcurl before
    // 1.9, grpcio-reflection, Postman, BloomRPC) only speak `v1alpha`.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(rollup_proto::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder()
        .build_v1()
        .context("building gRPC reflection v1")?;
    let reflection_v1alpha = reflection_builder()
        .build_v1alpha()
        .context("building gRPC reflection v1alpha")?;
    let grpc_listener = tokio::net::TcpListener::bind(cfg.grpc_addr)
        .await
        .with_context(|| format!("binding gRPC on {}", cfg.grpc_addr))?;
    let http_listener = tokio::net::TcpListener::bind(cfg.http_addr)
        .await
        .with_context(|| format!("binding HTTP on {}", cfg.http_addr))?;
    tracing::info!(grpc = %grpc_listener.local_addr()?, http = %http_listener.local_addr()?, devnet = cfg.devnet, "listening");

    let (feed, feed_reader) = rollup_bridge::feed::FeedHub::start_supervised(
        store.pool().clone(),
        crate::bridge_api::FEED_POLL,
        shutdown_rx.clone(),
    )
    .await
    .context("starting the bridge event feed")?;
    sup.spawn("feed-hub", async move {
        feed_reader.await.context("the feed reader panicked")
    });
    let mut sd = shutdown_rx.clone();
    let grpc_server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .max_concurrent_streams(Some(cfg.grpc_max_streams_per_connection.max(1)))
        .timeout(Duration::from_millis(cfg.grpc_timeout_ms.max(1)))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(BridgeEventsServer::new(
            crate::bridge_api::BridgeEventsService {
                feed: feed.clone(),
                shutdown: shutdown_rx.clone(),
                rpcs: rpcs.clone(),
                max_rpcs_per_peer: cfg.max_rpcs_per_peer,
            },
        ))
        .add_service(
            RollupServer::new(service)
                .max_decoding_message_size(cfg.max_message_bytes)
                .max_encoding_message_size(64 * 1024),
        )
        .serve_with_incoming_shutdown(
            limited_incoming(
                grpc_listener,
                ConnLimits::new(
                    cfg.grpc_max_connections,
                    cfg.grpc_max_connections_per_peer,
                    "grpc",
                ),
            ),
            async move {
                let _ = sd.wait_for(|s| *s).await;
            },
        );
    let grpc = sup.spawn("grpc-server", async move {
        grpc_server.await.context("gRPC server")
    });
    let mut sd = shutdown_rx.clone();
    let http_router = router(
        HttpState {
            writer: writer.clone(),
            store: store.clone(),
            unsealed,
            feed: feed.clone(),
            prometheus,
            readiness: readiness.clone(),
            registration_work_bits: cfg.registration_work_bits,
            x402: cfg.x402.then(|| crate::x402::Facilitator {
                service: x402_service,
                network: rollup_x402::Network::new(&domain, cfg.x402_asset.clone()),
            }),
            explorer_l1_tx_url: cfg.explorer_l1_tx_url.clone(),
            lanes,
        },
        Duration::from_millis(cfg.http_request_timeout_ms.max(1)),
    );
    let http_limits = HttpLimits {
        conns: ConnLimits::new(
            cfg.http_max_connections,
            cfg.http_max_connections_per_peer,
            "http",
        ),
        header_timeout: Duration::from_millis(cfg.http_header_timeout_ms.max(1)),
    };
    let http = sup.spawn("http-server", async move {
        crate::http::serve(http_listener, http_router, http_limits, async move {
            let _ = sd.wait_for(|s| *s).await;
        })
        .await
    });
    let bridge_tasks = crate::bridge::start(
        &cfg,
        &domain,
        &store,
        &writer,
        &shutdown_rx,
        &sup,
        verifiers,
    )
    .await?;
    readiness.set_started();

    // Run until SIGTERM/SIGINT, or until a critical task ends (supervisor.rs).
    let failure = tokio::select! {
        _ = shutdown_signal() => None,
        exit = sup.next_exit() => Some(match exit {
            Some(e) => (e.task, e.result.err().unwrap_or_else(|| "ended".into())),
            None => ("supervisor", "lost its tasks".into()),
        }),
    };
    match &failure {
        None => {
            tracing::info!("shutdown requested: no new work; answering what is in flight");
            readiness.set_stopping();
        }
        Some((task, why)) => {
            tracing::error!(task, error = %why, "a critical task stopped: the node is not ready and stops");
            metrics::counter!("rollup_task_failures_total", "task" => *task).increment(1);
            readiness.set_failed(task);
        }
    }
    let _ = shutdown_tx.send(true);
    // Everything below is bounded: a saturated or wedged node still exits. What was
    // acknowledged is durable already; what was not is recovered or never was accepted.
    let bound = Duration::from_secs(cfg.shutdown_timeout_secs.max(1));
    let drained = tokio::time::timeout(bound, async {
        // Streams stop reading new requests at once; in-flight receipts are answered.
        let _ = grpc.await;
        tracing::debug!("shutdown: gRPC server drained");
        let _ = http.await;
        tracing::debug!("shutdown: HTTP server drained");
        for t in bridge_tasks {
            let _ = t.await;
        }
        writer.shutdown();
        drop(writer);
        let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
        tracing::debug!("shutdown: writer stopped");
        let _ = committer.await;
    })
    .await;
    if drained.is_err() {
        bail!(
            "shutdown did not finish within {} s (--shutdown-timeout-secs); unacknowledged work \
             is recovered at the next start",
            bound.as_secs()
        );
    }
    if let Some((task, why)) = failure {
        bail!("critical task {task} stopped: {why}");
    }
    for exit in sup.drain() {
        if let Err(why) = exit.result {
            bail!("{} failed during shutdown: {why}", exit.task);
        }
    }
    tracing::info!("stopped cleanly");
    Ok(())
}
