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

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{PgError, Result};
use crate::ports;

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

// ---------------------------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------------------------

/// The server programs in use.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    /// Folder holding them.
    pub bin_dir: PathBuf,
    pub initdb: PathBuf,
    pub pg_ctl: PathBuf,
    /// Major version as `PG_VERSION` spells it (`15`, `9.6`).
    pub major: String,
}

/// Finds `initdb` and `pg_ctl`: in `bin_dir` when given, else on PATH, else under
/// `/usr/lib/postgresql/*/bin`, `/usr/pgsql-*/bin` and `/usr/local/pgsql/bin` (newest first).
/// With `major`, only programs of that major version qualify (to run an existing data folder).
pub fn locate_binaries(bin_dir: Option<&Path>, major: Option<&str>) -> Result<PgBinaries> {
    let (candidates, searched) = match bin_dir {
        Some(dir) => (
            vec![dir.to_path_buf()],
            format!("in {} (ROLLUP_PG_BIN_DIR / --bin-dir)", dir.display()),
        ),
        None => {
            let mut dirs = path_candidates(std::env::var_os("PATH"));
            let well_known = well_known_dirs();
            dirs.extend(well_known.iter().cloned());
            (
                dirs,
                ", under /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin or /usr/local/pgsql/bin"
                    .into(),
            )
        }
    };
    pick_binaries(candidates, major, &searched)
}

/// Chooses among candidate folders (in order of preference).
fn pick_binaries(
    candidates: Vec<PathBuf>,
    major: Option<&str>,
    searched: &str,
) -> Result<PgBinaries> {
    let mut seen = Vec::new();
    let mut found_other: Option<PgBinaries> = None;
    for dir in candidates {
        let dir = fs::canonicalize(&dir).unwrap_or(dir);
        if seen.contains(&dir) {
            continue;
        }
        seen.push(dir.clone());
        let (initdb, pg_ctl) = (dir.join("initdb"), dir.join("pg_ctl"));
        if !(is_executable(&initdb) && is_executable(&pg_ctl)) {
            continue;
        }
        let version = match major_version(&pg_ctl) {
            Ok(v) => v,
            Err(err) => {
                tracing::debug!(dir = %dir.display(), error = %err, "skipping unusable pg_ctl");
                continue;
            }
        };
        let bins = PgBinaries {
            bin_dir: dir,
            initdb,
            pg_ctl,
            major: version,
        };
        match major {
            Some(want) if want != bins.major => {
                found_other.get_or_insert(bins);
            }
            _ => return Ok(bins),
        }
    }
    match (major, found_other) {
        (Some(want), Some(other)) => Err(PgError::VersionMismatch {
            data_dir: PathBuf::new(),
            data_version: want.to_owned(),
            bin_version: other.major,
            bin_dir: other.bin_dir,
        }),
        _ => Err(PgError::BinariesNotFound {
            searched: searched.to_owned(),
        }),
    }
}

/// Folders on PATH holding `initdb`, resolved through symlinks (so `/usr/local/bin/initdb ->
/// /usr/lib/postgresql/15/bin/initdb` yields the real folder, where `pg_ctl` and `postgres` live).
fn path_candidates(path: Option<OsString>) -> Vec<PathBuf> {
    let Some(path) = path else {
        return Vec::new();
    };
    std::env::split_paths(&path)
        .filter_map(|dir| {
            let initdb = dir.join("initdb");
            if !is_executable(&initdb) {
                return None;
            }
            let real = fs::canonicalize(&initdb).ok()?;
            real.parent().map(Path::to_path_buf)
        })
        .collect()
}

/// `/usr/lib/postgresql/<v>/bin` (Debian), `/usr/pgsql-<v>/bin` (PGDG RPMs), newest first, then
/// `/usr/local/pgsql/bin` (source installs).
fn well_known_dirs() -> Vec<PathBuf> {
    let mut versioned: Vec<(Vec<u32>, PathBuf)> = Vec::new();
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            versioned.push((version_key(&name), entry.path().join("bin")));
        }
    }
    if let Ok(entries) = fs::read_dir("/usr") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(v) = name.strip_prefix("pgsql-") {
                versioned.push((version_key(v), entry.path().join("bin")));
            }
        }
    }
    versioned.sort_by(|a, b| b.0.cmp(&a.0));
    let mut dirs: Vec<PathBuf> = versioned.into_iter().map(|(_, dir)| dir).collect();
    dirs.push(PathBuf::from("/usr/local/pgsql/bin"));
    dirs
}

