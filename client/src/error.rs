//! The SDK's error type.

use state::account::AccountIndex;

use crate::receipt::Receipt;

/// Reason code the node (or the gRPC layer) uses for back-pressure: retry later.
pub const RESOURCE_EXHAUSTED: &str = "RESOURCE_EXHAUSTED";

/// The limit code of a Register refused for missing or insufficient proof of work
/// (docs/API.md, "Registration"). Answered `RESOURCE_EXHAUSTED`, but the same request is refused
/// again: it is not retryable.
pub const REGISTRATION_WORK_REQUIRED: &str = "REGISTRATION_WORK_REQUIRED";

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
    /// The payer's stream slot holds no open stream (never opened, or closed).
    #[error("slot {slot} of account {payer} holds no open stream")]
    UnknownStream { payer: AccountIndex, slot: u16 },
    /// The faucet only runs on a `--devnet` node that does not credit real L1 deposits.
    #[error("the faucet is disabled ({0})")]
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
    ///
    /// For a gRPC status, the node's code is read from the `reason-code` metadata or from a
    /// message of the form `CODE: detail`.
    pub fn reason_code(&self) -> Option<&str> {
        match self {
            Error::Rejected { code, .. } => Some(code),
            Error::UnknownStream { .. } => Some("UNKNOWN_STREAM"),
            Error::Rpc(status) => {
                status_reason_code(status)
                    .or((status.code() == tonic::Code::ResourceExhausted)
                        .then_some(RESOURCE_EXHAUSTED))
            }
            _ => None,
        }
    }

    /// Which limit refused the request (docs/API.md, "Limits"): the `limit` metadata of a
    /// `RESOURCE_EXHAUSTED` status, or the code that starts a `RESOURCE_EXHAUSTED` receipt's
    /// message (e.g. `PEER_RATE_LIMITED`, [`REGISTRATION_WORK_REQUIRED`]).
    pub fn limit(&self) -> Option<&str> {
        let message = match self {
            Error::Rpc(status) if status.code() == tonic::Code::ResourceExhausted => {
                if let Some(l) = status.metadata().get("limit").and_then(|v| v.to_str().ok()) {
                    return Some(l);
                }
                status
                    .message()
                    .strip_prefix("RESOURCE_EXHAUSTED: ")
                    .unwrap_or(status.message())
            }
            Error::Rejected { code, message, .. } if code == RESOURCE_EXHAUSTED => message,
            _ => return None,
        };
        let (head, _) = message.split_once(':')?;
        is_code(head).then_some(head)
    }

    /// Whether retrying the same request later can succeed: back-pressure, a node that is
    /// momentarily unavailable, or a call cut off before its answer arrived. Resubmitting a
    /// signed transaction is always safe: the node answers one it already accepted with its
    /// original receipt. A rejection for any other reason is final, and so is a Register
    /// refused for its proof of work ([`REGISTRATION_WORK_REQUIRED`]: the same request is
    /// refused again).
    pub fn is_retryable(&self) -> bool {
        if self.limit() == Some(REGISTRATION_WORK_REQUIRED) {
            return false;
        }
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

/// The node's reason code carried by a status, if any.
fn status_reason_code(status: &tonic::Status) -> Option<&str> {
    if let Some(code) = status
        .metadata()
        .get("reason-code")
        .and_then(|v| v.to_str().ok())
    {
        return Some(code);
    }
    let (head, _) = status.message().split_once(':')?;
    is_code(head).then_some(head)
}

/// Whether `s` looks like a reason or limit code (`UPPER_CASE_1`).
fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::Rpc(Box::new(status))
    }
}

/// An error and its causes on one line, for command-line messages. Transport errors often
/// repeat their source in their own message, so a cause already quoted is skipped.
pub fn error_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let text = e.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        cause = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_read_from_statuses() {
        let err = Error::from(tonic::Status::invalid_argument(
            "VALUE_OUT_OF_RANGE: faucet amount must be in 1..=10",
        ));
        assert_eq!(err.reason_code(), Some("VALUE_OUT_OF_RANGE"));
        assert!(!err.is_retryable());

        let mut status = tonic::Status::invalid_argument("bad");
        status
            .metadata_mut()
            .insert("reason-code", "MALFORMED".parse().unwrap());
        assert_eq!(Error::from(status).reason_code(), Some("MALFORMED"));

        let busy = Error::from(tonic::Status::resource_exhausted("queue full; retry"));
        assert_eq!(busy.reason_code(), Some(RESOURCE_EXHAUSTED));
        assert!(busy.is_retryable());
        assert_eq!(
            Error::from(tonic::Status::internal("oops: no code")).reason_code(),
            None
        );
    }

    #[test]
    fn missing_registration_work_is_not_retryable() {
        // As the node answers (sequencer/src/service.rs, limited_status).
        let mut status = tonic::Status::resource_exhausted(
            "RESOURCE_EXHAUSTED: REGISTRATION_WORK_REQUIRED: a Register needs a proof of work",
        );
        status
            .metadata_mut()
            .insert("reason-code", RESOURCE_EXHAUSTED.parse().unwrap());
        status
            .metadata_mut()
            .insert("limit", REGISTRATION_WORK_REQUIRED.parse().unwrap());
        let err = Error::from(status);
        assert_eq!(err.reason_code(), Some(RESOURCE_EXHAUSTED));
        assert_eq!(err.limit(), Some(REGISTRATION_WORK_REQUIRED));
        assert!(!err.is_retryable());
        // Without the metadata, from the message alone.
        let bare = Error::from(tonic::Status::resource_exhausted(
            "RESOURCE_EXHAUSTED: REGISTRATION_WORK_REQUIRED: a Register needs a proof of work",
        ));
        assert_eq!(bare.limit(), Some(REGISTRATION_WORK_REQUIRED));
        assert!(!bare.is_retryable());
        let rate = Error::from(tonic::Status::resource_exhausted(
            "RESOURCE_EXHAUSTED: PEER_RATE_LIMITED: slow down",
        ));
        assert_eq!(rate.limit(), Some("PEER_RATE_LIMITED"));
        assert!(rate.is_retryable());
    }
}
