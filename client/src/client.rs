//! [`Client`]: a connection to a node and the operations an agent needs.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{Stream, StreamExt};
use rollup_proto::v1 as proto;
use rollup_proto::v1::rollup_client::RollupClient;
use serde::{Serialize, Serializer};
use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::crypto::schnorr::{PublicKey, SecretKey};
use state::split::Payout;
use state::tx::{
    Domain, L1Address, Transaction, UnsignedRegister, UnsignedSplit, UnsignedTransfer,
    UnsignedWithdraw,
};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

use crate::error::{Error, Result, REGISTRATION_WORK_REQUIRED};
use crate::receipt::{Receipt, TxId};
use crate::stream::PaymentStream;
use crate::wire::submit_request;

/// Where `rollup` and the load generator look for a node unless told otherwise.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:50051";

/// How long a transaction signed by the SDK stays valid unless told otherwise.
pub const DEFAULT_VALID_FOR: Duration = Duration::from_secs(3600);

/// Upper bound on one unary call, including the node's durable commit.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests queued locally per payment stream before the caller waits.
const STREAM_BUFFER: usize = 1024;

/// The chain parameters and head reported by `GetStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainStatus {
    pub chain_id: u64,
    #[serde(serialize_with = "hex0x")]
    pub rollup_address: [u8; 20],
    pub head_block: u64,
    #[serde(serialize_with = "hex0x")]
    pub head_state_root: Vec<u8>,
    pub accepted_txs: u64,
    pub num_accounts: u64,
    /// Whether the node runs with `--devnet` (and so has a faucet).
    pub devnet: bool,
    pub next_deposit_seq: u64,
    /// The node's clock, Unix seconds.
    pub now: u64,
    /// Leading zero bits the proof of work of a registration needs (0: none; docs/API.md,
    /// "Registration"). [`Client::register`] solves it.
    pub registration_work_bits: u32,
}

impl ChainStatus {
    /// The signing domain of this deployment.
    pub fn domain(&self) -> Domain {
        Domain {
            chain_id: self.chain_id,
            rollup: self.rollup_address,
        }
    }
}

impl TryFrom<proto::Status> for ChainStatus {
    type Error = Error;
    fn try_from(s: proto::Status) -> Result<Self> {
        let rollup_address = s.rollup_address.as_slice().try_into().map_err(|_| {
            Error::protocol(
                "status",
                format!(
                    "rollup_address of {} bytes, expected 20",
                    s.rollup_address.len()
                ),
            )
        })?;
        Ok(ChainStatus {
            chain_id: s.chain_id,
            rollup_address,
            head_block: s.head_block,
            head_state_root: s.head_state_root,
            accepted_txs: s.accepted_txs,
            num_accounts: s.num_accounts,
            devnet: s.devnet,
            next_deposit_seq: s.next_deposit_seq,
            now: s.now,
            registration_work_bits: s.registration_work_bits,
        })
    }
}

/// An account as the node sees it, including accepted but not yet proven transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountState {
    pub index: AccountIndex,
    /// `None` if the node did not send a key.
    pub public_key: Option<PublicKey>,
    pub balance: Amount,
    /// The nonce the account's next transaction must carry (lane 0).
    pub nonce: Nonce,
    /// The next nonces of lanes 1 to 7, from a node that accepts lanes (else empty).
    pub lane_nonces: Vec<Nonce>,
    /// The agents this account owns.
    pub agents: Vec<AccountIndex>,
    /// The account's passport, if it is an agent.
    pub passport: Option<crate::agents::AgentPassport>,
    /// Its registered revenue shares (payee, basis points), in payee order; empty if none.
    pub shares: Vec<(AccountIndex, u16)>,
}

impl TryFrom<proto::Account> for AccountState {
    type Error = Error;
    fn try_from(a: proto::Account) -> Result<Self> {
        let public_key = if a.public_key.is_empty() {
            None
        } else {
            Some(
                PublicKey::from_slice(&a.public_key)
                    .map_err(|e| Error::protocol("account", format!("public key: {e}")))?,
            )
        };
        Ok(AccountState {
            index: AccountIndex(a.index),
            public_key,
            balance: Amount::new(a.balance)
                .ok_or_else(|| Error::protocol("account", "balance above 2^63 - 1"))?,
            nonce: Nonce::new(a.nonce)
                .ok_or_else(|| Error::protocol("account", "nonce above 2^63 - 1"))?,
            lane_nonces: a
                .lane_nonces
                .iter()
                .map(|&n| {
                    Nonce::new(n)
                        .ok_or_else(|| Error::protocol("account", "lane nonce above 2^63 - 1"))
                })
                .collect::<Result<_>>()?,
            agents: a.agents.iter().copied().map(AccountIndex).collect(),
            passport: a.passport.map(TryInto::try_into).transpose()?,
            shares: a
                .shares
                .iter()
                .map(|s| {
                    let bps = u16::try_from(s.bps)
                        .map_err(|_| Error::protocol("account", "a share above 65,535 bps"))?;
                    Ok((AccountIndex(s.payee), bps))
                })
                .collect::<Result<_>>()?,
        })
    }
}

