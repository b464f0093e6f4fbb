//! The proving worker: plans (when it holds the planner lock), reaps stale jobs, claims jobs,
//! proves them (leaves in parallel with rayon; a job identical to one it proved recently takes
//! that proof, [`crate::memo`]), records the results with fencing, and publishes Prometheus
//! metrics. Stops claiming on SIGTERM/SIGINT and exits after the jobs in hand are recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rayon::prelude::*;
use tokio::sync::watch;

use crate::circuits::leaf::LeafCircuit;
use crate::circuits::registry::{Circuits, JobProof};
use crate::jobs::{ClaimedJob, JobKind, JobState, JobStore};
use crate::memo::{first_of_each, MemoKey, ProofMemo};
use crate::pins::FinalId;
use crate::planner::Planner;
use crate::verify::verify_batch_proof;
use state::settlement::BatchStatement;
use state::tx::Domain;

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub database_url: String,
    pub worker_id: String,
    /// Leaf jobs claimed and proven at once.
    pub parallel_leaves: usize,
    /// Proofs kept for reuse by identical jobs ([`crate::memo`]; 0: none).
    pub proof_memo: usize,
    pub heartbeat: Duration,
    pub stale_after: Duration,
    pub max_attempts: i32,
    /// How long to sleep when there is nothing to do.
    pub idle_poll: Duration,
    /// Take part in the planner election.
    pub plan: bool,
    /// Exit once there is nothing left to do (tests, one-shot runs).
    pub exit_when_idle: bool,
}

/// Proving outcome of one job.
enum Outcome {
    Proof {
        proof: JobProof,
        ms: u64,
        /// Taken from an identical job's proof rather than proven.
        reused: bool,
    },
    Final {
        bytes: Vec<u8>,
        statement: Box<BatchStatement>,
        ms: u64,
    },
    Failed(String),
}

fn prove_one<L: LeafCircuit>(
    circuits: &Circuits<L>,
    job: &ClaimedJob,
    children: &[Vec<u8>],
    domain: Option<&Domain>,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let ms = |s: Instant| s.elapsed().as_millis() as u64;
    Ok(match job.kind {
        JobKind::Leaf => {
            let input = job.input.as_deref().context("leaf job without input")?;
            let proof = circuits.prove_tree_leaf(job.tree, job.diff_kind, input)?;
            Outcome::Proof {
                proof,
                ms: ms(started),
                reused: false,
            }
        }
        JobKind::Merge => {
            anyhow::ensure!(children.len() == 2, "merge job needs two child proofs");
            let proof = circuits.prove_tree_merge(
                job.tree,
                job.diff_kind,
                job.level,
                &children[0],
                &children[1],
            )?;
            Outcome::Proof {
                proof,
                ms: ms(started),
                reused: false,
            }
        }
        JobKind::Final => {
            let domain = domain.context("final job without the chain's domain")?;
            let id = FinalId {
                level: job.level,
                kind: job.diff_kind,
                splits: job.splits,
                walks: job.walks,
            };
            let (bytes, statement) = circuits.prove_final(id, children, domain)?;
            Outcome::Final {
                bytes,
                statement: Box::new(statement),
                ms: ms(started),
            }
        }
    })
}

