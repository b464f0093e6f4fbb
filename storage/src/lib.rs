//! The rollup's Postgres schema and every query against it.
//!
//! This crate owns `migrations/` and is the only place that names a table or a status. Each
//! table has one Rust row type (mapped by column name with [`sqlx::FromRow`]) and each status
//! column one enum ([`status`]); a status changes only through the guarded transitions here.
//! One module per owner, reached from a [`Store`] the way zkSync's DAL does:
//!
//! | module | tables | writer |
//! |---|---|---|
//! | [`log`] | `transactions`, `blocks` (and the batch insert of a commit group) | sequencer committer |
//! | [`meta`] | `chain_meta` | sequencer at start |
//! | [`batches`] | `batches`, `batch_witness` | writer seals, prover proves, submitter commits |
//! | [`prover_jobs`] | `prover_jobs`, `batch_proofs` | prover fleet |
//! | [`l1`] | `l1_priority_ops`, `l1_sync`, `l1_submissions`, `l1_batches` | bridge watcher, submitter |
//! | [`feed`] | `bridge_events` | everyone, inside their own transaction |
//! | [`snapshots`] | `state_snapshots`, `state_snapshot_chunks` | sequencer snapshot task |
//!
//! Invariant: every stored integer (index, seq, time, amount) is below 2^63 by the protocol's
//! rules (docs/SPEC.md section 5), so `BIGINT` holds it and conversions back to `u64` are
//! checked ([`StorageError::Corrupt`] otherwise).
//!
//! The SDK never depends on this crate: clients talk to the node, not to its database.

pub mod batches;
pub mod feed;
pub mod l1;
pub mod log;
pub mod meta;
pub mod prover_jobs;
pub mod snapshots;
pub mod status;
pub mod witness;

mod convert;

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};

pub use status::{
    BatchStatus, DiffCircuitKind, EventFinality, EventKind, Finality, JobKind, JobState,
    ParseStatusError, PriorityOpKind, PriorityOpStatus, ProofTree, SideTrees, SubmissionKind,
    SubmissionStatus,
};
pub use witness::BatchWitness;

/// The schema, embedded at compile time (`build.rs` reruns on a new migration file).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row that breaks an invariant of the schema (a digest of the wrong length, a negative
    /// seq): the database was changed by something other than this crate.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A pool and the DAL of each owner.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects with a pool of `max_connections` and applies pending migrations.
    pub async fn connect_and_migrate(url: &str, max_connections: u32) -> Result<Store> {
        let store = Store::connect_pool(url, max_connections, Duration::from_secs(10)).await?;
        MIGRATOR.run(&store.pool).await?;
        Ok(store)
    }

    /// A pool of its own without migrating (e.g. the committer's, so queries and feeds never
    /// take its connections). `acquire_timeout` bounds how long one attempt waits for a
    /// connection.
    pub async fn connect_pool(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Store> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .connect(url)
            .await?;
        Ok(Store { pool })
    }

    /// Wraps an existing pool (tests, services that share one).
    pub fn from_pool(pool: PgPool) -> Store {
        Store { pool }
    }

    /// Applies pending migrations on `pool`.
    pub async fn migrate(pool: &PgPool) -> Result<()> {
        MIGRATOR.run(pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The transaction log and blocks.
    pub fn log(&self) -> log::LogDal<'_> {
        log::LogDal::new(&self.pool)
    }

    /// Chain parameters fixed at genesis.
    pub fn meta(&self) -> meta::MetaDal<'_> {
        meta::MetaDal::new(&self.pool)
    }

    /// Batches and their witnesses.
    pub fn batches(&self) -> batches::BatchesDal<'_> {
        batches::BatchesDal::new(&self.pool)
    }

    /// The prover fleet's job queue and final proofs.
    pub fn jobs(&self) -> prover_jobs::JobsDal<'_> {
        prover_jobs::JobsDal::new(&self.pool)
    }

    /// The bridge's L1 records: priority ops, the watcher's cursor, submissions, L1 batches.
    pub fn l1(&self) -> l1::L1Dal<'_> {
        l1::L1Dal::new(&self.pool)
    }

    /// State snapshots for fast restarts.
    pub fn snapshots(&self) -> snapshots::SnapshotsDal<'_> {
        snapshots::SnapshotsDal::new(&self.pool)
    }

    /// The exchanges' event feed.
    pub fn feed(&self) -> feed::FeedDal<'_> {
        feed::FeedDal::new(&self.pool)
    }
}
