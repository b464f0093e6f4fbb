//! Bidirectional payment streams: many signed transactions out, one receipt back for each, in
//! order, over a single gRPC call.

use rollup_proto::v1 as proto;
use rollup_proto::v1::rollup_client::RollupClient;
use state::tx::Transaction;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::error::{Error, Result};
use crate::receipt::Receipt;
use crate::wire::submit_request;

/// An open `PaymentStream` call.
///
/// The node answers every request with one receipt, in request order, so a caller can match
/// receipts to what it sent with a FIFO queue. Use [`PaymentStream::split`] to send from one
/// task and read receipts in another. Dropping the sender half ends the request side; the node
/// then answers what is in flight and ends the stream, and [`StreamReceiver::next_receipt`]
/// returns `None`.
pub struct PaymentStream {
    sender: StreamSender,
    receiver: StreamReceiver,
}

/// The sending half of a [`PaymentStream`]. Cloneable: several tasks may feed one stream (the
/// order of receipts is then the order in which their sends interleaved).
#[derive(Clone)]
pub struct StreamSender {
    requests: mpsc::Sender<proto::SubmitRequest>,
}

/// The receiving half of a [`PaymentStream`].
pub struct StreamReceiver {
    receipts: tonic::Streaming<proto::Receipt>,
}

/// A reserved slot in the stream's send buffer (see [`StreamSender::reserve`]).
pub struct SendPermit<'a>(mpsc::Permit<'a, proto::SubmitRequest>);

impl PaymentStream {
    /// Starts the call. `buffer` bounds the requests queued locally before gRPC flow control
    /// takes over, so a fast producer waits instead of growing memory.
    pub(crate) async fn open(mut rpc: RollupClient<Channel>, buffer: usize) -> Result<Self> {
        let (requests, outgoing) = mpsc::channel(buffer.max(1));
        let response = rpc.payment_stream(ReceiverStream::new(outgoing)).await?;
        Ok(PaymentStream {
            sender: StreamSender { requests },
            receiver: StreamReceiver {
                receipts: response.into_inner(),
            },
        })
    }

    /// Sends a transaction (structured form).
    pub async fn send(&self, tx: &Transaction) -> Result<()> {
        self.sender.send(tx).await
    }

    /// Sends a prepared request (e.g. the raw form, or one encoded ahead of time).
    pub async fn send_request(&self, request: proto::SubmitRequest) -> Result<()> {
        self.sender.send_request(request).await
    }

    /// The next receipt; `None` once the node ended the stream.
    pub async fn next_receipt(&mut self) -> Result<Option<Receipt>> {
        self.receiver.next_receipt().await
    }

    /// Separate halves, for a producer task and a consumer task.
    pub fn split(self) -> (StreamSender, StreamReceiver) {
        (self.sender, self.receiver)
    }
}

impl StreamSender {
    /// Sends a transaction (structured form); waits while the local buffer is full.
    pub async fn send(&self, tx: &Transaction) -> Result<()> {
        self.send_request(submit_request(tx)).await
    }

    /// Sends a prepared request; waits while the local buffer is full.
    pub async fn send_request(&self, request: proto::SubmitRequest) -> Result<()> {
        self.requests
            .send(request)
            .await
            .map_err(|_| Error::StreamClosed)
    }

    /// Waits for room in the send buffer. Unlike [`StreamSender::send`], this is cancel-safe
    /// (nothing is lost if the future is dropped), so it can be a branch of `tokio::select!`.
    pub async fn reserve(&self) -> Result<SendPermit<'_>> {
        self.requests
            .reserve()
            .await
            .map(SendPermit)
            .map_err(|_| Error::StreamClosed)
    }

    /// Whether the stream's request side is closed (the call ended).
    pub fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }
}

impl SendPermit<'_> {
    /// Sends a transaction (structured form) into the reserved slot.
    pub fn send(self, tx: &Transaction) {
        self.0.send(submit_request(tx));
    }

    /// Sends a prepared request into the reserved slot.
    pub fn send_request(self, request: proto::SubmitRequest) {
        self.0.send(request);
    }
}

impl StreamReceiver {
    /// The next receipt, checked and typed; `None` once the node ended the stream. A gRPC
    /// status that ends the call (e.g. `RESOURCE_EXHAUSTED`) is returned as [`Error::Rpc`].
    /// Cancel-safe.
    pub async fn next_receipt(&mut self) -> Result<Option<Receipt>> {
        match self.next_wire().await? {
            Some(receipt) => Receipt::try_from(receipt).map(Some),
            None => Ok(None),
        }
    }

    /// The next receipt as sent by the node, unchecked. Cancel-safe.
    pub async fn next_wire(&mut self) -> Result<Option<proto::Receipt>> {
        Ok(self.receipts.message().await?)
    }
}
