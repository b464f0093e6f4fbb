//! The private cluster: a Postgres data folder of our own, created with the machine's `initdb` and
//! run with its `pg_ctl`.
//!
//! Layout of the data folder (the cluster itself, as `initdb` makes it) plus three files of ours:
//! - `rollup-devkit.conf`: listen address, port, socket folder and tuning, rewritten on each start
//!   and included from `postgresql.conf`;
//! - `postgres.log`: the server log (`pg_ctl -l`);
//! - next to the folder, `<folder>.lock`: held while starting or stopping, so parallel test
//!   processes do not race on `initdb` or `pg_ctl start`.
//!
//! `initdb` and `pg_ctl` refuse to run as root, so when we are root every command runs as the
//! `postgres` system user (`runuser -u postgres -- ...`) and the data folder is chowned to it.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{PgError, Result};
use crate::ports;

mod binaries;
mod data_dir;
mod locking;
mod run_as;

pub use binaries::{locate_binaries, PgBinaries};
pub use data_dir::default_data_dir;

use binaries::version_key;
use data_dir::{
    absolute, clear_stale_lock_files, conf_quote, create_parents, default_candidates,
    existing_cluster, log_tail, previous_port, running_port,
};
use locking::{lock, lock_path};
use run_as::{
    check_reachable, cluster_user, command, describe, effective_uid, give_to, nearest_existing,
    run, RunAs,
};

/// Our settings file inside the data folder, included from `postgresql.conf`.
const CONF_FILE: &str = "rollup-devkit.conf";
/// The server log inside the data folder.
const LOG_FILE: &str = "postgres.log";
/// The superuser `initdb` creates; the admin URL connects as this role.
const SUPERUSER: &str = "postgres";
/// The system user the cluster runs as when we are root.
const SYSTEM_USER: &str = "postgres";
/// `pg_ctl -t`: seconds to wait for start and stop.
const PG_CTL_WAIT_SECS: &str = "60";
/// How long to wait for another process holding the cluster lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(180);
/// Longest unix socket path Postgres accepts (sun_path minus the terminating NUL), with margin.
const MAX_SOCKET_PATH: usize = 100;
/// Start attempts (a new port each time) when the chosen port is taken under our feet.
const START_ATTEMPTS: usize = 3;

/// Server settings for a development box with two cores shared with compilers. Durability stays
/// on: crash tests kill the node and expect acknowledged commits to survive.
const SETTINGS: &[(&str, &str)] = &[
    ("fsync", "on"),
    ("synchronous_commit", "on"),
    ("full_page_writes", "on"),
    ("max_connections", "200"),
    ("shared_buffers", "'256MB'"),
    ("effective_cache_size", "'1GB'"),
    ("work_mem", "'8MB'"),
    ("maintenance_work_mem", "'64MB'"),
    ("wal_buffers", "'16MB'"),
    // Bounded: every test database is a CREATE DATABASE whose copy is WAL-logged, and a whole
    // test run creates about a hundred of them; a small CI disk must not hold 2GB of WAL.
    ("max_wal_size", "'512MB'"),
    ("checkpoint_completion_target", "0.9"),
    ("max_worker_processes", "4"),
    ("max_parallel_workers", "2"),
    ("max_parallel_workers_per_gather", "1"),
    ("max_parallel_maintenance_workers", "1"),
    ("random_page_cost", "1.1"),
    ("log_line_prefix", "'%m [%p] %q%u@%d '"),
];

/// A private cluster that is running. Dropping this value leaves it running; [`stop`] stops it.
///
/// [`stop`]: PrivateCluster::stop
#[derive(Debug, Clone)]
pub struct PrivateCluster {
    data_dir: PathBuf,
    bins: PgBinaries,
    run_as: Option<RunAs>,
    port: u16,
    socket_dir: PathBuf,
}

impl PrivateCluster {
    /// Makes sure the cluster in `data_dir` (default: [`default_data_dir`]) is running: creates it
    /// with `initdb` if the folder is missing or empty, starts it if it is stopped, and just
    /// connects to it if it runs already.
    pub async fn ensure(data_dir: Option<PathBuf>, bin_dir: Option<PathBuf>) -> Result<Self> {
        tokio::task::spawn_blocking(move || Self::ensure_blocking(data_dir, bin_dir.as_deref()))
            .await
            .map_err(|err| PgError::io("the cluster start task failed", io::Error::other(err)))?
    }

