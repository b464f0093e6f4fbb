//! A payer's stream on disk, so that a process that opened a stream (or the `rollup stream`
//! commands, one process per command) can tick it later:
//!
//! ```json
//! { "payer": 7, "slot": 0, "opened_at": 3, "payee": 9, "price": 5, "max_ticks": 1000,
//!   "seed": "0x…64 hex digits…", "ticked": 42, "tree": false }
//! ```
//!
//! `tree` (absent in files written before tick trees: a chain) says how the open committed to
//! the ticks (SPEC 18.8).
//!
//! The seed makes every tick of the stream, so the file is a secret like a key file: mode
//! 0600, never silently overwritten, replaced atomically. `ticked` is the last tick the relay
//! accepted, as recorded by whoever ticked; the next tick is `ticked + 1`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use state::account::{AccountIndex, Amount, Nonce};
use state::hash::Digest;
use state::stream::{StreamId, StreamSlot};

use super::{PayerStream, StreamTerms};

/// Why a stream file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StreamFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0} already exists (a stream file holds the only copy of a stream's seed)")]
    Exists(PathBuf),
    #[error("{path}: not a stream file: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: invalid {field}")]
    Invalid { path: PathBuf, field: &'static str },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    payer: u32,
    slot: u16,
    opened_at: u64,
    payee: u32,
    price: u64,
    max_ticks: u32,
    seed: Digest,
    ticked: u32,
    #[serde(default)]
    tree: bool,
}

impl PayerStream {
    /// Writes the stream (its id, terms and seed) and `ticked`, the last tick accepted, to
    /// `path` with mode 0600. Refuses to replace an existing file unless `overwrite`.
    pub fn save(&self, path: &Path, ticked: u32, overwrite: bool) -> Result<(), StreamFileError> {
        let stored = Stored {
            payer: self.id.payer.0,
            slot: self.id.slot.0,
            opened_at: self.id.opened_at.get(),
            payee: self.terms.payee.0,
            price: self.terms.price.get(),
            max_ticks: self.terms.max_ticks,
            seed: self.seed,
            ticked,
            tree: self.terms.ticks == super::TickKind::Tree,
        };
        let mut text =
            serde_json::to_string_pretty(&stored).map_err(|source| StreamFileError::Json {
                path: path.to_owned(),
                source,
            })?;
        text.push('\n');
        crate::private_file::write(path, text.as_bytes(), overwrite).map_err(|source| match source
            .kind()
        {
            io::ErrorKind::AlreadyExists => StreamFileError::Exists(path.to_owned()),
            _ => StreamFileError::Io {
                path: path.to_owned(),
                source,
            },
        })
    }

    /// Reads a stream written by [`PayerStream::save`] and rebuilds its chain (`max_ticks`
    /// hashes); returns it with the last tick accepted.
    pub fn load(path: &Path) -> Result<(PayerStream, u32), StreamFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| StreamFileError::Io {
            path: path.to_owned(),
            source,
        })?;
        let s: Stored = serde_json::from_str(&text).map_err(|source| StreamFileError::Json {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |field| StreamFileError::Invalid {
            path: path.to_owned(),
            field,
        };
        let id = StreamId {
            payer: AccountIndex(s.payer),
            slot: StreamSlot(s.slot),
            opened_at: Nonce::new(s.opened_at).ok_or_else(|| invalid("opened_at"))?,
        };
        let price = Amount::new(s.price)
            .filter(|p| p.get() > 0)
            .ok_or_else(|| invalid("price"))?;
        if s.ticked > s.max_ticks {
            return Err(invalid("ticked"));
        }
        let mut terms = StreamTerms::new(AccountIndex(s.payee), price, s.max_ticks, Duration::ZERO);
        if s.tree {
            terms = terms.with_tick_tree();
        }
        let stream = PayerStream::resume(id, terms, s.seed).ok_or_else(|| invalid("max_ticks"))?;
        Ok((stream, s.ticked))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use state::stream::TickChain;

    fn stream() -> PayerStream {
        let id = StreamId {
            payer: AccountIndex(7),
            slot: StreamSlot(3),
            opened_at: Nonce::new(11).unwrap(),
        };
        let terms = StreamTerms::new(
            AccountIndex(9),
            Amount::new(5).unwrap(),
            300,
            Duration::ZERO,
        );
        let seed = Digest::from_bytes(&[7u8; 32]).unwrap();
        PayerStream::resume(id, terms, seed).unwrap()
    }

    #[test]
    fn a_saved_stream_ticks_the_same_chain_after_loading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let mut original = stream();
        original.save(&path, 17, false).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (mut loaded, ticked) = PayerStream::load(&path).unwrap();
        assert_eq!(ticked, 17);
        assert_eq!(loaded.id, original.id);
        assert_eq!(loaded.tick(18), original.tick(18));
        // The chain is the one the seed defines: its anchor is what the open carried.
        let chain = TickChain::new(
            original.id,
            state::stream::TickCount::new(300).unwrap(),
            original.seed(),
        );
        assert_eq!(loaded.anchor(), chain.anchor());
        // Never silently overwritten; replaced on request.
        assert!(matches!(
            original.save(&path, 18, false),
            Err(StreamFileError::Exists(_))
        ));
        original.save(&path, 18, true).unwrap();
        assert_eq!(PayerStream::load(&path).unwrap().1, 18);
    }

    #[test]
    fn a_damaged_stream_file_is_refused_with_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        stream().save(&path, 0, false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for (from, to, field) in [
            ("\"ticked\": 0", "\"ticked\": 301", "ticked"),
            ("\"price\": 5", "\"price\": 0", "price"),
            ("\"max_ticks\": 300", "\"max_ticks\": 0", "max_ticks"),
        ] {
            std::fs::write(&path, text.replace(from, to)).unwrap();
            match PayerStream::load(&path) {
                Err(StreamFileError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {:?}", other.map(|(_, t)| t)),
            }
        }
        std::fs::write(&path, "{}").unwrap();
        assert!(matches!(
            PayerStream::load(&path),
            Err(StreamFileError::Json { .. })
        ));
    }

    #[test]
    fn a_saved_tree_stream_loads_as_a_tree_and_a_file_without_the_field_as_a_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let mut tree = stream();
        tree.terms = tree.terms.with_tick_tree();
        let mut tree = PayerStream::resume(tree.id, tree.terms, tree.seed()).unwrap();
        tree.save(&path, 4, false).unwrap();
        let (mut loaded, _) = PayerStream::load(&path).unwrap();
        let root = state::stream::TickTree::new(
            tree.id,
            state::stream::TickCount::new(300).unwrap(),
            tree.seed(),
        )
        .root();
        assert_eq!(loaded.anchor(), root);
        let t = loaded.tick(5).unwrap();
        assert!(t.tree);
        assert_eq!(t.siblings.len(), 24, "no acknowledged tick: the full path");
        loaded.acknowledged(5);
        let t6 = loaded.tick(6).unwrap();
        assert!(t6.siblings.len() < 24);
        assert_eq!(
            t6,
            tree.tick(6)
                .map(|mut t| {
                    t.siblings.truncate(t6.siblings.len());
                    t
                })
                .unwrap()
        );
        // A file from before tick trees has no `tree`: a chain stream.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace(",\n  \"tree\": true", "")).unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains("tree"));
        let (chain, _) = PayerStream::load(&path).unwrap();
        assert_eq!(chain.anchor(), stream().anchor());
    }
}
