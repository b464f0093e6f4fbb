//! A local secp256k1 key (k256): L1 addresses, raw-digest signatures for the stage 0
//! attestation (SPEC 15.4, no EIP-191 prefix) and EIP-155 legacy transactions, so the bridge
//! needs no node-held account and works against any JSON-RPC endpoint.

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_sol_types::SolValue;
use k256::ecdsa::SigningKey;

/// anvil's first dev account (mnemonic `test test ... junk`); publicly known, devnet only.
pub const ANVIL_DEV_KEY_0: &str =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// anvil's third dev account: the devnet's stage 0 attester, a key of its own so that the
/// operator's hot key (account 0) cannot finalize what it commits (SPEC 15.4).
pub const ANVIL_DEV_KEY_2: &str =
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("L1 key must be 32 bytes of hex")]
    BadKey,
    #[error("cannot read key file {path}: {source}")]
    KeyFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "key file {path} is accessible by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyFileMode { path: std::path::PathBuf, mode: u32 },
    #[error("signing failed: {0}")]
    Sign(String),
}

#[derive(Clone)]
pub struct L1Signer {
    key: SigningKey,
    address: Address,
}

impl std::fmt::Debug for L1Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "L1Signer({})", self.address)
    }
}

/// Refuses a secret key file that other users can read (as ssh does): an L1 key moves the
/// bridge's money, an operator key signs for the fee account.
pub fn check_key_file_mode(path: &std::path::Path) -> Result<(), SignerError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|source| SignerError::KeyFile {
                path: path.to_path_buf(),
                source,
            })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(SignerError::KeyFileMode {
                path: path.to_path_buf(),
                mode: mode & 0o777,
            });
        }
    }
    Ok(())
}

impl L1Signer {
    /// The key in file `path` (32 bytes hex), refused if other users can read the file.
    pub fn from_key_file(path: &std::path::Path) -> Result<L1Signer, SignerError> {
        check_key_file_mode(path)?;
        let text = std::fs::read_to_string(path).map_err(|source| SignerError::KeyFile {
            path: path.to_path_buf(),
            source,
        })?;
        L1Signer::from_hex(&text)
    }

    pub fn from_hex(s: &str) -> Result<L1Signer, SignerError> {
        let t = s.trim();
        let bytes =
            hex::decode(t.strip_prefix("0x").unwrap_or(t)).map_err(|_| SignerError::BadKey)?;
        let key = SigningKey::from_slice(&bytes).map_err(|_| SignerError::BadKey)?;
        let point = key.verifying_key().to_encoded_point(false);
        let hash = keccak256(&point.as_bytes()[1..]);
        Ok(L1Signer {
            key,
            address: Address::from_slice(&hash[12..]),
        })
    }

    pub fn address(&self) -> Address {
        self.address
    }

    /// `(r, s, recovery id)` over a 32-byte digest, with low `s`.
    fn sign_digest(&self, digest: B256) -> Result<([u8; 32], [u8; 32], u8), SignerError> {
        let (sig, recid) = self
            .key
            .sign_prehash_recoverable(digest.as_slice())
            .map_err(|e| SignerError::Sign(e.to_string()))?;
        let (sig, recid) = match sig.normalize_s() {
            Some(low) => (low, recid.to_byte() ^ 1),
            None => (sig, recid.to_byte()),
        };
        let bytes = sig.to_bytes();
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&bytes[..32]);
        s.copy_from_slice(&bytes[32..]);
        Ok((r, s, recid))
    }

    /// 65 bytes `r || s || v` with `v` in {27, 28} over the raw digest.
    pub fn sign_raw(&self, digest: B256) -> Result<Bytes, SignerError> {
        let (r, s, v) = self.sign_digest(digest)?;
        let mut out = Vec::with_capacity(65);
        out.extend_from_slice(&r);
        out.extend_from_slice(&s);
        out.push(27 + v);
        Ok(out.into())
    }

    /// The stage 0 attestation of a batch statement (SPEC 15.4), the `proof` of `finalizeBatch`.
    pub fn attest(
        &self,
        chain_id: u64,
        rollup: Address,
        statement: B256,
    ) -> Result<Bytes, SignerError> {
        self.sign_raw(attestation_digest(chain_id, rollup, statement))
    }

    /// Signs an EIP-155 legacy transaction; returns the raw bytes and the transaction hash.
    pub fn sign_legacy(&self, tx: &LegacyTx) -> Result<(Vec<u8>, B256), SignerError> {
        let mut unsigned = tx.fields();
        unsigned.push(rlp_uint(U256::from(tx.chain_id)));
        unsigned.push(rlp_bytes(&[]));
        unsigned.push(rlp_bytes(&[]));
        let digest = keccak256(rlp_list(&unsigned));
        let (r, s, recid) = self.sign_digest(digest)?;
        let v = tx.chain_id * 2 + 35 + u64::from(recid);
        let mut signed = tx.fields();
        signed.push(rlp_uint(U256::from(v)));
        signed.push(rlp_uint(U256::from_be_bytes(r)));
        signed.push(rlp_uint(U256::from_be_bytes(s)));
        let raw = rlp_list(&signed);
        let hash = keccak256(&raw);
        Ok((raw, hash))
    }
}