    /// [`ensure`](Self::ensure) for callers without an async runtime.
    pub fn ensure_blocking(data_dir: Option<PathBuf>, bin_dir: Option<&Path>) -> Result<Self> {
        let run_as = cluster_user()?;
        let data_dir = match data_dir {
            Some(dir) => {
                let dir = absolute(&dir)?;
                check_reachable(&run_as, &nearest_existing(&dir))?;
                dir
            }
            None => choose_default(&run_as)?,
        };
        // Find the programs before creating anything, so a machine without them is told how to
        // install them and left untouched. The version peeked here is checked again under the lock.
        let peeked = fs::read_to_string(data_dir.join("PG_VERSION"))
            .ok()
            .map(|v| v.trim().to_owned());
        let mut bins = binaries_for(&data_dir, bin_dir, peeked.as_deref())?;

        create_parents(&data_dir)?;
        let _lock = lock(&lock_path(&data_dir))?;
        let existing = existing_cluster(&data_dir)?;
        if let Some(major) = existing.as_deref().filter(|&m| m != bins.major) {
            bins = binaries_for(&data_dir, bin_dir, Some(major))?;
        }

        let mut cluster = PrivateCluster {
            socket_dir: data_dir.clone(),
            data_dir,
            bins,
            run_as,
            port: 0,
        };
        if existing.is_none() {
            cluster.init()?;
        } else {
            cluster.check_owner()?;
            clear_stale_lock_files(&cluster.data_dir)?;
        }
        if cluster.status()? {
            let (port, socket_dir) = running_port(&cluster.data_dir)?;
            cluster.port = port;
            cluster.socket_dir = socket_dir;
            tracing::info!(port, data_dir = %cluster.data_dir.display(), "private cluster already running");
        } else {
            cluster.start()?;
        }
        Ok(cluster)
    }

