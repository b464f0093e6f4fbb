//! The lock file next to a data folder, held while starting or stopping it.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::postgres::{PgError, Result};

use super::LOCK_TIMEOUT;

/// An exclusive `flock` on a file; released when dropped (the file is closed).
pub(super) struct ClusterLock {
    _file: File,
}

pub(super) fn lock_path(data_dir: &Path) -> PathBuf {
    let mut name = data_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| OsString::from("cluster"));
    name.push(".lock");
    data_dir.with_file_name(name)
}

pub(super) fn lock(path: &Path) -> Result<ClusterLock> {
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