/// The digest the attester signs (SPEC 15.4).
pub fn attestation_digest(chain_id: u64, rollup: Address, statement: B256) -> B256 {
    keccak256(
        (
            keccak256("rollup.v1.batch-attestation"),
            U256::from(chain_id),
            rollup,
            statement,
        )
            .abi_encode_params(),
    )
}

/// An EIP-155 legacy transaction (accepted by every EVM chain, anvil included).
#[derive(Clone, Debug)]
pub struct LegacyTx {
    pub chain_id: u64,
    pub nonce: u64,
    pub gas_price: u128,
    pub gas: u64,
    pub to: Address,
    pub value: U256,
    pub data: Bytes,
}

impl LegacyTx {
    fn fields(&self) -> Vec<Vec<u8>> {
        vec![
            rlp_uint(U256::from(self.nonce)),
            rlp_uint(U256::from(self.gas_price)),
            rlp_uint(U256::from(self.gas)),
            rlp_bytes(self.to.as_slice()),
            rlp_uint(self.value),
            rlp_bytes(&self.data),
        ]
    }
}

fn rlp_len_prefix(short: u8, len: usize) -> Vec<u8> {
    if len < 56 {
        vec![short + len as u8]
    } else {
        let be = (len as u64).to_be_bytes();
        let skip = be.iter().take_while(|b| **b == 0).count();
        let mut out = vec![short + 55 + (8 - skip) as u8];
        out.extend_from_slice(&be[skip..]);
        out
    }
}

fn rlp_bytes(b: &[u8]) -> Vec<u8> {
    if b.len() == 1 && b[0] < 0x80 {
        return b.to_vec();
    }
    let mut out = rlp_len_prefix(0x80, b.len());
    out.extend_from_slice(b);
    out
}

fn rlp_uint(v: U256) -> Vec<u8> {
    let be = v.to_be_bytes::<32>();
    let skip = be.iter().take_while(|b| **b == 0).count();
    rlp_bytes(&be[skip..])
}

fn rlp_list(items: &[Vec<u8>]) -> Vec<u8> {
    let len = items.iter().map(Vec::len).sum();
    let mut out = rlp_len_prefix(0xc0, len);
    for i in items {
        out.extend_from_slice(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anvil_key_zero_has_the_known_address() {
        let s = L1Signer::from_hex(ANVIL_DEV_KEY_0).unwrap();
        assert_eq!(
            s.address(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse::<Address>()
                .unwrap()
        );
    }

    #[test]
    fn rlp_examples() {
        // From the Ethereum wiki's RLP examples.
        assert_eq!(rlp_bytes(b"dog"), vec![0x83, b'd', b'o', b'g']);
        assert_eq!(rlp_uint(U256::ZERO), vec![0x80]);
        assert_eq!(rlp_uint(U256::from(15)), vec![0x0f]);
        assert_eq!(rlp_uint(U256::from(1024)), vec![0x82, 0x04, 0x00]);
        assert_eq!(rlp_list(&[]), vec![0xc0]);
        let long = vec![b'a'; 56];
        assert_eq!(&rlp_bytes(&long)[..2], &[0xb8, 56]);
    }
}