/// A successful registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Registered {
    /// The account index the node assigned to the key.
    pub index: AccountIndex,
    pub receipt: Receipt,
}

/// A connection to a node.
///
/// Cheap to clone (clones share the connection). Every method takes `&self`, so one client can
/// serve many tasks.
#[derive(Clone)]
pub struct Client {
    rpc: RollupClient<Channel>,
    endpoint: String,
    status: ChainStatus,
    /// When `status` was fetched: deadlines follow the node's clock (status.now plus the time
    /// elapsed here), so a wallet with a skewed clock still signs `valid_until`s the node
    /// accepts.
    fetched_at: Instant,
    valid_for: Duration,
}

impl Client {
    /// Connects to `endpoint` (e.g. `http://127.0.0.1:50051`) and reads the chain parameters.
    pub async fn connect(endpoint: &str) -> Result<Client> {
        let invalid = |reason: String| Error::Endpoint {
            endpoint: endpoint.to_owned(),
            reason,
        };
        // Checked here because the transport accepts a bare host as a relative URI and only
        // fails later with a less helpful message.
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(invalid("it must start with http:// or https://".into()));
        }
        let channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .tcp_keepalive(Some(Duration::from_secs(60)))
            .connect()
            .await
            .map_err(|source| Error::Connect {
                endpoint: endpoint.to_owned(),
                source,
            })?;
        Client::with_channel(channel, endpoint).await
    }

    /// Uses an existing channel (custom TLS, timeouts, or a shared connection).
    pub async fn with_channel(channel: Channel, endpoint: &str) -> Result<Client> {
        let mut rpc = RollupClient::new(channel);
        let status = rpc
            .get_status(unary(proto::GetStatusRequest {}))
            .await?
            .into_inner();
        Ok(Client {
            rpc,
            endpoint: endpoint.to_owned(),
            status: status.try_into()?,
            fetched_at: Instant::now(),
            valid_for: DEFAULT_VALID_FOR,
        })
    }

    /// How long transactions signed by [`Client::pay`], [`Client::withdraw`] and
    /// [`Client::register`] stay valid (default one hour).
    pub fn with_valid_for(mut self, valid_for: Duration) -> Client {
        self.valid_for = valid_for;
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The signing domain (chain id and rollup address) read at connection.
    pub fn domain(&self) -> Domain {
        self.status.domain()
    }

    /// The status read at connection time (see [`Client::status`] for a fresh one).
    pub fn connected_status(&self) -> &ChainStatus {
        &self.status
    }

    /// The node's current time (Unix seconds), estimated from the connection's status.
    pub fn node_now(&self) -> u64 {
        if self.status.now == 0 {
            // A node that does not report its clock: fall back to ours.
            return SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
        }
        self.status
            .now
            .saturating_add(self.fetched_at.elapsed().as_secs())
    }

    /// `valid_until` for a transaction signed now: the node's time plus the validity window.
    pub fn deadline(&self) -> Timestamp {
        self.deadline_in(self.valid_for)
    }

    /// `valid_until` for a transaction valid for `valid_for` from the node's now.
    pub fn deadline_in(&self, valid_for: Duration) -> Timestamp {
        let at = self.node_now().saturating_add(valid_for.as_secs());
        Timestamp::new(at).unwrap_or(Timestamp::MAX)
    }

    /// Fresh chain status.
    pub async fn status(&self) -> Result<ChainStatus> {
        let status = self
            .rpc()
            .get_status(unary(proto::GetStatusRequest {}))
            .await?;
        status.into_inner().try_into()
    }

    /// An account's balance and next nonce.
    pub async fn account(&self, index: AccountIndex) -> Result<AccountState> {
        let answer = self
            .rpc()
            .get_account(unary(proto::GetAccountRequest { index: index.0 }))
            .await;
        match answer {
            Ok(account) => account.into_inner().try_into(),
            Err(status) if status.code() == Code::NotFound => Err(Error::UnknownAccount(index)),
            Err(status) => Err(status.into()),
        }
    }

    /// The nonce the account's next transaction must carry.
    pub async fn next_nonce(&self, index: AccountIndex) -> Result<Nonce> {
        Ok(self.account(index).await?.nonce)
    }

    /// The receipt of an accepted transaction; `None` if the node does not know the id.
    pub async fn receipt(&self, tx_id: &TxId) -> Result<Option<Receipt>> {
        let answer = self
            .rpc()
            .get_receipt(unary(proto::GetReceiptRequest {
                tx_id: tx_id.0.to_vec(),
            }))
            .await;
        match answer {
            Ok(receipt) => receipt.into_inner().try_into().map(Some),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(status.into()),
        }
    }

    /// Devnet only: credits `amount` to an account through an ordinary deposit.
    pub async fn faucet(&self, index: AccountIndex, amount: Amount) -> Result<Receipt> {
        let answer = self
            .rpc()
            .faucet(unary(proto::FaucetRequest {
                account: index.0,
                amount: amount.get(),
            }))
            .await;
        match answer {
            Ok(receipt) => Receipt::try_from(receipt.into_inner())?.into_accepted(),
            Err(status)
                if matches!(
                    status.code(),
                    Code::Unimplemented | Code::FailedPrecondition | Code::PermissionDenied
                ) =>
            {
                Err(Error::FaucetDisabled(status.message().to_owned()))
            }
            Err(status) => Err(status.into()),
        }
    }

    /// Submits a transaction and returns the node's receipt, accepted or rejected.
    pub async fn submit(&self, tx: &Transaction) -> Result<Receipt> {
        self.submit_request(submit_request(tx)).await
    }

    /// Submits a prepared request (structured or raw) and returns the receipt.
    pub async fn submit_request(&self, request: proto::SubmitRequest) -> Result<Receipt> {
        let receipt = self.rpc().submit(unary(request)).await?;
        receipt.into_inner().try_into()
    }

    /// Registers `key` (signed with itself, the proof of possession) and returns the account
    /// index the node assigned. `valid_until` defaults to [`Client::deadline`].
    ///
    /// Solves the node's registration proof of work first (the bits its status reported at
    /// connection, on a blocking thread: about `2^bits` SHA-256 hashes, a third of a second at
    /// the default 20). If the node asks for more since (`REGISTRATION_WORK_REQUIRED`), the
    /// status is read again and the work redone once.
    pub async fn register(
        &self,
        key: &SecretKey,
        valid_until: Option<Timestamp>,
    ) -> Result<Registered> {
        let domain = self.domain();
        let tx: Transaction = UnsignedRegister {
            pubkey: key.public_key(),
            valid_until: valid_until.unwrap_or_else(|| self.deadline()),
        }
        .sign(&domain, key)
        .into();
        let pubkey = key.public_key().to_bytes();
        let mut bits = self.status.registration_work_bits;
        let answer = loop {
            let mut request = submit_request(&tx);
            request.work_nonce = solve_work(domain, pubkey, bits).await?;
            match self.submit_request(request).await {
                Err(e) if e.limit() == Some(REGISTRATION_WORK_REQUIRED) => {
                    let now = self.status().await?.registration_work_bits;
                    if now <= bits {
                        return Err(e);
                    }
                    bits = now;
                }
                answer => break answer,
            }
        };
        let receipt = answer?.into_accepted()?;
        let index = receipt.account_index.ok_or_else(|| {
            Error::protocol("receipt", "accepted registration without an account index")
        })?;
        Ok(Registered { index, receipt })
    }

    /// Pays `amount` from `from` to `to` (plus `fee` to the operator), signed with `key`.
    /// With `nonce: None` the account's next nonce is fetched first.
    pub async fn pay(
        &self,
        key: &SecretKey,
        from: AccountIndex,
        to: AccountIndex,
        amount: Amount,
        fee: Amount,
        nonce: Option<Nonce>,
    ) -> Result<Receipt> {
        let nonce = match nonce {
            Some(n) => n,
            None => self.next_nonce(from).await?,
        };
        let tx = UnsignedTransfer {
            from,
            to,
            amount,
            fee,
            nonce,
            valid_until: self.deadline(),
        }
        .sign(&self.domain(), key);
        self.submit(&tx.into()).await?.into_accepted()
    }

    /// Pays every payee of `parts` its amount from `from` in one split payment (SPEC 19.4; up
    /// to 1,024 payees, all or nothing; a node accepts it when its pinned circuits prove
    /// splits, else `KIND_NOT_ENABLED`). The parts are sent in increasing payee order, as the rules
    /// require; a payee listed twice is refused (`PAYEES_NOT_SORTED`). With `nonce: None` the
    /// account's next nonce is fetched first.
    pub async fn pay_split(
        &self,
        key: &SecretKey,
        from: AccountIndex,
        parts: impl IntoIterator<Item = (AccountIndex, Amount)>,
        fee: Amount,
        nonce: Option<Nonce>,
    ) -> Result<Receipt> {
        let mut parts: Vec<Payout> = parts
            .into_iter()
            .map(|(to, amount)| Payout { to, amount })
            .collect();
        parts.sort_by_key(|p| p.to);
        let nonce = match nonce {
            Some(n) => n,
            None => self.next_nonce(from).await?,
        };
        let tx = UnsignedSplit {
            from,
            parts,
            fee,
            nonce,
            valid_until: self.deadline(),
        }
        .sign(&self.domain(), key);
        self.submit(&tx.into()).await?.into_accepted()
    }

    /// Withdraws `amount` from `from` to the L1 address `to_l1` (plus `fee` to the operator).
    /// With `nonce: None` the account's next nonce is fetched first.
    pub async fn withdraw(
        &self,
        key: &SecretKey,
        from: AccountIndex,
        to_l1: L1Address,
        amount: Amount,
        fee: Amount,
        nonce: Option<Nonce>,
    ) -> Result<Receipt> {
        let nonce = match nonce {
            Some(n) => n,
            None => self.next_nonce(from).await?,
        };
        let tx = UnsignedWithdraw {
            from,
            to_l1,
            amount,
            fee,
            nonce,
            valid_until: self.deadline(),
        }
        .sign(&self.domain(), key);
        self.submit(&tx.into()).await?.into_accepted()
    }

    /// Opens a payment stream (see [`PaymentStream`]).
    pub async fn open_stream(&self) -> Result<PaymentStream> {
        PaymentStream::open(self.rpc(), STREAM_BUFFER).await
    }

    /// Receipts of accepted transactions touching `account`, as they are accepted: after
    /// `from_seq` if given (to resume from a cursor), otherwise from now on.
    pub async fn watch(
        &self,
        account: AccountIndex,
        from_seq: Option<u64>,
    ) -> Result<impl Stream<Item = Result<Receipt>> + Send + Unpin + 'static> {
        let receipts = self
            .rpc()
            .watch_receipts(proto::WatchReceiptsRequest {
                account: account.0,
                from_seq,
            })
            .await?
            .into_inner();
        Ok(receipts.map(|item| item.map_err(Error::from).and_then(Receipt::try_from)))
    }

    /// The generated gRPC client, for calls the SDK does not wrap.
    pub fn rpc(&self) -> RollupClient<Channel> {
        self.rpc.clone()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("domain", &self.domain())
            .finish_non_exhaustive()
    }
}

