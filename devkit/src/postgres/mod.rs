//! Finding or starting a Postgres server, and creating databases on it.
//!
//! [`ensure_server`] picks the server (`DATABASE_URL`, then 127.0.0.1:5432, then a private
//! cluster), [`fresh_database`] makes a uniquely named database for one test or one devnet run, and
//! [`test_database`] does both in one call, starting the server at most once per process.

mod cluster;
mod database;
mod error;

use std::path::PathBuf;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::sync::OnceCell;

pub use cluster::{default_data_dir, locate_binaries, PgBinaries, PrivateCluster};
pub use database::{
    create_database, database_name, database_url, drop_database, fresh_database, redact_url,
};
pub use error::{PgError, Result};

/// Environment variable holding the URL of an existing server; when set it wins (unless the
/// private cluster is forced).
pub const ENV_DATABASE_URL: &str = "DATABASE_URL";
/// Environment variable forcing the private cluster (`1`, `true`, `yes`, `on`).
pub const ENV_FORCE_PRIVATE: &str = "ROLLUP_PG_PRIVATE";
/// Environment variable naming the private cluster's data folder.
pub const ENV_DATA_DIR: &str = "ROLLUP_PG_DATA_DIR";
/// Environment variable naming the folder holding `initdb` and `pg_ctl`.
pub const ENV_BIN_DIR: &str = "ROLLUP_PG_BIN_DIR";

/// The conventional local server: default port, user `postgres`, trust authentication.
pub const LOCAL_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long to wait for a server to accept a connection and answer `SELECT 1`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a private cluster found running may take to accept connections (crash recovery).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for the local server probe (a slow answer means "not usable").
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the server came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgSource {
    /// `DATABASE_URL` (or [`PgOptions::database_url`]).
    External,
    /// A server already answering on 127.0.0.1:5432.
    Local,
    /// A private cluster started (or found running) in a data folder.
    Private,
}

impl std::fmt::Display for PgSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PgSource::External => "DATABASE_URL",
            PgSource::Local => "local server on 127.0.0.1:5432",
            PgSource::Private => "private cluster",
        })
    }
}

/// What [`ensure_server`] may use.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// URL of an existing server to use as is (normally from `DATABASE_URL`).
    pub database_url: Option<String>,
    /// Always use the private cluster, ignoring `database_url` and any local server.
    pub force_private: bool,
    /// Try 127.0.0.1:5432 before starting a private cluster.
    pub probe_local: bool,
    /// Data folder of the private cluster; `None` means [`default_data_dir`].
    pub data_dir: Option<PathBuf>,
    /// Folder holding `initdb` and `pg_ctl`; `None` means search PATH and the usual places.
    pub bin_dir: Option<PathBuf>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            database_url: None,
            force_private: false,
            probe_local: true,
            data_dir: None,
            bin_dir: None,
        }
    }
}

impl PgOptions {
    /// Options from the environment: `DATABASE_URL`, `ROLLUP_PG_PRIVATE`, `ROLLUP_PG_DATA_DIR`,
    /// `ROLLUP_PG_BIN_DIR`. Empty values count as unset.
    pub fn from_env() -> Self {
        let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        PgOptions {
            database_url: non_empty(ENV_DATABASE_URL).map(|v| v.to_string_lossy().into_owned()),
            force_private: non_empty(ENV_FORCE_PRIVATE)
                .is_some_and(|v| env_flag(&v.to_string_lossy())),
            probe_local: true,
            data_dir: non_empty(ENV_DATA_DIR).map(PathBuf::from),
            bin_dir: non_empty(ENV_BIN_DIR).map(PathBuf::from),
        }
    }

    /// Only the private cluster, in `data_dir` (or the default folder).
    pub fn private(data_dir: Option<PathBuf>) -> Self {
        PgOptions {
            force_private: true,
            probe_local: false,
            data_dir,
            ..PgOptions::default()
        }
    }
}

/// Reads a boolean environment flag the way clap does: false for `0`, `false`, `no`, `off`, `n`,
/// `f` (any case) and the empty string; true otherwise.
pub fn env_flag(value: &str) -> bool {
    !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "false" | "no" | "off" | "n" | "f"
    )
}

/// A server ready for connections.
#[derive(Debug)]
pub struct PgServer {
    admin_url: String,
    source: PgSource,
    cluster: Option<PrivateCluster>,
    stop_on_drop: bool,
}

impl PgServer {
    /// URL of a superuser (or at least `CREATEDB`) connection to the server's admin database.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// Where the server came from.
    pub fn source(&self) -> PgSource {
        self.source
    }

    /// The private cluster, when that is what is serving.
    pub fn cluster(&self) -> Option<&PrivateCluster> {
        self.cluster.as_ref()
    }

    /// Stops the private cluster (`pg_ctl stop -m fast`); does nothing for other sources, which
    /// belong to someone else. Returns whether a server was stopped.
    pub async fn stop(&self) -> Result<bool> {
        match &self.cluster {
            Some(cluster) => cluster.stop().await,
            None => Ok(false),
        }
    }

    /// Stop the private cluster when this value is dropped. Off by default: tests in one process
    /// share one server, and the next run reuses it.
    pub fn set_stop_on_drop(&mut self, stop: bool) {
        self.stop_on_drop = stop;
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if !self.stop_on_drop {
            return;
        }
        if let Some(cluster) = &self.cluster {
            if let Err(err) = cluster.stop_blocking() {
                tracing::warn!(error = %err, "could not stop the private Postgres cluster");
            }
        }
    }
}

