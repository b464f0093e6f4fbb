//! Files that hold secrets (key files, stream seeds): created with mode 0600, never silently
//! overwritten, and replaced atomically (a temporary file in the same folder, then a rename) so
//! a crash never leaves half a secret and an old, wider mode never survives a rewrite.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` to `path` with mode 0600 and syncs it. Without `overwrite`, an existing file
/// is an error of kind [`io::ErrorKind::AlreadyExists`] (the check and the creation are one
/// atomic step); with it, the file is replaced atomically.
pub(crate) fn write(path: &Path, bytes: &[u8], overwrite: bool) -> io::Result<()> {
    if !overwrite {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        return write_synced(file, bytes);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let written = write_synced(file, bytes).and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn write_synced(mut file: fs::File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes).and_then(|()| file.sync_all())
}
