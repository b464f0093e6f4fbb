//! `impl Rollup for RollupService`: the gRPC methods, each a thin layer over [`super::Inner`]
//! (submissions: `submit.rs`; ticks: `crate::ticks`), and the `WatchReceipts` cursor.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use rollup_proto::v1 as pb;
use rollup_proto::v1::rollup_server::Rollup;
use state::account::{AccountIndex, Amount};
use tokio::sync::{oneshot, watch};
use tonic::{Request, Response, Status};

use crate::unsealed::UnsealedActivity;
use crate::writer::{unix_now, Command};
use rollup_storage::Store;

use super::submit::{limit_status, limited_status, Enqueued, VERIFY_GROUP};
use super::{internal, row_receipt, with_reason, Inner, RollupService};

/// Ticks of one `SendTicks` call checked together at most (what has arrived, up to this).
const TICK_GROUP: usize = 256;

impl Inner {
    /// Records that this database's deposits come from the faucet (once per process).
    async fn record_faucet_source(&self) -> Result<(), Status> {
        use std::sync::atomic::Ordering;
        if self.faucet_recorded.load(Ordering::Acquire) {
            return Ok(());
        }
        let stored = self
            .store
            .meta()
            .init(crate::node::DEPOSIT_SOURCE, "faucet")
            .await
            .map_err(|e| Status::unavailable(format!("UNAVAILABLE: {e}")))?;
        if stored != "faucet" {
            return Err(Status::failed_precondition(
                "FAUCET_DISABLED: this database credits L1 deposits",
            ));
        }
        self.faucet_recorded.store(true, Ordering::Release);
        Ok(())
    }
}