/// Finds or starts a server, in this order:
/// 1. `opts.database_url` (normally `DATABASE_URL`): used as is; it must answer `SELECT 1`;
/// 2. 127.0.0.1:5432 as `postgres` without a password, when `opts.probe_local`;
/// 3. the private cluster in `opts.data_dir`: started if stopped, created first if missing.
///
/// `opts.force_private` skips the first two.
pub async fn ensure_server(opts: &PgOptions) -> Result<PgServer> {
    if !opts.force_private {
        if let Some(url) = &opts.database_url {
            database::check_url(url)?;
            connect_and_ping(url, CONNECT_TIMEOUT)
                .await
                .map_err(|source| PgError::Connect {
                    what: "the server in DATABASE_URL",
                    url: redact_url(url),
                    error: Box::new(source),
                })?;
            tracing::info!(url = %redact_url(url), "using Postgres from DATABASE_URL");
            return Ok(PgServer {
                admin_url: url.clone(),
                source: PgSource::External,
                cluster: None,
                stop_on_drop: false,
            });
        }
        if opts.probe_local {
            match probe_local().await {
                Ok(()) => {
                    tracing::info!(url = LOCAL_SERVER_URL, "using the local Postgres server");
                    return Ok(PgServer {
                        admin_url: LOCAL_SERVER_URL.to_owned(),
                        source: PgSource::Local,
                        cluster: None,
                        stop_on_drop: false,
                    });
                }
                Err(reason) => {
                    tracing::info!(%reason, "no usable Postgres on 127.0.0.1:5432; using a private cluster");
                }
            }
        }
    } else if opts.database_url.is_some() {
        tracing::info!("private cluster forced: ignoring DATABASE_URL");
    }

    let cluster = PrivateCluster::ensure(opts.data_dir.clone(), opts.bin_dir.clone()).await?;
    let admin_url = cluster.admin_url();
    wait_ready(&admin_url, READY_TIMEOUT)
        .await
        .map_err(|source| PgError::Connect {
            what: "the private cluster",
            url: admin_url.clone(),
            error: Box::new(source),
        })?;
    tracing::info!(
        url = %admin_url,
        data_dir = %cluster.data_dir().display(),
        "private Postgres cluster ready"
    );
    Ok(PgServer {
        admin_url,
        source: PgSource::Private,
        cluster: Some(cluster),
        stop_on_drop: false,
    })
}

/// The server for this process: [`ensure_server`] with [`PgOptions::from_env`], run once.
pub async fn shared_server() -> Result<&'static PgServer> {
    static SERVER: OnceCell<PgServer> = OnceCell::const_new();
    SERVER
        .get_or_try_init(|| async { ensure_server(&PgOptions::from_env()).await })
        .await
}

/// A fresh, empty database for one integration test; returns its URL.
///
/// The server is found or started once per process ([`shared_server`]); the database name is
/// `prefix` plus the process id, a counter and random characters, so parallel tests and parallel
/// test processes never share one. Databases are left behind for inspection; call
/// [`drop_database`] to remove one.
pub async fn test_database(prefix: &str) -> Result<String> {
    let server = shared_server().await?;
    fresh_database(server.admin_url(), prefix).await
}

/// Connects to `url` and runs `SELECT 1`, giving up after `timeout`.
async fn connect_and_ping(url: &str, timeout: Duration) -> std::result::Result<(), sqlx::Error> {
    let attempt = async {
        let mut conn = PgConnection::connect(url).await?;
        let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
        conn.close().await?;
        if one == 1 {
            Ok(())
        } else {
            Err(sqlx::Error::Protocol(format!("SELECT 1 returned {one}")))
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {} s", timeout.as_secs_f32()),
        ))),
    }
}

/// Retries [`connect_and_ping`] until it succeeds or `timeout` passes (a server found running may
/// still be recovering: "the database system is starting up").
async fn wait_ready(url: &str, timeout: Duration) -> std::result::Result<(), sqlx::Error> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match connect_and_ping(url, left.min(CONNECT_TIMEOUT)).await {
            Ok(()) => return Ok(()),
            Err(err) if tokio::time::Instant::now() + Duration::from_millis(200) >= deadline => {
                return Err(err)
            }
            Err(err) => {
                tracing::debug!(error = %err, "server not ready yet; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Whether the conventional local server is there and lets `postgres` in without a password.
async fn probe_local() -> std::result::Result<(), String> {
    // A refused TCP connection is the common case; answer it without sqlx's retries.
    let tcp = tokio::time::timeout(
        PROBE_TIMEOUT,
        tokio::net::TcpStream::connect(("127.0.0.1", 5432)),
    )
    .await;
    match tcp {
        Err(_) => return Err("connection timed out".into()),
        Ok(Err(err)) => return Err(err.to_string()),
        Ok(Ok(stream)) => drop(stream),
    }
    connect_and_ping(LOCAL_SERVER_URL, PROBE_TIMEOUT)
        .await
        .map_err(|err| format!("a server answers but is not usable: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_flags() {
        for yes in ["1", "true", "TRUE", "yes", "on", "y"] {
            assert!(env_flag(yes), "{yes}");
        }
        for no in ["", "0", "false", "False", "no", "off", "n", "f", " 0 "] {
            assert!(!env_flag(no), "{no:?}");
        }
    }

    #[test]
    fn private_options_skip_everything_else() {
        let opts = PgOptions::private(Some(PathBuf::from("/tmp/x")));
        assert!(opts.force_private);
        assert!(!opts.probe_local);
        assert_eq!(opts.data_dir, Some(PathBuf::from("/tmp/x")));
    }
}