/// Runs the worker until `shutdown` turns true (or, with `exit_when_idle`, until idle).
pub async fn run<L: LeafCircuit>(
    cfg: WorkerConfig,
    circuits: Arc<Circuits<L>>,
    jobs: JobStore,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut planner = Planner::new(&cfg.database_url);
    let memo = Arc::new(ProofMemo::with_capacity(cfg.proof_memo));
    let mut last_reap = Instant::now() - cfg.stale_after;
    tracing::info!(worker = %cfg.worker_id, parallel_leaves = cfg.parallel_leaves, "worker started");
    let stats_task = tokio::spawn(stats_loop(jobs.clone()));
    let result = async {
        loop {
            if *shutdown.borrow() {
                tracing::info!(worker = %cfg.worker_id, "shutting down: no new jobs");
                return Ok(());
            }
            if cfg.plan {
                if let Err(e) = planner.tick(&jobs, circuits.leaf(), circuits.shape()).await {
                    tracing::error!("planner: {e:#}");
                }
            }
            if last_reap.elapsed() >= cfg.stale_after / 2 {
                last_reap = Instant::now();
                match jobs.reap(cfg.stale_after, cfg.max_attempts).await {
                    Ok(ids) if !ids.is_empty() => {
                        metrics::counter!("prover_jobs_reaped_total").increment(ids.len() as u64);
                        tracing::warn!(
                            ?ids,
                            "re-queued jobs of a worker that stopped heartbeating"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!("reaper: {e:#}"),
                }
                if let Err(e) = jobs.promote_ready().await {
                    tracing::error!("promote: {e:#}");
                }
            }
            // Aggregation first (it finishes batches), then leaves.
            let claimed = match claim(&cfg, &jobs).await {
                Ok(c) => c,
                Err(e) => {
                    // Postgres restarting, network: retry; the jobs in hand are none.
                    tracing::error!("claiming jobs: {e:#}");
                    tokio::time::sleep(cfg.idle_poll * 4).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                if cfg.exit_when_idle {
                    let s = jobs.stats().await?;
                    if s.unproven_batches == 0 {
                        return Ok(());
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(cfg.idle_poll) => {},
                    _ = shutdown.changed() => {},
                }
                continue;
            }
            if let Err(e) = process(&cfg, &circuits, &jobs, &memo, claimed).await {
                // The jobs stay running without heartbeats and are re-queued by a reaper.
                tracing::error!("processing jobs: {e:#}");
                tokio::time::sleep(cfg.idle_poll).await;
            }
        }
    }
    .await;
    stats_task.abort();
    result
}

async fn claim(cfg: &WorkerConfig, jobs: &JobStore) -> anyhow::Result<Vec<ClaimedJob>> {
    let claimed = jobs
        .claim(&cfg.worker_id, &[JobKind::Final, JobKind::Merge], 1)
        .await?;
    if !claimed.is_empty() {
        return Ok(claimed);
    }
    jobs.claim(&cfg.worker_id, &[JobKind::Leaf], cfg.parallel_leaves.max(1))
        .await
}

/// The memo key of a claimed job with its child proofs ([`crate::memo::key`]).
fn memo_key(job: &ClaimedJob, children: &[Vec<u8>]) -> Option<MemoKey> {
    let inputs: Vec<&[u8]> = match job.kind {
        JobKind::Leaf => job.input.as_deref().into_iter().collect(),
        _ => children.iter().map(Vec::as_slice).collect(),
    };
    crate::memo::key(job.tree, job.diff_kind, job.kind, job.level, &inputs)
}

async fn process<L: LeafCircuit>(
    cfg: &WorkerConfig,
    circuits: &Arc<Circuits<L>>,
    jobs: &JobStore,
    memo: &Arc<ProofMemo>,
    claimed: Vec<ClaimedJob>,
) -> anyhow::Result<()> {
    let mut inputs = Vec::with_capacity(claimed.len());
    let domain = if claimed.iter().any(|j| j.kind == JobKind::Final) {
        Some(jobs.chain().await?.0)
    } else {
        None
    };
    for job in &claimed {
        inputs.push(jobs.child_proofs(job).await?);
        tracing::info!(
            worker = %cfg.worker_id,
            job = job.id,
            batch = job.batch,
            tree = job.tree.as_str(),
            kind = job.kind.as_str(),
            level = job.level,
            position = job.position,
            attempt = job.attempt,
            "job claimed"
        );
    }
    // Heartbeats while proving, from their own task.
    let tokens: Vec<(i64, i32)> = claimed.iter().map(|j| (j.id, j.attempt)).collect();
    let hb = {
        let jobs = jobs.clone();
        let worker = cfg.worker_id.clone();
        let every = cfg.heartbeat;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match jobs.heartbeat(&tokens, &worker).await {
                    Ok(n) if (n as usize) < tokens.len() => {
                        tracing::warn!(
                            held = n,
                            claimed = tokens.len(),
                            "lost some jobs (re-queued by a reaper)"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("heartbeat: {e:#}"),
                }
            }
        })
    };
    // Each distinct job proven once: a job identical to one proven recently, or to an earlier
    // one of this claim, takes its proof.
    let keys: Vec<Option<MemoKey>> = claimed
        .iter()
        .zip(&inputs)
        .map(|(job, children)| memo_key(job, children))
        .collect();
    let firsts = first_of_each(&keys);
    let outcomes = {
        let circuits = circuits.clone();
        let claimed = claimed.clone();
        let memo = memo.clone();
        tokio::task::spawn_blocking(move || {
            let proven: Vec<Option<Outcome>> = (0..claimed.len())
                .into_par_iter()
                .map(|i| {
                    if firsts[i] != i {
                        return None;
                    }
                    if let Some(proof) = keys[i].as_ref().and_then(|k| memo.get(k)) {
                        return Some(Outcome::Proof {
                            proof,
                            ms: 0,
                            reused: true,
                        });
                    }
                    let outcome = prove_one(&circuits, &claimed[i], &inputs[i], domain.as_ref())
                        .unwrap_or_else(|e| Outcome::Failed(format!("{e:#}")));
                    if let (Some(key), Outcome::Proof { proof, .. }) = (&keys[i], &outcome) {
                        memo.insert(*key, proof);
                    }
                    Some(outcome)
                })
                .collect();
            // The copies, from the first of their kind.
            let copies: Vec<Option<Outcome>> = (0..proven.len())
                .map(|i| (firsts[i] != i).then(|| copy_of(proven[firsts[i]].as_ref())))
                .collect();
            proven
                .into_iter()
                .zip(copies)
                .map(|(outcome, copy)| {
                    outcome.or(copy).unwrap_or_else(|| {
                        Outcome::Failed("internal: a job without an outcome".into())
                    })
                })
                .collect::<Vec<_>>()
        })
        .await
        .context("proving task panicked")?
    };
    hb.abort();
    for (job, outcome) in claimed.iter().zip(outcomes) {
        record(cfg, circuits, jobs, job, outcome).await?;
    }
    Ok(())
}

/// The outcome of a job identical to the one that had `first`.
fn copy_of(first: Option<&Outcome>) -> Outcome {
    match first {
        Some(Outcome::Proof { proof, .. }) => Outcome::Proof {
            proof: proof.clone(),
            ms: 0,
            reused: true,
        },
        Some(Outcome::Failed(e)) => Outcome::Failed(e.clone()),
        _ => Outcome::Failed("internal: an identical job has no outcome".into()),
    }
}

async fn record<L: LeafCircuit>(
    cfg: &WorkerConfig,
    circuits: &Arc<Circuits<L>>,
    jobs: &JobStore,
    job: &ClaimedJob,
    outcome: Outcome,
) -> anyhow::Result<()> {
    let kind = job.kind.as_str();
    let kept = match outcome {
        Outcome::Proof { proof, ms, reused } => {
            let tree = job.tree.as_str();
            if reused {
                metrics::counter!("prover_proofs_reused_total", "kind" => kind, "tree" => tree)
                    .increment(1);
            } else {
                metrics::histogram!("prover_proof_seconds", "kind" => kind, "tree" => tree)
                    .record(ms as f64 / 1e3);
            }
            let kept = jobs
                .complete(job, &cfg.worker_id, &proof.bytes, &proof.statement, ms)
                .await?;
            if kept {
                tracing::info!(worker = %cfg.worker_id, job = job.id, batch = job.batch, tree, kind, level = job.level, position = job.position, prove_ms = ms, reused, "job done");
            }
            kept
        }
        Outcome::Final {
            bytes,
            statement,
            ms,
        } => {
            metrics::histogram!("prover_proof_seconds", "kind" => kind).record(ms as f64 / 1e3);
            let batch = jobs
                .batch(job.batch)
                .await?
                .context("the batch of a final job vanished")?;
            let expected = jobs.settlement_statement(&batch).await?;
            let checked = {
                let circuits = circuits.clone();
                let bytes = bytes.clone();
                tokio::task::spawn_blocking(move || {
                    verify_batch_proof(circuits.as_ref(), &bytes, &expected)
                })
                .await?
            };
            if let Err(e) = checked {
                let msg = format!(
                    "final proof does not verify against batch {}: {e}",
                    job.batch
                );
                tracing::error!(worker = %cfg.worker_id, job = job.id, "{msg}");
                jobs.fail(job, &cfg.worker_id, &msg, 1).await?;
                return Ok(());
            }
            debug_assert_eq!(*statement, expected);
            let kept = jobs
                .complete_final(job, &cfg.worker_id, &bytes, &statement, ms)
                .await?;
            if kept {
                metrics::counter!("prover_batches_proven_total").increment(1);
                tracing::info!(worker = %cfg.worker_id, batch = job.batch, prove_ms = ms, bytes = bytes.len(), "batch proven");
            }
            kept
        }
        Outcome::Failed(error) => {
            metrics::counter!("prover_job_failures_total", "kind" => kind).increment(1);
            tracing::error!(worker = %cfg.worker_id, job = job.id, kind, %error, "proving failed");
            jobs.fail(job, &cfg.worker_id, &error, cfg.max_attempts)
                .await?
        }
    };
    if !kept {
        metrics::counter!("prover_results_fenced_total").increment(1);
        tracing::warn!(worker = %cfg.worker_id, job = job.id, attempt = job.attempt, "result dropped: the job was re-queued and is no longer ours");
    }
    Ok(())
}

/// Publishes queue gauges every two seconds.
async fn stats_loop(jobs: JobStore) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        let Ok(s) = jobs.stats().await else { continue };
        let mut queued = 0;
        // Every (kind, state) pair, so a group that empties reads 0 rather than its last value.
        for &kind in JobKind::ALL {
            for &state in JobState::ALL {
                let n = s
                    .jobs
                    .iter()
                    .find(|(k, st, _)| *k == kind && *st == state)
                    .map_or(0, |j| j.2);
                metrics::gauge!("prover_jobs", "kind" => kind.as_str(), "state" => state.as_str())
                    .set(n as f64);
                if state == JobState::Queued {
                    queued += n;
                }
            }
        }
        metrics::gauge!("prover_queue_depth").set(queued as f64);
        metrics::gauge!("prover_lag_batches").set(s.unproven_batches as f64);
        metrics::gauge!("prover_lag_seconds").set(s.oldest_unproven_secs);
        metrics::gauge!("prover_last_sealed_batch").set(s.last_sealed as f64);
        metrics::gauge!("prover_last_proven_batch").set(s.last_proven as f64);
    }
}