type ReceiptStream = Pin<Box<dyn Stream<Item = Result<pb::Receipt, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Rollup for RollupService {
    type PaymentStreamStream = ReceiptStream;
    type WatchReceiptsStream = ReceiptStream;
    type SendTicksStream = Pin<Box<dyn Stream<Item = Result<pb::TickAck, Status>> + Send>>;
    type WatchTicksStream = Pin<Box<dyn Stream<Item = Result<pb::Tick, Status>> + Send>>;

    async fn send_ticks(
        &self,
        request: Request<tonic::Streaming<pb::Tick>>,
    ) -> Result<Response<Self::SendTicksStream>, Status> {
        let relay = self.inner.relay()?.clone();
        let rpc = self
            .inner
            .limits
            .enter_rpc(request.remote_addr())
            .map_err(limited_status)?;
        let stop = self.inner.stopped();
        // In order, one acknowledgement per tick; a malformed frame ends the stream with the
        // decoder's status (after the acknowledgements of the ticks before it). Whatever has
        // arrived is checked as one group and its acknowledgements leave together, so a busy
        // call costs one wake-up per group rather than per tick.
        let out = request
            .into_inner()
            .take_until(stop)
            .ready_chunks(TICK_GROUP)
            .then(move |items| {
                let relay = relay.clone();
                async move {
                    // The relay's own share of a tick's acknowledgement: from the group's
                    // arrival to its acknowledgements (what gRPC and the network add is not
                    // in it).
                    let started = std::time::Instant::now();
                    let mut acks = Vec::with_capacity(items.len());
                    for item in items {
                        let t = match item {
                            Ok(t) => t,
                            Err(status) => {
                                acks.push(Err(status));
                                break;
                            }
                        };
                        let verdict = relay.relay(&t).await;
                        acks.push(Ok(pb::TickAck {
                            payer: t.payer,
                            slot: t.slot,
                            k: t.k,
                            accepted: verdict.is_ok(),
                            reason: verdict
                                .err()
                                .map(|e| e.code().to_string())
                                .unwrap_or_default(),
                        }));
                    }
                    metrics::histogram!("rollup_tick_group_seconds")
                        .record(started.elapsed().as_secs_f64());
                    metrics::histogram!("rollup_tick_group_size").record(acks.len() as f64);
                    futures::stream::iter(acks)
                }
            })
            .flatten()
            .map(move |r| {
                let _in_flight = &rpc;
                r
            });
        Ok(Response::new(Box::pin(out)))
    }

    async fn watch_ticks(
        &self,
        request: Request<pb::WatchTicksRequest>,
    ) -> Result<Response<Self::WatchTicksStream>, Status> {
        let relay = self.inner.relay()?;
        let rpc = self
            .inner
            .limits
            .enter_rpc(request.remote_addr())
            .map_err(limited_status)?;
        let rx = relay.watch(AccountIndex(request.into_inner().payee));
        let stop = self.inner.stopped();
        // A watcher that lags skips what it missed (only the latest tick settles).
        let out = tokio_stream::wrappers::BroadcastStream::new(rx)
            .filter_map(|r| async move { r.ok().map(Ok) })
            .take_until(stop)
            .map(move |r| {
                let _in_flight = &rpc;
                r
            });
        Ok(Response::new(Box::pin(out)))
    }

    async fn get_stream(
        &self,
        request: Request<pb::GetStreamRequest>,
    ) -> Result<Response<pb::StreamInfo>, Status> {
        let relay = self.inner.relay()?;
        let _rpc = self
            .inner
            .limits
            .enter_rpc(request.remote_addr())
            .map_err(limited_status)?;
        let pb::GetStreamRequest { payer, slot } = request.into_inner();
        let slot = u16::try_from(slot).map_err(|_| {
            with_reason(
                Status::invalid_argument(format!("OUT_OF_RANGE: slot {slot} is above 65535")),
                "OUT_OF_RANGE",
            )
        })?;
        let found = relay
            .lookup(AccountIndex(payer), state::stream::StreamSlot(slot))
            .await
            .map_err(|e| with_reason(Status::unavailable(format!("UNAVAILABLE: {e}")), e.code()))?;
        let (stream, relayed) = found.ok_or_else(|| {
            with_reason(
                Status::not_found(format!(
                    "UNKNOWN_STREAM: slot {slot} of account {payer} holds no open stream"
                )),
                "UNKNOWN_STREAM",
            )
        })?;
        Ok(Response::new(pb::StreamInfo {
            payer,
            slot: u32::from(slot),
            opened_at: stream.id.opened_at.get(),
            payee: stream.payee.0,
            price: stream.price.get(),
            max_ticks: stream.max_ticks.get(),
            expiry: stream.expiry.get(),
            settled: stream.settled.get(),
            head: stream.head.to_bytes().to_vec(),
            escrow: stream.escrow().get(),
            relayed,
        }))
    }

    async fn payment_stream(
        &self,
        request: Request<tonic::Streaming<pb::SubmitRequest>>,
    ) -> Result<Response<Self::PaymentStreamStream>, Status> {
        let peer = request.remote_addr();
        // The stream counts as one call in flight for its peer until it ends.
        let rpc = self.inner.limits.enter_rpc(peer).map_err(limited_status)?;
        let inbound = request.into_inner();
        let n = self.inner.cfg.max_in_flight_per_stream.max(1);
        let stop = self.inner.stopped();
        // A malformed frame ends the stream with the decoder's status (INVALID_ARGUMENT,
        // OUT_OF_RANGE for an oversized message); everything decodable gets a receipt.
        let (i1, i2, i3) = (self.inner.clone(), self.inner.clone(), self.inner.clone());
        let chunks = n.div_ceil(VERIFY_GROUP).max(1);
        let out = inbound
            .take_until(stop)
            // Whatever has arrived, up to a group: one verifier job per group (prepare_many),
            // one writer command (enqueue_group, in order: a stream's transactions are applied
            // in the order sent) and one durability wait (finish_group). A decoding error ends
            // the stream after the requests before it.
            .ready_chunks(VERIFY_GROUP)
            .map(move |items| {
                let inner = i1.clone();
                async move {
                    let mut reqs = Vec::with_capacity(items.len());
                    let mut end = None;
                    for item in items {
                        match item {
                            Ok(req) => reqs.push(req),
                            Err(status) => {
                                end = Some(status);
                                break;
                            }
                        }
                    }
                    (inner.prepare_many(reqs, peer).await, end)
                }
            })
            .buffered(chunks)
            .then(move |(prepared, end)| {
                let inner = i2.clone();
                async move { (inner.enqueue_group(prepared).await, end) }
            })
            .map(move |(group, end)| {
                let inner = i3.clone();
                async move {
                    let mut out: Vec<Result<pb::Receipt, Status>> = inner
                        .finish_group(group)
                        .await
                        .into_iter()
                        .map(Ok)
                        .collect();
                    out.extend(end.map(Err));
                    futures::stream::iter(out)
                }
            })
            .buffered(chunks)
            .flatten()
            .map(move |r| {
                let _in_flight = &rpc;
                r
            });
        Ok(Response::new(Box::pin(out)))
    }

    async fn submit(
        &self,
        request: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let peer = request.remote_addr();
        let _rpc = self.inner.limits.enter_rpc(peer).map_err(limited_status)?;
        let req = request.into_inner();
        // Undecodable input is an invalid argument of the call itself; rule violations are
        // answered with a REJECTED receipt carrying the reason code.
        if let Err(e) = self.inner.decode(&req) {
            metrics::counter!("rollup_txs_rejected_total", "reason" => e.code()).increment(1);
            let mut status = Status::invalid_argument(format!("{}: {e}", e.code()));
            if let Ok(v) = e.code().parse() {
                status.metadata_mut().insert("reason-code", v);
            }
            return Err(status);
        }
        let (receipt, limit) = self.inner.process(req, peer).await;
        if let Some(limit) = limit {
            // Counted once, by `limited_receipt`.
            return Err(limit_status(limit));
        }
        match receipt.reason_code.as_str() {
            "UNAVAILABLE" => Err(with_reason(
                Status::unavailable(receipt.message),
                "UNAVAILABLE",
            )),
            _ => Ok(Response::new(receipt)),
        }
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let _rpc = self
            .inner
            .limits
            .enter_rpc(request.remote_addr())
            .map_err(limited_status)?;
        let index = AccountIndex(request.into_inner().index);
        let view = self.inner.account_view(index).await?;
        let acc = &view.account;
        let lane_nonces = if self.inner.cfg.lanes {
            state::lanes::Lane::all()
                .skip(1)
                .map(|l| view.lanes.next(l, acc.nonce).get())
                .collect()
        } else {
            Vec::new()
        };
        let now = crate::writer::now_timestamp();
        Ok(Response::new(pb::Account {
            index: index.0,
            public_key: acc.pubkey.to_bytes().to_vec(),
            balance: acc.balance.get(),
            nonce: acc.nonce.get(),
            lane_nonces,
            passport: view
                .passport
                .as_ref()
                .map(|p| rollup_proto::convert::passport_message(index, p, now)),
            agents: view.agents.iter().map(|a| a.0).collect(),
            shares: view.shares.as_ref().map_or_else(Vec::new, |s| {
                s.parts()
                    .iter()
                    .map(|&(payee, bps)| pb::Share {
                        payee: payee.0,
                        bps: u32::from(bps),
                    })
                    .collect()
            }),
        }))
    }

    async fn get_passport(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::Passport>, Status> {
        let _rpc = self
            .inner
            .limits
            .enter_rpc(request.remote_addr())
            .map_err(limited_status)?;
        let index = AccountIndex(request.into_inner().index);
        let view = self.inner.account_view(index).await?;
        let passport = view.passport.as_ref().ok_or_else(|| {
            with_reason(
                Status::not_found(format!("NOT_AN_AGENT: account {index} is not an agent")),
                "NOT_AN_AGENT",
            )
        })?;
        let now = crate::writer::now_timestamp();
        Ok(Response::new(rollup_proto::convert::passport_message(
            index, passport, now,
        )))
    }

    async fn get_receipt(
        &self,
        request: Request<pb::GetReceiptRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let _rpc = self
            .inner
            .limits
            .enter_rpc(request.remote_addr())
            .map_err(limited_status)?;
        let id: [u8; 32] = request
            .into_inner()
            .tx_id
            .as_slice()
            .try_into()
            .map_err(|_| Status::invalid_argument("MALFORMED: tx_id must be 32 bytes"))?;
        let row = self.inner.store.log().get_tx(&id).await.map_err(internal)?;
        let row = row.ok_or_else(|| {
            Status::not_found("UNKNOWN_TRANSACTION: no accepted transaction has this id")
        })?;
        Ok(Response::new(row_receipt(&row)))
    }

    async fn watch_receipts(
        &self,
        request: Request<pb::WatchReceiptsRequest>,
    ) -> Result<Response<Self::WatchReceiptsStream>, Status> {
        let rpc = self
            .inner
            .limits
            .enter_rpc(request.remote_addr())
            .map_err(limited_status)?;
        let req = request.into_inner();
        let inner = self.inner.clone();
        let start = req
            .from_seq
            .unwrap_or_else(|| *inner.writer.durable.borrow());
        // Subscribe before the first query (receipt_watch.rs): a commit that lands in between
        // wakes the stream, one that landed before is in the query's answer.
        let wake = inner.wakeups.subscribe(req.account);
        let stream = receipt_stream(
            inner.store.clone(),
            inner.unsealed.clone(),
            req.account,
            start,
            wake,
            inner.shutdown.clone(),
        )
        .map(move |r| {
            let _in_flight = &rpc;
            r
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::Status>, Status> {
        let head = self.inner.writer.head();
        Ok(Response::new(pb::Status {
            chain_id: self.inner.domain.chain_id,
            rollup_address: self.inner.domain.rollup.to_vec(),
            head_block: head.block,
            head_state_root: head.root.to_bytes().to_vec(),
            accepted_txs: head.accepted,
            num_accounts: head.num_accounts,
            devnet: self.inner.cfg.devnet,
            next_deposit_seq: head.next_deposit_seq,
            now: unix_now(),
            registration_work_bits: self.inner.limits.registration_work_bits,
        }))
    }

    async fn faucet(
        &self,
        request: Request<pb::FaucetRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        if !self.inner.cfg.devnet {
            return Err(Status::permission_denied(
                "FAUCET_DISABLED: the faucet only runs on a --devnet node",
            ));
        }
        if self.inner.cfg.l1_deposits {
            return Err(Status::failed_precondition(
                "FAUCET_DISABLED: this node credits L1 deposits (money enters through the L1 \
                 Rollup contract: `Rollup.deposit`); the faucet is off",
            ));
        }
        let req = request.into_inner();
        if req.amount == 0 || req.amount > self.inner.cfg.faucet_max {
            return Err(Status::invalid_argument(format!(
                "VALUE_OUT_OF_RANGE: faucet amount must be in 1..={}",
                self.inner.cfg.faucet_max
            )));
        }
        let amount = Amount::new(req.amount)
            .ok_or_else(|| Status::invalid_argument("VALUE_OUT_OF_RANGE"))?;
        self.inner.record_faucet_source().await?;
        let (reply, rx) = oneshot::channel();
        self.inner
            .writer
            .enqueue(
                Command::Faucet {
                    to: AccountIndex(req.account),
                    amount,
                    reply,
                },
                self.inner.cfg.enqueue_patience,
            )
            .await
            .map_err(|e| Status::resource_exhausted(e.to_string()))?;
        let (receipt, _) = self
            .inner
            .finish(Enqueued::Waiting(rx, [0u8; 32], Instant::now()))
            .await;
        Ok(Response::new(receipt))
    }
}

/// Streams durable receipts touching `account` with seq > `after`: one query at start, then
/// one per wake-up, and a wake-up only comes when a durable commit touched the account. Ends at
/// shutdown or on a database error (with its status).
fn receipt_stream(
    store: Store,
    unsealed: Arc<UnsealedActivity>,
    account: u32,
    after: u64,
    wake: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
) -> impl Stream<Item = Result<pb::Receipt, Status>> + Send + 'static {
    struct Cursor {
        store: Store,
        unsealed: Arc<UnsealedActivity>,
        after: u64,
        buf: std::collections::VecDeque<pb::Receipt>,
        wake: watch::Receiver<u64>,
        shutdown: watch::Receiver<bool>,
        /// Query before waiting (true at start and after a full page).
        query_now: bool,
    }
    const PAGE: i64 = 1000;
    let cursor = Cursor {
        store,
        unsealed,
        after,
        buf: std::collections::VecDeque::new(),
        wake,
        shutdown,
        query_now: true,
    };
    futures::stream::unfold(Some(cursor), move |c| async move {
        let mut c = c?;
        loop {
            if let Some(r) = c.buf.pop_front() {
                return Some((Ok(r), Some(c)));
            }
            if !c.query_now {
                tokio::select! {
                    changed = c.wake.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                    _ = c.shutdown.wait_for(|s| *s) => return None,
                }
            }
            metrics::counter!("rollup_watch_queries_total").increment(1);
            // The open blocks' part first (unsealed.rs: what makes the read gap-free).
            let unsealed = c.unsealed.after(account, c.after, PAGE as usize);
            match c
                .store
                .log()
                .txs_for_account(account, c.after, PAGE, &unsealed)
                .await
            {
                Ok(rows) => {
                    c.query_now = rows.len() as i64 == PAGE;
                    if let Some(last) = rows.last() {
                        c.after = last.seq;
                    }
                    c.buf.extend(rows.iter().map(row_receipt));
                }
                Err(e) => return Some((Err(internal(e)), None)),
            }
        }
    })
}