    /// The cluster's superuser connection to its `postgres` database over TCP.
    pub fn admin_url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.port)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Folder of the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The server log.
    pub fn log_file(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE)
    }

    pub fn binaries(&self) -> &PgBinaries {
        &self.bins
    }

    /// Whether the server is running (`pg_ctl status`).
    pub fn is_running(&self) -> Result<bool> {
        self.status()
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are disconnected, committed data is
    /// kept). Returns whether it was running. The data folder stays for the next start.
    pub async fn stop(&self) -> Result<bool> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.stop_blocking())
            .await
            .map_err(|err| PgError::io("the cluster stop task failed", io::Error::other(err)))?
    }

    /// Starts the stopped server again with its last configuration, so on the same port (chaos
    /// tests stop Postgres under a running node and expect it back where it was).
    pub async fn start_again(&self) -> Result<()> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let _lock = lock(&lock_path(&this.data_dir))?;
            clear_stale_lock_files(&this.data_dir)?;
            run(command(&this.run_as, &this.bins.pg_ctl)
                .args(["start", "-w", "-s", "-t", PG_CTL_WAIT_SECS, "-D"])
                .arg(&this.data_dir)
                .arg("-l")
                .arg(this.log_file()))
            .map(|_| ())
        })
        .await
        .map_err(|err| PgError::io("the cluster start task failed", io::Error::other(err)))?
    }

    /// `pg_ctl stop -m fast` then [`start_again`](Self::start_again): every session is cut
    /// (clients see SQLSTATE 57P01), committed data is kept, the port stays.
    pub async fn restart_fast(&self) -> Result<()> {
        self.stop().await?;
        self.start_again().await
    }

    /// [`stop`](Self::stop) for callers without an async runtime.
    pub fn stop_blocking(&self) -> Result<bool> {
        let _lock = lock(&lock_path(&self.data_dir))?;
        self.stop_locked()
    }

    /// Stops the cluster in `data_dir` (default: the default folder) if one runs there; for
    /// `rollup-devkit postgres-stop`. Returns whether a server was stopped.
    pub fn stop_dir(data_dir: Option<PathBuf>, bin_dir: Option<&Path>) -> Result<bool> {
        let data_dir = match data_dir {
            Some(dir) => absolute(&dir)?,
            None => {
                let candidates = default_candidates();
                let found = candidates
                    .iter()
                    .find(|dir| dir.join("PG_VERSION").is_file())
                    .or(candidates.first())
                    .cloned();
                match found {
                    Some(dir) => dir,
                    None => return Ok(false),
                }
            }
        };
        let Some(major) = existing_cluster(&data_dir)? else {
            tracing::info!(data_dir = %data_dir.display(), "no cluster in this folder; nothing to stop");
            return Ok(false);
        };
        let bins = binaries_for(&data_dir, bin_dir, Some(&major))?;
        let cluster = PrivateCluster {
            socket_dir: data_dir.clone(),
            data_dir,
            bins,
            run_as: cluster_user()?,
            port: 0,
        };
        cluster.stop_blocking()
    }

    fn stop_locked(&self) -> Result<bool> {
        clear_stale_lock_files(&self.data_dir)?;
        if !self.status()? {
            tracing::info!(data_dir = %self.data_dir.display(), "private cluster is not running");
            return Ok(false);
        }
        let started = Instant::now();
        run(command(&self.run_as, &self.bins.pg_ctl)
            .args([
                "stop",
                "-m",
                "fast",
                "-w",
                "-s",
                "-t",
                PG_CTL_WAIT_SECS,
                "-D",
            ])
            .arg(&self.data_dir))?;
        tracing::info!(
            data_dir = %self.data_dir.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "private cluster stopped"
        );
        Ok(true)
    }

    /// `pg_ctl status`: 0 when running, 3 when not, 4 when the folder is not usable.
    fn status(&self) -> Result<bool> {
        let mut cmd = command(&self.run_as, &self.bins.pg_ctl);
        cmd.arg("status").arg("-D").arg(&self.data_dir);
        let line = describe(&cmd);
        let output = cmd
            .output()
            .map_err(|err| PgError::io(format!("cannot run `{line}`"), err))?;
        Ok(output.status.success())
    }

    fn expected_uid(&self) -> u32 {
        self.run_as.as_ref().map_or_else(effective_uid, |u| u.uid)
    }

    fn check_owner(&self) -> Result<()> {
        let meta = fs::metadata(&self.data_dir)
            .map_err(|err| PgError::io(format!("reading {}", self.data_dir.display()), err))?;
        if meta.uid() != self.expected_uid() {
            return Err(PgError::WrongOwner {
                data_dir: self.data_dir.clone(),
                owner: meta.uid(),
                expected: self.expected_uid(),
            });
        }
        Ok(())
    }

    /// Creates the cluster in a missing or empty folder.
    fn init(&self) -> Result<()> {
        let started = Instant::now();
        match fs::DirBuilder::new().mode(0o700).create(&self.data_dir) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                fs::set_permissions(&self.data_dir, fs::Permissions::from_mode(0o700)).map_err(
                    |err| PgError::io(format!("chmod 700 {}", self.data_dir.display()), err),
                )?;
            }
            Err(err) => {
                return Err(PgError::io(
                    format!("creating {}", self.data_dir.display()),
                    err,
                ))
            }
        }
        give_to(&self.run_as, &self.data_dir)?;
        tracing::info!(
            data_dir = %self.data_dir.display(),
            version = %self.bins.major,
            "creating a private Postgres cluster (initdb)"
        );
        let mut cmd = command(&self.run_as, &self.bins.initdb);
        cmd.arg("-D").arg(&self.data_dir).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ]);
        if version_key(&self.bins.major)
            .first()
            .is_some_and(|&m| m >= 14)
        {
            cmd.arg("--no-instructions");
        }
        run(&mut cmd)?;

        let conf = self.data_dir.join("postgresql.conf");
        let mut file = OpenOptions::new()
            .append(true)
            .open(&conf)
            .map_err(|err| PgError::io(format!("opening {}", conf.display()), err))?;
        writeln!(
            file,
            "\n# Added by rollup-devkit: listen address, port, socket folder and tuning.\n\
             include_if_exists = '{CONF_FILE}'"
        )
        .map_err(|err| PgError::io(format!("writing {}", conf.display()), err))?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "initdb finished"
        );
        Ok(())
    }

    /// The unix socket folder for `port`: the data folder when the socket path fits, else a
    /// folder under the temp folder.
    fn socket_dir_for(&self, port: u16) -> Result<PathBuf> {
        let socket = self.data_dir.join(format!(".s.PGSQL.{port}"));
        if socket.as_os_str().len() <= MAX_SOCKET_PATH {
            return Ok(self.data_dir.clone());
        }
        let dir =
            std::env::temp_dir().join(format!("rollup-devkit-pg-{}-{port}", self.expected_uid()));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(PgError::io(format!("creating {}", dir.display()), err)),
        }
        give_to(&self.run_as, &dir)?;
        Ok(dir)
    }

    fn write_conf(&self, port: u16, socket_dir: &Path) -> Result<()> {
        let mut text = String::from(
            "# Written by rollup-devkit on every start of the private cluster; changes here are\n\
             # overwritten. Put your own settings in postgresql.conf above the include line.\n",
        );
        text.push_str("listen_addresses = '127.0.0.1'\n");
        text.push_str(&format!("port = {port}\n"));
        text.push_str(&format!(
            "unix_socket_directories = {}\n",
            conf_quote(&socket_dir.to_string_lossy())
        ));
        for (key, value) in SETTINGS {
            text.push_str(&format!("{key} = {value}\n"));
        }
        let path = self.data_dir.join(CONF_FILE);
        fs::write(&path, text)
            .map_err(|err| PgError::io(format!("writing {}", path.display()), err))?;
        give_to(&self.run_as, &path)
    }

    /// Starts the stopped server on its previous port if that is free, else on a new free port;
    /// retries with another port when the chosen one gets taken before the server binds it.
    fn start(&mut self) -> Result<()> {
        let started = Instant::now();
        let log = self.log_file();
        let mut last_reason = String::new();
        for attempt in 0..START_ATTEMPTS {
            let port = match previous_port(&self.data_dir)
                .filter(|&p| attempt == 0 && ports::is_port_free(p))
            {
                Some(port) => port,
                None => ports::try_free_port()
                    .map_err(|err| PgError::io("finding a free port on 127.0.0.1", err))?,
            };
            let socket_dir = self.socket_dir_for(port)?;
            self.write_conf(port, &socket_dir)?;
            tracing::info!(port, data_dir = %self.data_dir.display(), "starting the private Postgres cluster");
            let result = run(command(&self.run_as, &self.bins.pg_ctl)
                .args([
                    "start",
                    "-w",
                    "-s",
                    "-t",
                    PG_CTL_WAIT_SECS,
                    "-o",
                    "-c fsync=on",
                    "-D",
                ])
                .arg(&self.data_dir)
                .arg("-l")
                .arg(&log));
            match result {
                Ok(_) => {
                    self.port = port;
                    self.socket_dir = socket_dir;
                    tracing::info!(
                        port,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "private cluster started"
                    );
                    return Ok(());
                }
                Err(err) => {
                    last_reason = err.to_string();
                    let tail = log_tail(&log, 20);
                    if tail.contains("Address already in use") && attempt + 1 < START_ATTEMPTS {
                        tracing::warn!(
                            port,
                            "port taken before the server bound it; trying another"
                        );
                        continue;
                    }
                    break;
                }
            }
        }
        Err(PgError::StartFailed {
            data_dir: self.data_dir.clone(),
            reason: last_reason,
            log_tail: log_tail(&log, 20),
            log,
        })
    }
}