fn version_key(v: &str) -> Vec<u32> {
    v.split('.').map(|part| part.parse().unwrap_or(0)).collect()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Major version from `pg_ctl --version` ("pg_ctl (PostgreSQL) 15.14 (Debian ...)" -> "15";
/// "9.6.24" -> "9.6"), spelled as in a data folder's `PG_VERSION`.
fn major_version(pg_ctl: &Path) -> Result<String> {
    // --version is answered before pg_ctl's root check, so no runuser here.
    let output = run(Command::new(pg_ctl).arg("--version"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_major(&text).ok_or_else(|| PgError::Command {
        command: format!("{} --version", pg_ctl.display()),
        status: "unrecognised output".into(),
        output: format!(":\n{text}"),
    })
}

fn parse_major(version_output: &str) -> Option<String> {
    let after = version_output
        .split(')')
        .nth(1)?
        .split_whitespace()
        .next()?;
    let mut parts = after.split(|c: char| !c.is_ascii_digit());
    let first: u32 = parts.next()?.parse().ok()?;
    if first >= 10 {
        Some(first.to_string())
    } else {
        let second: u32 = parts.next()?.parse().ok()?;
        Some(format!("{first}.{second}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Running commands, possibly as the postgres system user
// ---------------------------------------------------------------------------------------------

/// The system user the cluster runs as, when it is not us.
#[derive(Debug, Clone)]
struct RunAs {
    user: String,
    uid: u32,
    gid: u32,
}

#[allow(unsafe_code)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// `Some(postgres)` when we are root (initdb and pg_ctl refuse root), else `None`.
fn cluster_user() -> Result<Option<RunAs>> {
    if effective_uid() != 0 {
        return Ok(None);
    }
    let id = |flag: &str| -> Result<u32> {
        let output = Command::new("id")
            .args([flag, SYSTEM_USER])
            .stdin(Stdio::null())
            .output()
            .map_err(|err| PgError::io("running `id` to look up the postgres user", err))?;
        if !output.status.success() {
            return Err(PgError::NoPostgresUser);
        }
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| PgError::NoPostgresUser)
    };
    Ok(Some(RunAs {
        user: SYSTEM_USER.to_owned(),
        uid: id("-u")?,
        gid: id("-g")?,
    }))
}

/// `runuser` (util-linux): on PATH, else in the sbin folders, which a non-login PATH may lack.
fn runuser() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("runuser"))
            .find(|p| is_executable(p))
    });
    on_path
        .or_else(|| {
            ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
                .iter()
                .map(PathBuf::from)
                .find(|p| is_executable(p))
        })
        .unwrap_or_else(|| PathBuf::from("runuser"))
}

/// A command for `program`, run as `run_as` when given, from `/` (the server programs fail when
/// they cannot read the current folder, e.g. /root as `postgres`), without our stdin.
fn command(run_as: &Option<RunAs>, program: &Path) -> Command {
    let mut cmd = match run_as {
        Some(user) => {
            let mut cmd = Command::new(runuser());
            cmd.args(["-u", &user.user, "--"]).arg(program);
            cmd
        }
        None => Command::new(program),
    };
    cmd.current_dir("/").stdin(Stdio::null());
    cmd
}

fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Runs to completion; a failure carries the command line and its output.
fn run(cmd: &mut Command) -> Result<Output> {
    let line = describe(cmd);
    tracing::debug!(command = %line, "running");
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|err| PgError::io(format!("cannot run `{line}`"), err))?;
    if output.status.success() {
        return Ok(output);
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let text = text.trim();
    Err(PgError::Command {
        command: line,
        status: output.status.to_string(),
        output: if text.is_empty() {
            String::new()
        } else {
            format!(":\n{text}")
        },
    })
}

/// Makes `path` belong to the cluster user (a no-op when that is us).
fn give_to(run_as: &Option<RunAs>, path: &Path) -> Result<()> {
    if let Some(user) = run_as {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).map_err(|err| {
            PgError::io(format!("chown {} to {}", path.display(), user.user), err)
        })?;
    }
    Ok(())
}

/// Fails with [`PgError::NotAccessible`] when the cluster user cannot search `dir`.
fn check_reachable(run_as: &Option<RunAs>, dir: &Path) -> Result<()> {
    let Some(user) = run_as else {
        return Ok(());
    };
    let status = Command::new(runuser())
        .args(["-u", &user.user, "--", "test", "-x"])
        .arg(dir)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|err| PgError::io("cannot run `runuser` (util-linux)", err))?;
    if status.success() {
        Ok(())
    } else {
        Err(PgError::NotAccessible {
            path: dir.to_path_buf(),
        })
    }
}

/// The closest existing folder at or above `path`.
fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| p.is_dir())
        .unwrap_or_else(|| Path::new("/"))
        .to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// Locking
