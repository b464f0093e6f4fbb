//! The agent SDK: connect to a rollup node, register a key, pay, stream payments and watch
//! receipts. The `rollup` command-line wallet is built on it.
//!
//! ```no_run
//! use rollup_client::{Amount, Client, KeyFile};
//!
//! # async fn demo() -> rollup_client::Result<()> {
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! let key = KeyFile::generate();
//! let me = client.register(key.secret_key(), None).await?.index;
//! let receipt = client
//!     .pay(key.secret_key(), me, 7.into(), Amount::new(100).unwrap(), Amount::ZERO, None)
//!     .await?;
//! println!("{receipt}");
//! # Ok(())
//! # }
//! ```
//!
//! Transactions are signed locally with the domain (`chain_id`, rollup address) the node
//! reports at connection; the secret key never leaves the process. A rejection is an
//! [`Error::Rejected`] carrying the node's stable reason code.

mod agents;
mod client;
mod error;
pub mod keyfile;
mod private_file;
mod receipt;
mod shares;
mod stream;
pub mod ticks;
pub mod wire;
pub mod x402;

pub use agents::{AgentPassport, Delegated};
pub use client::{
    AccountState, ChainStatus, Client, Registered, DEFAULT_ENDPOINT, DEFAULT_VALID_FOR,
};
pub use error::{error_line, Error, Result, REGISTRATION_WORK_REQUIRED, RESOURCE_EXHAUSTED};
pub use keyfile::{KeyFile, KeyFileError};
pub use receipt::{Finality, Outcome, ParseTxIdError, Receipt, TxId};
pub use stream::{PaymentStream, SendPermit, StreamReceiver, StreamSender};
pub use wire::{raw_submit_request, submit_request, transaction_from_request, RequestError};

/// The generated rollup.v1 API, for what the SDK does not wrap.
pub use rollup_proto::v1 as proto;
/// The rule types a wallet handles.
pub use state::account::{AccountIndex, Amount, Nonce, Timestamp};
pub use state::crypto::schnorr::{PublicKey, SecretKey};
pub use state::tx::{Domain, L1Address, Transaction};
