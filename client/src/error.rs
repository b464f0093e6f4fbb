//! The SDK's error type.

use state::account::AccountIndex;

use crate::receipt::Receipt;

/// Reason code the node (or the gRPC layer) uses for back-pressure: retry later.
pub const RESOURCE_EXHAUSTED: &str = "RESOURCE_EXHAUSTED";

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a node.
///
/// Causes are chained with [`std::error::Error::source`], so `{:#}` with anyhow (or walking the
/// chain) shows the transport detail behind a connection failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint is not a valid `http://` or `https://` URI.
    #[error("invalid endpoint `{endpoint}`: {reason}")]
    Endpoint { endpoint: String, reason: String },
    /// The node could not be reached.
    #[error("cannot reach the node at {endpoint}")]
    Connect {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// The node (or the transport) answered with a gRPC error status. Boxed: a `Status` is
    /// large and would make every `Result` of the SDK large.
    #[error("the node answered {:?}: {}", .0.code(), .0.message())]
    Rpc(Box<tonic::Status>),
    /// The node decided on the transaction and rejected it. `code` is the stable reason code
    /// (e.g. `BAD_NONCE`, `INSUFFICIENT_BALANCE`); the receipt is the node's full answer.
    #[error("rejected: {code}: {message}")]
    Rejected {
        code: String,
        message: String,
        receipt: Box<Receipt>,
    },
    /// The account does not exist (never registered).
    #[error("account {0} does not exist")]
    UnknownAccount(AccountIndex),
    /// The faucet only runs on a node started with `--devnet`.
    #[error("the faucet is disabled: the node must run with --devnet ({0})")]
    FaucetDisabled(String),
    /// The node sent something the API does not allow (a bug on one side, or a version skew).
    #[error("the node sent an invalid {what}: {detail}")]
    Protocol { what: &'static str, detail: String },
    /// The payment stream was closed (by the node, or because the sender half was dropped).
    #[error("the payment stream is closed")]
    StreamClosed,
}

impl Error {
    /// The machine-readable reason: the rejection's reason code, or `RESOURCE_EXHAUSTED` for
    /// gRPC back-pressure. `None` for transport and protocol errors.
    pub fn reason_code(&self) -> Option<&str> {
        match self {
            Error::Rejected { code, .. } => Some(code),
            Error::Rpc(status) if status.code() == tonic::Code::ResourceExhausted => {
                Some(RESOURCE_EXHAUSTED)
            }
            _ => None,
        }
    }

    /// Whether retrying the same request later can succeed: back-pressure, a node that is
    /// momentarily unavailable, or a call cut off before its answer arrived. Resubmitting a
    /// signed transaction is always safe: the node answers one it already accepted with its
    /// original receipt. A rejection for any other reason is final.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Rpc(status) => matches!(
                status.code(),
                tonic::Code::ResourceExhausted
                    | tonic::Code::Unavailable
                    | tonic::Code::Cancelled
                    | tonic::Code::Aborted
                    | tonic::Code::DeadlineExceeded
            ),
            Error::StreamClosed => true,
            Error::Rejected { code, .. } => code == RESOURCE_EXHAUSTED,
            _ => false,
        }
    }

    pub(crate) fn protocol(what: &'static str, detail: impl Into<String>) -> Self {
        Error::Protocol {
            what,
            detail: detail.into(),
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::Rpc(Box::new(status))
    }
}