// ---------------------------------------------------------------------------------------------

/// An exclusive `flock` on a file; released when dropped (the file is closed).
struct ClusterLock {
    _file: File,
}

fn lock_path(data_dir: &Path) -> PathBuf {
    let mut name = data_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| OsString::from("cluster"));
    name.push(".lock");
    data_dir.with_file_name(name)
}

fn lock(path: &Path) -> Result<ClusterLock> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|err| PgError::io(format!("opening lock file {}", path.display()), err))?;
    let start = Instant::now();
    let mut announced = false;
    loop {
        // SAFETY: the descriptor is valid for as long as `file` lives; flock has no other
        // preconditions.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(ClusterLock { _file: file });
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => {}
            _ => return Err(PgError::io(format!("locking {}", path.display()), err)),
        }
        if start.elapsed() > LOCK_TIMEOUT {
            return Err(PgError::LockTimeout {
                path: path.to_path_buf(),
                seconds: LOCK_TIMEOUT.as_secs(),
            });
        }
        if !announced {
            tracing::info!(lock = %path.display(), "waiting for another process to finish starting the cluster");
            announced = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// Data folder
// ---------------------------------------------------------------------------------------------

/// The project's data folder: `<workspace root>/.devnet/postgres`, the workspace root being the
/// nearest folder at or above the current one whose `Cargo.toml` has a `[workspace]` table. Outside
/// a workspace: `<temp>/rollup-devkit-<uid>/postgres`.
pub fn default_data_dir() -> PathBuf {
    let cwd = std::env::current_dir().ok();
    let root = cwd.as_deref().and_then(|cwd| {
        cwd.ancestors()
            .find(|dir| {
                fs::read_to_string(dir.join("Cargo.toml"))
                    .is_ok_and(|text| text.lines().any(|l| l.trim() == "[workspace]"))
            })
            .map(Path::to_path_buf)
    });
    match root {
        Some(root) => root.join(".devnet").join("postgres"),
        None => temp_data_dir(None),
    }
}

/// `<temp>/rollup-devkit-<uid>[-<hash of project>]/postgres`: the fallback when the project folder
/// is not reachable by the postgres user.
fn temp_data_dir(project: Option<&Path>) -> PathBuf {
    let mut name = format!("rollup-devkit-{}", effective_uid());
    if let Some(project) = project {
        // FNV-1a, so two checkouts get two clusters.
        let hash = project
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        name.push_str(&format!("-{:08x}", hash as u32));
    }
    std::env::temp_dir().join(name).join("postgres")
}

/// Default folder candidates: the project's, then a temporary one (used when we are root and the
/// `postgres` user cannot reach the project folder).
fn default_candidates() -> Vec<PathBuf> {
    let primary = default_data_dir();
    let fallback = temp_data_dir(primary.parent().and_then(Path::parent));
    if fallback == primary {
        vec![primary]
    } else {
        vec![primary, fallback]
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .map_err(|err| PgError::io(format!("resolving {}", path.display()), err))
}

/// Creates the missing folders above `data_dir`, searchable by everyone (the `postgres` user must
/// walk through them when we are root).
fn create_parents(data_dir: &Path) -> Result<()> {
    if let Some(parent) = data_dir.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|err| PgError::io(format!("creating {}", parent.display()), err))?;
    }
    Ok(())
}

