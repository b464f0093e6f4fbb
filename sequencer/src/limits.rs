//! Spam and abuse control (SPEC 11.6; the limits and their answers are in docs/API.md,
//! "Limits").
//!
//! Every limit is checked before the work it protects: connections before a TLS/HTTP2
//! handshake, a peer's rate and its RPCs in flight before a signature is verified, the
//! verification queue before a job is queued on the verifier pool, an account's rate after
//! verification (an unverified claim to be account N must not spend N's allowance). An
//! over-limit request is answered `RESOURCE_EXHAUSTED` with a limit code, never queued.
//!
//! Costs: one mutex-protected hash lookup per check; maps are swept when they double, so they
//! hold only keys active in the last moments.

use std::collections::HashMap;
use std::hash::Hash;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Which limit refused a request: the stable code in the answer's message and `limit` metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `--peer-rate`: transactions per second from one IP address.
    PeerRate,
    /// `--account-rate`: transactions per second signed by one account.
    AccountRate,
    /// `--max-rpcs-per-peer`: calls and streams in flight from one IP address.
    PeerRpcs,
    /// `--verify-queue`: signatures waiting for the verifier pool.
    VerifyQueue,
    /// `--queue-capacity`: the writer queue stayed full for `--enqueue-patience-ms`.
    WriterQueue,
    /// `--registration-work-bits`: a Register without a valid proof of work of this many bits.
    RegistrationWork(u32),
}

impl Limit {
    pub fn code(self) -> &'static str {
        match self {
            Limit::PeerRate => "PEER_RATE_LIMITED",
            Limit::AccountRate => "ACCOUNT_RATE_LIMITED",
            Limit::PeerRpcs => "PEER_RPCS_LIMITED",
            Limit::VerifyQueue => "VERIFY_QUEUE_FULL",
            Limit::WriterQueue => "QUEUE_FULL",
            Limit::RegistrationWork(_) => "REGISTRATION_WORK_REQUIRED",
        }
    }

    pub fn explain(self) -> &'static str {
        match self {
            Limit::PeerRate => "too many transactions from this address; slow down",
            Limit::AccountRate => "too many transactions from this account; slow down",
            Limit::PeerRpcs => "too many calls in flight from this address",
            Limit::VerifyQueue => "the signature verification queue is full; retry shortly",
            Limit::WriterQueue => "the sequencer queue is full; retry shortly",
            Limit::RegistrationWork(_) => {
                "a Register needs a proof of work in SubmitRequest.work_nonce (docs/API.md, \
                 Registration); resubmitting without it is refused again"
            }
        }
    }

    /// The message of the answer: `CODE: explanation`.
    pub fn message(self) -> String {
        match self {
            Limit::RegistrationWork(bits) => {
                format!("{}: {} ({bits} bits)", self.code(), self.explain())
            }
            _ => format!("{}: {}", self.code(), self.explain()),
        }
    }

    pub fn count(self) {
        metrics::counter!("rollup_limited_total", "limit" => self.code()).increment(1);
    }
}

/// Token buckets by key: `rate` per second, at most `burst` at once.
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    state: Mutex<Buckets<K>>,
}

struct Buckets<K> {
    map: HashMap<K, Bucket>,
    sweep_at: usize,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    /// `None` when `rate` is 0 (the limit is off).
    pub fn new(rate: f64, burst: f64) -> Option<Self> {
        (rate > 0.0).then(|| RateLimiter {
            rate,
            burst: burst.max(1.0),
            state: Mutex::new(Buckets {
                map: HashMap::new(),
                sweep_at: 1024,
            }),
        })
    }

