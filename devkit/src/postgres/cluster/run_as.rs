//! Running the server programs, as the `postgres` system user when we are root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::postgres::{PgError, Result};

use super::binaries::is_executable;
use super::SYSTEM_USER;

/// The system user the cluster runs as, when it is not us.
#[derive(Debug, Clone)]
pub(super) struct RunAs {
    pub(super) user: String,
    pub(super) uid: u32,
    pub(super) gid: u32,
}

#[allow(unsafe_code)]
pub(super) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// `Some(postgres)` when we are root (initdb and pg_ctl refuse root), else `None`.
pub(super) fn cluster_user() -> Result<Option<RunAs>> {
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
pub(super) fn runuser() -> PathBuf {
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
pub(super) fn command(run_as: &Option<RunAs>, program: &Path) -> Command {
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

pub(super) fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Runs to completion; a failure carries the command line and its output.
pub(super) fn run(cmd: &mut Command) -> Result<Output> {
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
pub(super) fn give_to(run_as: &Option<RunAs>, path: &Path) -> Result<()> {
    if let Some(user) = run_as {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).map_err(|err| {
            PgError::io(format!("chown {} to {}", path.display(), user.user), err)
        })?;
    }
    Ok(())
}

/// Fails with [`PgError::NotAccessible`] when the cluster user cannot search `dir`.
pub(super) fn check_reachable(run_as: &Option<RunAs>, dir: &Path) -> Result<()> {
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
pub(super) fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| p.is_dir())
        .unwrap_or_else(|| Path::new("/"))
        .to_path_buf()
}