/// The `PG_VERSION` of an existing cluster, `None` for a missing or empty folder; an error for a
/// folder with other things in it.
fn existing_cluster(data_dir: &Path) -> Result<Option<String>> {
    match fs::read_to_string(data_dir.join("PG_VERSION")) {
        Ok(v) => return Ok(Some(v.trim().to_owned())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(PgError::io(
                format!("reading {}/PG_VERSION", data_dir.display()),
                err,
            ))
        }
    }
    match fs::read_dir(data_dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(PgError::io(format!("reading {}", data_dir.display()), err)),
        Ok(mut entries) => {
            if entries.next().is_none() {
                Ok(None)
            } else {
                Err(PgError::NotACluster {
                    path: data_dir.to_path_buf(),
                })
            }
        }
    }
}

/// Quotes a value for postgresql.conf.
fn conf_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// The port recorded by our previous start, if any.
fn previous_port(data_dir: &Path) -> Option<u16> {
    let text = fs::read_to_string(data_dir.join(CONF_FILE)).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        if key.trim() == "port" {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}

/// Port and socket folder of a running server, from `postmaster.pid` (lines 4 and 5).
fn running_port(data_dir: &Path) -> Result<(u16, PathBuf)> {
    let path = data_dir.join("postmaster.pid");
    let text = fs::read_to_string(&path)
        .map_err(|err| PgError::io(format!("reading {}", path.display()), err))?;
    let lines: Vec<&str> = text.lines().collect();
    let port = lines
        .get(3)
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| {
            PgError::io(
                format!("reading the port from {}", path.display()),
                io::Error::new(io::ErrorKind::InvalidData, "no port on line 4"),
            )
        })?;
    let socket_dir = lines
        .get(4)
        .map(|l| PathBuf::from(l.trim()))
        .unwrap_or_else(|| data_dir.to_path_buf());
    Ok((port, socket_dir))
}

/// Whether process `pid` exists and is not a zombie. Without /proc we cannot tell and say yes
/// (Postgres then makes its own check).
fn process_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

/// Removes the lock files of a server that died without cleaning up (killed, machine crash) when
/// its process is gone or a zombie. Postgres removes them itself when the process is gone, but not
/// for a zombie (an unreaped child in a container without an init process), which `kill(pid, 0)`
/// still reports as alive, so both `pg_ctl status` and the new server would wait on a dead one.
fn clear_stale_lock_files(data_dir: &Path) -> Result<()> {
    let pid_file = data_dir.join("postmaster.pid");
    let Ok(text) = fs::read_to_string(&pid_file) else {
        return Ok(());
    };
    let mut lines = text.lines();
    let Some(pid) = lines
        .next()
        .and_then(|l| l.trim().trim_start_matches('-').parse::<u32>().ok())
    else {
        return Ok(());
    };
    if process_alive(pid) {
        return Ok(());
    }
    tracing::warn!(pid, data_dir = %data_dir.display(), "the server recorded in postmaster.pid is dead; removing its lock files");
    let socket_dir = lines.nth(3).map(|l| PathBuf::from(l.trim()));
    fs::remove_file(&pid_file)
        .map_err(|err| PgError::io(format!("removing {}", pid_file.display()), err))?;
    let Some(socket_dir) = socket_dir.filter(|d| d.is_dir()) else {
        return Ok(());
    };
    let entries = fs::read_dir(&socket_dir)
        .map_err(|err| PgError::io(format!("reading {}", socket_dir.display()), err))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(".s.PGSQL.") && name.ends_with(".lock")) {
            continue;
        }
        let owner = fs::read_to_string(entry.path()).ok().and_then(|t| {
            t.lines()
                .next()
                .map(|l| l.trim().trim_start_matches('-').to_owned())
        });
        if owner.as_deref() == Some(pid.to_string().as_str()) {
            fs::remove_file(entry.path())
                .map_err(|err| PgError::io(format!("removing {}", entry.path().display()), err))?;
        }
    }
    Ok(())
}

