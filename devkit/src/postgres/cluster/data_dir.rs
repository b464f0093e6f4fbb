//! The data folder: where it is, what it holds, whether a server runs in it.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::postgres::{PgError, Result};

use super::run_as::effective_uid;
use super::CONF_FILE;

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
pub(super) fn temp_data_dir(project: Option<&Path>) -> PathBuf {
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
pub(super) fn default_candidates() -> Vec<PathBuf> {
    let primary = default_data_dir();
    let fallback = temp_data_dir(primary.parent().and_then(Path::parent));
    if fallback == primary {
        vec![primary]
    } else {
        vec![primary, fallback]
    }
}

pub(super) fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .map_err(|err| PgError::io(format!("resolving {}", path.display()), err))
}

/// Creates the missing folders above `data_dir`, searchable by everyone (the `postgres` user must
/// walk through them when we are root).
pub(super) fn create_parents(data_dir: &Path) -> Result<()> {
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
pub(super) fn existing_cluster(data_dir: &Path) -> Result<Option<String>> {
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
pub(super) fn conf_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// The port recorded by our previous start, if any.
pub(super) fn previous_port(data_dir: &Path) -> Option<u16> {
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
pub(super) fn running_port(data_dir: &Path) -> Result<(u16, PathBuf)> {
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
pub(super) fn process_alive(pid: u32) -> bool {
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
pub(super) fn clear_stale_lock_files(data_dir: &Path) -> Result<()> {
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

pub(super) fn log_tail(log: &Path, lines: usize) -> String {
    match fs::read_to_string(log) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("(cannot read the log: {err})"),
    }
}