/// [`locate_binaries`] for the cluster in `data_dir`, naming that folder in a version mismatch.
fn binaries_for(
    data_dir: &Path,
    bin_dir: Option<&Path>,
    major: Option<&str>,
) -> Result<PgBinaries> {
    locate_binaries(bin_dir, major).map_err(|err| match err {
        PgError::VersionMismatch {
            data_version,
            bin_version,
            bin_dir,
            ..
        } => PgError::VersionMismatch {
            data_dir: data_dir.to_path_buf(),
            data_version,
            bin_version,
            bin_dir,
        },
        other => other,
    })
}

/// The default data folder for this run: the project's when the cluster user can reach it, else
/// the temporary one.
fn choose_default(run_as: &Option<RunAs>) -> Result<PathBuf> {
    let candidates = default_candidates();
    let mut last_err = None;
    for dir in candidates {
        match check_reachable(run_as, &nearest_existing(&dir)) {
            Ok(()) => return Ok(dir),
            Err(err) => {
                tracing::info!(data_dir = %dir.display(), "the postgres user cannot reach this folder; trying the next");
                last_err = Some(err);
            }
        }
    }
    Err(last_err.unwrap_or(PgError::NotAccessible {
        path: default_data_dir(),
    }))
}

#[cfg(test)]
mod tests;
