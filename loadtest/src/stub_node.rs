//! Test fixture: a toy node speaking rollup.v1 with just the rules the driver depends on
//! (per-account nonces, duplicates answered with their original receipt, in-order receipts),
//! plus scripted trouble: back-pressure on every n-th request, and a first call that breaks
//! after some requests. Signatures are not checked; the real node is tested end to end.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use rollup_client::proto as pb;
use rollup_client::proto::rollup_server::{Rollup, RollupServer};
use rollup_client::proto::submit_request::Tx;
use rollup_client::{Domain, Transaction, TxId};
use tonic::{Request, Response, Status};

/// The signing domain the stub reports.
pub const STUB_DOMAIN: Domain = Domain {
    chain_id: 31337,
    rollup: [1; 20],
};

/// What goes wrong, on purpose.
#[derive(Clone, Copy, Default)]
pub struct Trouble {
    /// Refuse every n-th request (counted over all streams) with RESOURCE_EXHAUSTED.
    pub refuse_every: Option<u64>,
    /// The first PaymentStream call answers this many requests, then applies a few more
    /// without answering and ends with UNAVAILABLE.
    pub break_first_call_after: Option<u64>,
}

#[derive(Default)]
pub struct Ledger {
    /// Next nonce per account.
    pub nonces: HashMap<u32, u64>,
    /// Accepted transfers by id, with their sequence number.
    pub accepted: HashMap<TxId, u64>,
    requests: u64,
    calls: u64,
}

#[derive(Clone)]
struct Stub {
    ledger: Arc<Mutex<Ledger>>,
    trouble: Trouble,
}

/// Starts the stub on a free loopback port; returns its endpoint and ledger.
pub async fn start(trouble: Trouble) -> (String, Arc<Mutex<Ledger>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let endpoint = format!("http://{}", listener.local_addr().expect("local address"));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stub = Stub {
        ledger: ledger.clone(),
        trouble,
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RollupServer::new(stub))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (endpoint, ledger)
}

fn receipt(id: TxId, reason: Option<&str>, seq: u64, duplicate: bool) -> pb::Receipt {
    pb::Receipt {
        tx_id: id.0.to_vec(),
        status: if reason.is_some() {
            pb::TxStatus::Rejected
        } else {
            pb::TxStatus::Accepted
        } as i32,
        reason_code: reason.unwrap_or_default().to_owned(),
        message: String::new(),
        block_number: 1,
        position: 0,
        finality: if reason.is_some() {
            pb::Finality::Unspecified
        } else {
            pb::Finality::Accepted
        } as i32,
        seq,
        account_index: None,
        duplicate,
    }
}

impl Stub {
    fn process(&self, req: pb::SubmitRequest) -> pb::Receipt {
        let Some(Tx::Raw(raw)) = req.tx else {
            return receipt(TxId([0; 32]), Some("MALFORMED"), 0, false);
        };
        let Ok(Transaction::Transfer(t)) = Transaction::decode(&raw) else {
            return receipt(TxId([0; 32]), Some("MALFORMED"), 0, false);
        };
        let id = TxId::from(Transaction::Transfer(t).id(&STUB_DOMAIN));
        let mut ledger = self.ledger.lock().expect("ledger lock");
        ledger.requests += 1;
        if let Some(&seq) = ledger.accepted.get(&id) {
            return receipt(id, None, seq, true);
        }
        if let Some(n) = self.trouble.refuse_every {
            if ledger.requests.checked_rem(n) == Some(0) {
                return receipt(id, Some("RESOURCE_EXHAUSTED"), 0, false);
            }
        }
        let next = ledger.nonces.entry(t.from.0).or_default();
        if *next != t.nonce.get() {
            return receipt(id, Some("BAD_NONCE"), 0, false);
        }
        *next += 1;
        let seq = ledger.accepted.len() as u64 + 1;
        ledger.accepted.insert(id, seq);
        receipt(id, None, seq, false)
    }
}

type Receipts = Pin<Box<dyn Stream<Item = Result<pb::Receipt, Status>> + Send>>;

#[tonic::async_trait]
impl Rollup for Stub {
    type PaymentStreamStream = Receipts;
    type WatchReceiptsStream = Receipts;
    type SendTicksStream = Pin<Box<dyn Stream<Item = Result<pb::TickAck, Status>> + Send>>;
    type WatchTicksStream = Pin<Box<dyn Stream<Item = Result<pb::Tick, Status>> + Send>>;

    async fn send_ticks(
        &self,
        _request: Request<tonic::Streaming<pb::Tick>>,
    ) -> Result<Response<Self::SendTicksStream>, Status> {
        Err(Status::unimplemented("stub"))
    }

    async fn watch_ticks(
        &self,
        _request: Request<pb::WatchTicksRequest>,
    ) -> Result<Response<Self::WatchTicksStream>, Status> {
        Err(Status::unimplemented("stub"))
    }

    async fn get_stream(
        &self,
        _request: Request<pb::GetStreamRequest>,
    ) -> Result<Response<pb::StreamInfo>, Status> {
        Err(Status::unimplemented("stub"))
    }

    async fn get_passport(
        &self,
        _request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::Passport>, Status> {
        Err(Status::unimplemented("stub"))
    }

    async fn payment_stream(
        &self,
        request: Request<tonic::Streaming<pb::SubmitRequest>>,
    ) -> Result<Response<Receipts>, Status> {
        let call = {
            let mut ledger = self.ledger.lock().expect("ledger lock");
            ledger.calls += 1;
            ledger.calls
        };
        let break_after = self.trouble.break_first_call_after.filter(|_| call == 1);
        let stub = self.clone();
        let mut answered = 0u64;
        let out = request
            .into_inner()
            .map(move |item| {
                let req = item?;
                let receipt = stub.process(req);
                answered += 1;
                match break_after {
                    // Applied but never answered: the client must resend and get duplicates.
                    Some(n) if answered > n + 3 => Err(Status::unavailable("stub restarting")),
                    Some(n) if answered > n => Ok(None),
                    _ => Ok(Some(receipt)),
                }
            })
            .scan(false, |ended, item| {
                // End the call right after its first error.
                if *ended {
                    return futures::future::ready(None);
                }
                *ended = item.is_err();
                futures::future::ready(Some(item))
            })
            .filter_map(|item| futures::future::ready(item.transpose()));
        Ok(Response::new(Box::pin(out)))
    }

    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::Status>, Status> {
        Ok(Response::new(pb::Status {
            chain_id: STUB_DOMAIN.chain_id,
            rollup_address: STUB_DOMAIN.rollup.to_vec(),
            devnet: true,
            now: 1_800_000_000,
            ..Default::default()
        }))
    }

    async fn submit(
        &self,
        request: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        Ok(Response::new(self.process(request.into_inner())))
    }

    async fn get_account(
        &self,
        _request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        Err(Status::unimplemented("stub"))
    }

    async fn get_receipt(
        &self,
        _request: Request<pb::GetReceiptRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        Err(Status::unimplemented("stub"))
    }

    async fn watch_receipts(
        &self,
        _request: Request<pb::WatchReceiptsRequest>,
    ) -> Result<Response<Receipts>, Status> {
        Err(Status::unimplemented("stub"))
    }

    async fn faucet(
        &self,
        _request: Request<pb::FaucetRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        Err(Status::unimplemented("stub"))
    }
}
