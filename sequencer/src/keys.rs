//! Registered public keys by account index, readable concurrently by the signature verifiers.
//!
//! Keys never change once registered, so a reader can never see a stale key, only a missing
//! one (an account registered a moment later), which reads as `UNKNOWN_ACCOUNT`.
//!
//! Memory: every key is kept as its 40-byte encoding (a million accounts: 40 MB). Verifying
//! needs the decoded point (200 bytes, one square root of ~8 µs to compute, against ~120 µs
//! for the verification itself), so decoded keys sit in a direct-mapped cache of
//! [`CACHE_SLOTS`] slots indexed by account index: agents that pay often stay decoded, and the
//! cache costs a fixed ~14 MB whatever the number of accounts. Indices are allocated
//! sequentially, so the most recent [`CACHE_SLOTS`] registrations never evict each other.

use std::sync::{Mutex, RwLock};

use state::account::AccountIndex;
use state::crypto::schnorr::{EncodedKey, PublicKey};

/// Slots of the decoded-key cache (a power of two).
pub const CACHE_SLOTS: usize = 1 << 16;

/// One slot of the decoded-key cache: the account it holds, if any, and its key.
type CacheSlot = Mutex<Option<(AccountIndex, PublicKey)>>;

pub struct KeyDirectory {
    encoded: RwLock<Vec<EncodedKey>>,
    decoded: Box<[CacheSlot]>,
}

impl Default for KeyDirectory {
    fn default() -> Self {
        KeyDirectory {
            encoded: RwLock::new(Vec::new()),
            decoded: (0..CACHE_SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }
}

impl KeyDirectory {
    /// The decoded key of `index`, from the cache or decoded now (and cached).
    pub fn get(&self, index: AccountIndex) -> Option<PublicKey> {
        let slot = &self.decoded[index.0 as usize % CACHE_SLOTS];
        if let Ok(cached) = slot.lock() {
            if let Some((i, key)) = *cached {
                if i == index {
                    return Some(key);
                }
            }
        }
        let encoded = self.encoded.read().ok()?.get(index.0 as usize).copied()?;
        // A stored encoding was validated when it was registered, so this does not fail.
        let key = encoded.decode().ok()?;
        if let Ok(mut cached) = slot.lock() {
            *cached = Some((index, key));
        }
        Some(key)
    }

    /// Appends the key of the next account index (start-up: keys of the recovered state).
    pub fn push_encoded(&self, key: EncodedKey) {
        if let Ok(mut k) = self.encoded.write() {
            k.push(key);
        }
    }

    /// Appends a key just registered, decoded already: it goes into the cache too, as a new
    /// account usually pays (or is paid, and then pays) soon after registering.
    pub fn push(&self, key: PublicKey) {
        let index = match self.encoded.write() {
            Ok(mut k) => {
                k.push(key.into());
                AccountIndex((k.len() - 1) as u32)
            }
            Err(_) => return,
        };
        if let Ok(mut cached) = self.decoded[index.0 as usize % CACHE_SLOTS].lock() {
            *cached = Some((index, key));
        }
    }

    pub fn len(&self) -> usize {
        self.encoded.read().map(|k| k.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use state::crypto::schnorr::SecretKey;

    fn keys(n: usize) -> Vec<PublicKey> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        (0..n)
            .map(|_| SecretKey::random(&mut rng).public_key())
            .collect()
    }

    #[test]
    fn answers_the_registered_key_through_cache_collisions() {
        let dir = KeyDirectory::default();
        let ks = keys(3);
        dir.push(ks[0]);
        dir.push_encoded(ks[1].into());
        assert_eq!(dir.get(AccountIndex(0)), Some(ks[0]));
        assert_eq!(dir.get(AccountIndex(1)), Some(ks[1]), "decoded on a miss");
        assert_eq!(dir.get(AccountIndex(2)), None, "not registered yet");
        // Fill up to the index that shares slot 0 with account 0 and make it evict it.
        for _ in 2..CACHE_SLOTS {
            dir.push_encoded(ks[2].into());
        }
        dir.push(ks[1]);
        let colliding = AccountIndex(CACHE_SLOTS as u32);
        assert_eq!(dir.get(colliding), Some(ks[1]));
        assert_eq!(
            dir.get(AccountIndex(0)),
            Some(ks[0]),
            "an evicted key decodes again"
        );
        assert_eq!(dir.get(colliding), Some(ks[1]));
        assert_eq!(dir.len(), CACHE_SLOTS + 1);
    }
}
