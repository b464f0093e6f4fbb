//! Starting the bridge inside the node (docs/SPEC.md section 16): with `--l1-rpc` the node runs
//! the L1 watcher, the deposit ingest and (with an operator L1 key) the batch submitter as
//! tasks that stop on shutdown. `--l1-deposits` alone runs only the ingest.

use std::time::Duration;

use anyhow::{bail, Context};
use rollup_bridge::rpc::{redact_url, Rpc};
use rollup_bridge::signer::{L1Signer, ANVIL_DEV_KEY_0, ANVIL_DEV_KEY_2};
use rollup_bridge::submitter::{ProofVerifier, Submitter, SubmitterConfig};
use rollup_bridge::watcher::{Watcher, WatcherConfig};
use rollup_bridge::Address;
use state::tx::Domain;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::l1_ingest::Ingest;
use crate::supervisor::Supervisor;
use crate::writer::WriterHandle;
use rollup_storage::Store;

/// The exported final verifiers (`--proof-verifiers`), loaded against the deployment's circuit
/// pins (`--circuit-pins`; on --devnet, the directory's own `circuits.json`): a verifier file
/// that differs from its pin, an unpinned file or a pinned circuit without its file is refused
/// (`rollup_prover::verify::VerifierSet::load_dir`). `None` without --proof-verifiers. Called
/// at start, so a node with swapped verifier files does not start.
pub fn load_verifiers(cfg: &Config) -> anyhow::Result<Option<rollup_prover::verify::VerifierSet>> {
    let (Some(dir), Some(pins_file)) = (&cfg.proof_verifiers, cfg.circuit_pins_file()?) else {
        return Ok(None);
    };
    if cfg.circuit_pins.is_none() {
        tracing::warn!(
            pins = %pins_file.display(),
            "devnet: proof verifiers checked only against their own directory's manifest \
             (give --circuit-pins to pin a deployment's circuits)"
        );
    }
    let pins = rollup_prover::pins::CircuitPins::load(&pins_file)?;
    let set = rollup_prover::verify::VerifierSet::load_dir(
        dir,
        &rollup_prover::cache::Serializers::rollup(),
        &pins,
    )
    .with_context(|| {
        format!(
            "loading proof verifiers from {} against the circuit pins {}",
            dir.display(),
            pins_file.display()
        )
    })?;
    Ok(Some(set))
}

/// The proof check before a commit: `rollup_prover::verify::verify_batch_proof` with the
/// exported final verifiers (`--proof-verifiers`, pinned: [`load_verifiers`], loaded once at
/// start and handed over as `verifiers`), against the
/// L1 statement rebuilt from the node's own rows and the watcher's (`JobStore::settlement_statement`:
/// batch row, first block time, domain, state diff, ops, queue hashes), so a proof of anything
/// else is refused; that statement goes back to the submitter as the
/// [`rollup_bridge::submitter::ProvenBatch`]. Without verifiers a devnet node
/// accepts any non-empty proof (logged loudly) and any other node commits nothing.
fn verifier(
    cfg: &Config,
    store: &Store,
    verifiers: Option<rollup_prover::verify::VerifierSet>,
) -> anyhow::Result<Box<dyn ProofVerifier>> {
    let set = match verifiers {
        Some(set) => Some(set),
        None if cfg.devnet => None,
        None => {
            return Ok(Box::new(|_: u64, _: &[u8]| {
                Err(
                    "no proof verifiers configured (--proof-verifiers): refusing to commit"
                        .to_string(),
                )
            }))
        }
    };
    // The same statement the prover's final job is checked against (one definition).
    let jobs = rollup_prover::jobs::JobStore::from_pool(store.pool().clone());
    let handle = tokio::runtime::Handle::current();
    Ok(Box::new(move |batch: u64, proof: &[u8]| {
        // The hook is synchronous; the statement needs a few reads. The submitter runs on the
        // node's multi-threaded runtime, where blocking one worker briefly is allowed.
        let statement = tokio::task::block_in_place(|| {
            handle.block_on(async {
                let b = jobs
                    .batch(batch)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("no such batch"))?;
                jobs.settlement_statement(&b).await
            })
        })
        .map_err(|e| format!("batch {batch}: cannot rebuild its statement: {e:#}"))?;
        match &set {
            Some(set) => rollup_prover::verify::verify_batch_proof(set, proof, &statement)
                .map_err(|e| format!("batch {batch}: proof rejected: {e}"))?,
            None if proof.is_empty() => return Err("empty proof".to_string()),
            None => tracing::warn!(
                batch,
                "devnet: batch proof NOT verified (start the node with --proof-verifiers)"
            ),
        }
        Ok(statement)
    }))
}