fn log_tail(log: &Path, lines: usize) -> String {
    match fs::read_to_string(log) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("(cannot read the log: {err})"),
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

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
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(
            parse_major("pg_ctl (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n").as_deref(),
            Some("15")
        );
        assert_eq!(
            parse_major("pg_ctl (PostgreSQL) 17.2\n").as_deref(),
            Some("17")
        );
        assert_eq!(
            parse_major("pg_ctl (PostgreSQL) 9.6.24\n").as_deref(),
            Some("9.6")
        );
        assert_eq!(
            parse_major("pg_ctl (PostgreSQL) 18beta1\n").as_deref(),
            Some("18")
        );
        assert_eq!(parse_major("garbage"), None);
    }

    #[test]
    fn missing_binaries_say_how_to_install() {
        let err = pick_binaries(
            vec![PathBuf::from("/nonexistent/bin")],
            None,
            "in /nonexistent/bin",
        )
        .expect_err("no binaries there");
        let message = err.to_string();
        assert!(message.contains("apt-get install postgresql"), "{message}");
        assert!(message.contains("DATABASE_URL"), "{message}");
    }

    #[test]
    fn finds_the_machine_binaries() {
        // The development machine and CI have PostgreSQL installed (scripts/ensure-tools.sh).
        let Ok(bins) = locate_binaries(None, None) else {
            eprintln!("PostgreSQL server programs not installed; skipping");
            return;
        };
        assert!(bins.initdb.ends_with("initdb"));
        assert!(bins.pg_ctl.ends_with("pg_ctl"));
        assert!(!bins.major.is_empty());
        let wrong = locate_binaries(None, Some("8.4")).expect_err("no 8.4 here");
        assert!(matches!(wrong, PgError::VersionMismatch { .. }), "{wrong}");
    }

    #[test]
    fn processes_alive_or_not() {
        assert!(process_alive(std::process::id()));
        // A child that exited and was not waited for is a zombie.
        let mut child = Command::new("true").spawn().expect("spawn true");
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(200));
        assert!(!process_alive(pid), "zombie {pid} counted as alive");
        child.wait().expect("reap");
        assert!(!process_alive(pid), "reaped {pid} counted as alive");
    }

    #[test]
    fn stale_lock_files_of_a_dead_server_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new("true").spawn().expect("spawn true");
        let dead = child.id();
        child.wait().expect("reap");
        let data = dir.path();
        let pid_file = format!(
            "{dead}\n{}\n0\n5433\n{}\n127.0.0.1\n",
            data.display(),
            data.display()
        );
        fs::write(data.join("postmaster.pid"), pid_file).expect("write pid file");
        fs::write(data.join(".s.PGSQL.5433.lock"), format!("{dead}\n")).expect("write");
        fs::write(data.join(".s.PGSQL.5434.lock"), "1\n").expect("write");
        clear_stale_lock_files(data).expect("clear");
        assert!(!data.join("postmaster.pid").exists());
        assert!(!data.join(".s.PGSQL.5433.lock").exists());
        assert!(
            data.join(".s.PGSQL.5434.lock").exists(),
            "another server's lock is kept"
        );

        // A live owner keeps its files.
        let me = std::process::id();
        fs::write(data.join("postmaster.pid"), format!("{me}\n")).expect("write");
        clear_stale_lock_files(data).expect("clear");
        assert!(data.join("postmaster.pid").exists());
    }

    #[test]
    fn conf_values_are_quoted() {
        assert_eq!(conf_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(conf_quote("it's"), "'it''s'");
    }

    #[test]
    fn lock_file_sits_next_to_the_folder() {
        assert_eq!(
            lock_path(Path::new("/x/.devnet/postgres")),
            PathBuf::from("/x/.devnet/postgres.lock")
        );
    }

    #[test]
    fn empty_and_foreign_folders() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            existing_cluster(&dir.path().join("missing")).expect("missing"),
            None
        );
        assert_eq!(existing_cluster(dir.path()).expect("empty"), None);
        fs::write(dir.path().join("x"), "x").expect("write");
        assert!(matches!(
            existing_cluster(dir.path()),
            Err(PgError::NotACluster { .. })
        ));
        fs::write(dir.path().join("PG_VERSION"), "15\n").expect("write");
        assert_eq!(
            existing_cluster(dir.path()).expect("cluster").as_deref(),
            Some("15")
        );
    }
}