/// The smallest registration work nonce for `pubkey` (`rollup_proto::work`), solved on a
/// blocking thread so that the runtime's workers keep serving other tasks meanwhile.
async fn solve_work(domain: Domain, pubkey: [u8; 40], bits: u32) -> Result<u64> {
    if bits == 0 {
        return Ok(0);
    }
    tokio::task::spawn_blocking(move || rollup_proto::work::solve(&domain, &pubkey, bits))
        .await
        .map_err(|e| Error::protocol("registration work", format!("solver failed: {e}")))
}

/// A unary request with the SDK's deadline, so a stuck node fails the call instead of hanging.
pub(crate) fn unary<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(CALL_TIMEOUT);
    request
}

fn hex0x<S: Serializer, B: AsRef<[u8]>>(bytes: &B, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("0x{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_status() -> proto::Status {
        proto::Status {
            chain_id: 31337,
            rollup_address: vec![0xaa; 20],
            head_block: 9,
            head_state_root: vec![1; 32],
            accepted_txs: 100,
            num_accounts: 5,
            devnet: true,
            next_deposit_seq: 3,
            now: 1_800_000_000,
            registration_work_bits: 8,
        }
    }

    #[test]
    fn status_gives_the_signing_domain() {
        let status = ChainStatus::try_from(wire_status()).unwrap();
        assert_eq!(
            status.domain(),
            Domain {
                chain_id: 31337,
                rollup: [0xaa; 20]
            }
        );
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["rollup_address"], format!("0x{}", "aa".repeat(20)));
    }

    #[test]
    fn status_with_a_bad_address_is_a_protocol_error() {
        let mut bad = wire_status();
        bad.rollup_address.pop();
        assert!(matches!(
            ChainStatus::try_from(bad),
            Err(Error::Protocol { .. })
        ));
    }

    #[test]
    fn account_checks_bounds_and_key() {
        let key = SecretKey::random(&mut rand_core::OsRng).public_key();
        let account = AccountState::try_from(proto::Account {
            index: 4,
            public_key: key.to_bytes().to_vec(),
            balance: 10,
            nonce: 2,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(account.public_key, Some(key));
        assert_eq!(account.balance.get(), 10);
        assert!(AccountState::try_from(proto::Account {
            index: 4,
            public_key: vec![],
            balance: u64::MAX,
            nonce: 0,
            ..Default::default()
        })
        .is_err());
        assert!(AccountState::try_from(proto::Account {
            index: 4,
            public_key: vec![0; 40],
            balance: 0,
            nonce: 0,
            ..Default::default()
        })
        .is_err());
    }
}
