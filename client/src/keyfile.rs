//! Key files: an agent's secret key (and, once registered, its account index) as JSON.
//!
//! ```json
//! { "secret_key": "0x…80 hex digits…", "public_key": "0x…80 hex digits…", "account_index": 7 }
//! ```
//!
//! Files are created with mode 0600, never silently overwritten, and replaced atomically (a
//! temporary file in the same folder, then a rename) so a crash never leaves half a key. On
//! load the public key must be the one the secret key derives: a file edited by hand or
//! assembled from two keys is refused rather than signing for the wrong account.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use state::account::AccountIndex;
use state::crypto::schnorr::{PublicKey, SecretKey};

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0} already exists (use --force to overwrite it)")]
    Exists(PathBuf),
    #[error("{path}: not a key file: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: invalid {field}: {reason}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        reason: String,
    },
    #[error("{0}: the public key does not belong to the secret key")]
    Mismatch(PathBuf),
}

/// An agent's key pair and, once registered, its account index.
#[derive(Clone)]
pub struct KeyFile {
    secret: SecretKey,
    public: PublicKey,
    /// The account the key controls, stored by `rollup register`.
    pub account_index: Option<AccountIndex>,
}

/// The JSON layout on disk.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    secret_key: String,
    public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_index: Option<u32>,
}

impl KeyFile {
    /// A fresh key from the operating system's RNG.
    pub fn generate() -> KeyFile {
        KeyFile::from_secret(SecretKey::random(&mut rand_core::OsRng))
    }

    /// The key file of an existing secret key, not yet registered.
    pub fn from_secret(secret: SecretKey) -> KeyFile {
        let public = secret.public_key();
        KeyFile {
            secret,
            public,
            account_index: None,
        }
    }

    pub fn secret_key(&self) -> &SecretKey {
        &self.secret
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Reads and checks a key file. Warns (it does not refuse) when the file is readable by
    /// others, as it was then probably copied around with the wrong permissions.
    pub fn load(path: impl AsRef<Path>) -> Result<KeyFile, KeyFileError> {
        let path = path.as_ref();
        let io_err = |source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        };
        let text = fs::read_to_string(path).map_err(io_err)?;
        if let Ok(meta) = fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "key file has mode {mode:o}: others can read it (chmod 600 it)"
                );
            }
        }
        let stored: Stored = serde_json::from_str(&text).map_err(|source| KeyFileError::Json {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |field, reason: String| KeyFileError::Invalid {
            path: path.to_owned(),
            field,
            reason,
        };
        let secret_bytes = hex::decode(strip_0x(&stored.secret_key))
            .map_err(|e| invalid("secret_key", e.to_string()))?;
        let secret_bytes: [u8; SecretKey::BYTES] =
            secret_bytes.as_slice().try_into().map_err(|_| {
                invalid(
                    "secret_key",
                    format!(
                        "{} bytes, expected {}",
                        secret_bytes.len(),
                        SecretKey::BYTES
                    ),
                )
            })?;
        let secret = SecretKey::from_bytes(&secret_bytes)
            .map_err(|e| invalid("secret_key", e.to_string()))?;
        let public = PublicKey::from_hex(&stored.public_key)
            .map_err(|e| invalid("public_key", e.to_string()))?;
        if secret.public_key() != public {
            return Err(KeyFileError::Mismatch(path.to_owned()));
        }
        Ok(KeyFile {
            secret,
            public,
            account_index: stored.account_index.map(AccountIndex),
        })
    }

    /// Writes a new key file with mode 0600; refuses to replace an existing file unless
    /// `overwrite` (then the old file is replaced atomically, also ending up 0600).
    pub fn save(&self, path: impl AsRef<Path>, overwrite: bool) -> Result<(), KeyFileError> {
        let path = path.as_ref();
        let stored = Stored {
            secret_key: format!("0x{}", hex::encode(self.secret.to_bytes())),
            public_key: format!("0x{}", self.public.to_hex()),
            account_index: self.account_index.map(|i| i.0),
        };
        let mut text =
            serde_json::to_string_pretty(&stored).map_err(|source| KeyFileError::Json {
                path: path.to_owned(),
                source,
            })?;
        text.push('\n');
        crate::private_file::write(path, text.as_bytes(), overwrite).map_err(|source| match source
            .kind()
        {
            io::ErrorKind::AlreadyExists => KeyFileError::Exists(path.to_owned()),
            _ => KeyFileError::Io {
                path: path.to_owned(),
                source,
            },
        })
    }
}

impl std::fmt::Debug for KeyFile {
    /// Never prints the secret key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("public_key", &self.public)
            .field("account_index", &self.account_index)
            .finish_non_exhaustive()
    }
}

fn strip_0x(s: &str) -> &str {
    s.strip_prefix("0x").unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn saves_with_mode_0600_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.json");
        let mut key = KeyFile::generate();
        key.save(&path, false).unwrap();
        assert_eq!(mode(&path), 0o600);
        let loaded = KeyFile::load(&path).unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
        assert_eq!(loaded.secret_key().to_bytes(), key.secret_key().to_bytes());
        assert_eq!(loaded.account_index, None);

        // Storing the index replaces the file and keeps it private.
        key.account_index = Some(AccountIndex(42));
        key.save(&path, true).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            KeyFile::load(&path).unwrap().account_index,
            Some(AccountIndex(42))
        );
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["account_index"], 42);
        assert!(json["secret_key"].as_str().unwrap().starts_with("0x"));
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.json");
        let first = KeyFile::generate();
        first.save(&path, false).unwrap();
        let second = KeyFile::generate();
        assert!(matches!(
            second.save(&path, false),
            Err(KeyFileError::Exists(_))
        ));
        assert_eq!(
            KeyFile::load(&path).unwrap().public_key(),
            first.public_key()
        );

        // --force replaces it, and a file that was world-readable becomes private.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        second.save(&path, true).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            KeyFile::load(&path).unwrap().public_key(),
            second.public_key()
        );
    }

    #[test]
    fn mismatched_public_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.json");
        let a = KeyFile::generate();
        let b = KeyFile::generate();
        let forged = serde_json::json!({
            "secret_key": format!("0x{}", hex::encode(a.secret_key().to_bytes())),
            "public_key": format!("0x{}", b.public_key().to_hex()),
        });
        fs::write(&path, forged.to_string()).unwrap();
        assert!(matches!(
            KeyFile::load(&path),
            Err(KeyFileError::Mismatch(_))
        ));
    }

    #[test]
    fn garbage_is_refused_with_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.json");
        fs::write(&path, "not json").unwrap();
        assert!(matches!(
            KeyFile::load(&path),
            Err(KeyFileError::Json { .. })
        ));

        let a = KeyFile::generate();
        let short = serde_json::json!({
            "secret_key": "0x1234",
            "public_key": format!("0x{}", a.public_key().to_hex()),
        });
        fs::write(&path, short.to_string()).unwrap();
        assert!(matches!(
            KeyFile::load(&path),
            Err(KeyFileError::Invalid {
                field: "secret_key",
                ..
            })
        ));
        assert!(matches!(
            KeyFile::load(dir.path().join("missing.json")),
            Err(KeyFileError::Io { .. })
        ));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = KeyFile::generate();
        let shown = format!("{key:?}");
        assert!(!shown.contains(&hex::encode(key.secret_key().to_bytes())));
    }
}