    /// Takes one token for `key`; `false` when its bucket is empty.
    pub fn try_take(&self, key: K, now: Instant) -> bool {
        let mut s = lock(&self.state);
        if s.map.len() >= s.sweep_at {
            // A bucket that has refilled is the same as no bucket: dropping it changes nothing.
            let (rate, burst) = (self.rate, self.burst);
            s.map.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
            s.sweep_at = (s.map.len() * 2).max(1024);
        }
        let b = s.map.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * self.rate;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Counts things in flight per peer address (calls, connections), and in total as the gauge
/// `gauge` (when named).
#[derive(Default)]
pub struct PeerCounter {
    counts: Mutex<HashMap<IpAddr, usize>>,
    gauge: Option<&'static str>,
    total: std::sync::atomic::AtomicUsize,
}

impl PeerCounter {
    /// A counter whose total is exported as the gauge `name`.
    pub fn with_gauge(name: &'static str) -> Self {
        PeerCounter {
            gauge: Some(name),
            ..PeerCounter::default()
        }
    }

    fn add(&self, delta: isize) {
        use std::sync::atomic::Ordering;
        let now = if delta > 0 {
            self.total.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.total.fetch_sub(1, Ordering::Relaxed).saturating_sub(1)
        };
        if let Some(g) = self.gauge {
            metrics::gauge!(g).set(now as f64);
        }
    }

    /// One more for `ip` unless it has `max` already (`max == 0`: no limit).
    pub fn acquire(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PeerGuard> {
        let mut c = lock(&self.counts);
        let n = c.entry(ip).or_insert(0);
        if max != 0 && *n >= max {
            if *n == 0 {
                c.remove(&ip);
            }
            return None;
        }
        *n += 1;
        drop(c);
        self.add(1);
        Some(PeerGuard {
            counter: self.clone(),
            ip,
        })
    }

    pub fn get(&self, ip: IpAddr) -> usize {
        lock(&self.counts).get(&ip).copied().unwrap_or(0)
    }
}

/// Releases its peer's count when dropped.
pub struct PeerGuard {
    counter: Arc<PeerCounter>,
    ip: IpAddr,
}

impl Drop for PeerGuard {
    fn drop(&mut self) {
        let mut c = lock(&self.counter.counts);
        if let Some(n) = c.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.ip);
            }
        }
        drop(c);
        self.counter.add(-1);
    }
}

/// What a transaction must pass before and after verification.
pub struct TxLimits {
    pub peer_rate: Option<RateLimiter<IpAddr>>,
    /// Keyed by signer and nonce lane (`service::rate_key`).
    pub account_rate: Option<RateLimiter<u64>>,
    pub rpcs: Arc<PeerCounter>,
    pub max_rpcs_per_peer: usize,
    pub verify_slots: Arc<Semaphore>,
    /// `--registration-work-bits` (0: off).
    pub registration_work_bits: u32,
}

impl TxLimits {
    /// Before anything else (one SHA-256): a Register's proof of work (docs/API.md,
    /// "Registration"). A sequencer admission policy, not a rule of the rollup: the nonce is
    /// neither signed nor logged. Other kinds pass.
    pub fn registration_work(
        &self,
        tx: &state::tx::Transaction,
        domain: &state::tx::Domain,
        work_nonce: u64,
    ) -> Result<(), Limit> {
        let bits = self.registration_work_bits;
        match tx {
            state::tx::Transaction::Register(r)
                if !rollup_proto::work::work_ok(domain, &r.pubkey.to_bytes(), work_nonce, bits) =>
            {
                Err(Limit::RegistrationWork(bits))
            }
            _ => Ok(()),
        }
    }

    /// A call or stream from `peer` starts; the guard ends it.
    pub fn enter_rpc(&self, peer: Option<SocketAddr>) -> Result<Option<PeerGuard>, Limit> {
        match peer {
            Some(p) => match self.rpcs.acquire(p.ip(), self.max_rpcs_per_peer) {
                Some(g) => Ok(Some(g)),
                None => Err(Limit::PeerRpcs),
            },
            None => Ok(None),
        }
    }

    /// Before verification: the peer's rate, then a verification slot.
    pub fn before_verify(&self, peer: Option<SocketAddr>) -> Result<OwnedSemaphorePermit, Limit> {
        if let (Some(l), Some(p)) = (&self.peer_rate, peer) {
            if !l.try_take(p.ip(), Instant::now()) {
                return Err(Limit::PeerRate);
            }
        }
        self.verify_slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Limit::VerifyQueue)
    }

    /// After verification: the signer's rate (unsigned operations have no signer).
    pub fn after_verify(&self, signer: Option<u64>) -> Result<(), Limit> {
        match (&self.account_rate, signer) {
            (Some(l), Some(a)) if !l.try_take(a, Instant::now()) => Err(Limit::AccountRate),
            _ => Ok(()),
        }
    }
}

