//! Finding the server programs (`initdb`, `pg_ctl`, `postgres`) and their major version.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::postgres::{PgError, Result};

use super::run_as::run;

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
pub(super) fn pick_binaries(
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
pub(super) fn path_candidates(path: Option<OsString>) -> Vec<PathBuf> {
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
pub(super) fn well_known_dirs() -> Vec<PathBuf> {
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

pub(super) fn version_key(v: &str) -> Vec<u32> {
    v.split('.').map(|part| part.parse().unwrap_or(0)).collect()
}

pub(super) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Major version from `pg_ctl --version` ("pg_ctl (PostgreSQL) 15.14 (Debian ...)" -> "15";
/// "9.6.24" -> "9.6"), spelled as in a data folder's `PG_VERSION`.
pub(super) fn major_version(pg_ctl: &Path) -> Result<String> {
    // --version is answered before pg_ctl's root check, so no runuser here.
    let output = run(Command::new(pg_ctl).arg("--version"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_major(&text).ok_or_else(|| PgError::Command {
        command: format!("{} --version", pg_ctl.display()),
        status: "unrecognised output".into(),
        output: format!(":\n{text}"),
    })
}

pub(super) fn parse_major(version_output: &str) -> Option<String> {
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