/// Starts the bridge tasks under `sup` (each one critical: see supervisor.rs); returns their
/// handles so that shutdown can wait for them. `verifiers`: the node's pinned proof verifiers,
/// as [`load_verifiers`] loaded them at start (the submitter checks every proof with them).
pub async fn start(
    cfg: &Config,
    domain: &Domain,
    store: &Store,
    writer: &WriterHandle,
    shutdown: &watch::Receiver<bool>,
    sup: &Supervisor,
    verifiers: Option<rollup_prover::verify::VerifierSet>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let poll = Duration::from_millis(cfg.l1_poll_ms.max(10));
    let mut tasks = Vec::new();
    if cfg.l1_deposits || cfg.l1_rpc.is_some() {
        let ingest = Ingest {
            store: store.clone(),
            writer: writer.clone(),
            poll,
        };
        let run = ingest.run(shutdown.clone());
        tasks.push(sup.spawn("l1-ingest", async move {
            run.await;
            Ok(())
        }));
    }
    let Some(url) = cfg.l1_rpc.clone() else {
        return Ok(tasks);
    };
    let rollup = Address::from(domain.rollup);
    let rpc = Rpc::new(url.clone());
    let chain = rpc
        .wait_ready(Duration::from_secs(30))
        .await
        .with_context(|| {
            format!(
                "asking the L1 endpoint {} for its chain id",
                redact_url(&url)
            )
        })?;
    if chain != domain.chain_id {
        bail!(
            "the L1 endpoint is chain {chain}, this node is configured for {}",
            domain.chain_id
        );
    }
    let watcher = Watcher {
        rpc: Rpc::new(url.clone()),
        pool: store.pool().clone(),
        cfg: WatcherConfig {
            rollup,
            confirmations: cfg.l1_confirmations,
            start_block: cfg.l1_start_block,
            max_range: 2000,
            poll_interval: poll,
        },
    };
    let run = watcher.run(shutdown.clone());
    tasks.push(sup.spawn("l1-watcher", async move {
        run.await;
        Ok(())
    }));
    let key = match (&cfg.operator_l1_key, cfg.devnet) {
        (Some(path), _) => Some(
            crate::node::check_key_file_mode(path)
                .and_then(|()| std::fs::read_to_string(path).map_err(anyhow::Error::from))
                .with_context(|| format!("reading the operator L1 key {}", path.display()))?,
        ),
        (None, true) => Some(ANVIL_DEV_KEY_0.to_string()),
        (None, false) => None,
    };
    match key {
        Some(k) => {
            let signer = L1Signer::from_hex(&k).context("operator L1 key")?;
            let attester = match (&cfg.attester_l1_key, cfg.devnet) {
                (Some(path), _) => crate::node::check_key_file_mode(path)
                    .and_then(|()| std::fs::read_to_string(path).map_err(anyhow::Error::from))
                    .with_context(|| format!("reading the attester L1 key {}", path.display()))?,
                (None, true) => ANVIL_DEV_KEY_2.to_string(),
                (None, false) => anyhow::bail!(
                    "--operator-l1-key needs --attester-l1-key (a separate key: SPEC 15.4)"
                ),
            };
            let attester = L1Signer::from_hex(&attester).context("attester L1 key")?;
            anyhow::ensure!(
                attester.address() != signer.address(),
                "the attester key is the operator's ({}): give a separate --attester-l1-key",
                signer.address()
            );
            tracing::info!(operator = %signer.address(), attester = %attester.address(), rollup = %rollup, "batch submitter on");
            let submitter = Submitter {
                rpc: Rpc::new(url.clone()),
                pool: store.pool().clone(),
                signer,
                attester,
                verifier: verifier(cfg, store, verifiers)?,
                cfg: SubmitterConfig {
                    rollup,
                    chain_id: domain.chain_id,
                    confirmations: cfg.l1_confirmations,
                    resend_after: Duration::from_secs(cfg.l1_resend_after_secs.max(1)),
                    gas_bump_percent: cfg.l1_gas_bump_percent.max(10),
                    poll_interval: poll,
                },
            };
            let run = submitter.run(shutdown.clone());
            tasks.push(sup.spawn("l1-submitter", async move {
                run.await;
                Ok(())
            }));
        }
        None => tracing::warn!("no --operator-l1-key: the batch submitter does not run"),
    }
    tracing::info!(l1 = %redact_url(&url), confirmations = cfg.l1_confirmations, "bridge on");
    Ok(tasks)
}