/// Connection limits of a listener: in total and per peer address.
#[derive(Clone)]
pub struct ConnLimits {
    pub total: Arc<Semaphore>,
    pub per_peer: Arc<PeerCounter>,
    pub max_per_peer: usize,
    /// Metric label: which listener ("grpc", "http").
    pub listener: &'static str,
}

impl ConnLimits {
    pub fn new(max_total: usize, max_per_peer: usize, listener: &'static str) -> Self {
        ConnLimits {
            total: Arc::new(Semaphore::new(max_total.clamp(1, Semaphore::MAX_PERMITS))),
            per_peer: Arc::default(),
            max_per_peer,
            listener,
        }
    }
}

/// Accepted connections within `limits`; a connection over a limit is closed at once (there
/// is no protocol yet to answer it in). Accept errors (e.g. out of file descriptors) are
/// logged and retried after a pause instead of ending the listener.
pub fn limited_incoming(
    listener: TcpListener,
    limits: ConnLimits,
) -> impl Stream<Item = io::Result<LimitedStream>> + Send + 'static {
    futures::stream::unfold((listener, limits), |(listener, limits)| async move {
        loop {
            match listener.accept().await {
                Ok((stream, addr)) => {
                    let Ok(permit) = limits.total.clone().try_acquire_owned() else {
                        refuse(limits.listener, "total");
                        continue;
                    };
                    let Some(peer) = limits.per_peer.acquire(addr.ip(), limits.max_per_peer) else {
                        refuse(limits.listener, "per_peer");
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let conn = LimitedStream {
                        inner: stream,
                        _permit: permit,
                        _peer: peer,
                    };
                    return Some((Ok(conn), (listener, limits)));
                }
                Err(e) => {
                    tracing::warn!(listener = limits.listener, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    })
}

fn refuse(listener: &'static str, which: &'static str) {
    metrics::counter!("rollup_connections_refused_total", "listener" => listener, "limit" => which)
        .increment(1);
}

/// A TCP connection holding its share of the connection limits until it closes.
pub struct LimitedStream {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
    _peer: PeerGuard,
}

impl LimitedStream {
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for LimitedStream {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a single map operation: a poisoned lock is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let l = RateLimiter::new(10.0, 5.0).expect("on");
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(l.try_take(1u32, t0));
        }
        assert!(!l.try_take(1, t0), "burst spent");
        assert!(l.try_take(2, t0), "other keys have their own bucket");
        assert!(
            !l.try_take(1, t0 + Duration::from_millis(50)),
            "half a token"
        );
        assert!(
            l.try_take(1, t0 + Duration::from_millis(100)),
            "one token per 100 ms"
        );
        assert!(RateLimiter::<u32>::new(0.0, 5.0).is_none(), "rate 0 is off");
    }

    #[test]
    fn refilled_buckets_are_swept() {
        let l = RateLimiter::new(1000.0, 1.0).expect("on");
        let t0 = Instant::now();
        // 1,024 keys reach the first sweep point; a second later every bucket has refilled.
        for k in 0..1024u32 {
            l.try_take(k, t0);
        }
        l.try_take(5000, t0 + Duration::from_secs(1));
        assert!(lock(&l.state).map.len() < 10, "swept");
    }

    #[test]
    fn peer_counts_are_bounded_and_released() {
        let c = Arc::new(PeerCounter::default());
        let ip: IpAddr = [127, 0, 0, 1].into();
        let a = c.acquire(ip, 2).expect("1");
        let b = c.acquire(ip, 2).expect("2");
        assert!(c.acquire(ip, 2).is_none());
        drop(a);
        assert!(c.acquire(ip, 2).is_some());
        drop(b);
        assert_eq!(c.get(ip), 0);
    }
}
