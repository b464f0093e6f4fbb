//! Test harness: a real Postgres database per test and the real `rollup-node` binary as a
//! child process (so crash tests can `kill -9` it).

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use rollup_proto::v1 as pb;
use rollup_proto::v1::rollup_client::RollupClient;
use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::crypto::schnorr::SecretKey;
use state::tx::{Domain, Transaction, UnsignedRegister, UnsignedTransfer};
use tonic::transport::Channel;

static DB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty database on a real Postgres server (see `rollup-devkit`).
pub async fn fresh_database(prefix: &str) -> String {
    let n = DB_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}_{}_{n}", std::process::id());
    devkit::postgres::test_database(&name)
        .await
        .expect("a Postgres server for the integration tests (see rollup-devkit)")
}

/// The node under test: the real binary as a child process (see `devkit::node`).
pub struct TestNode(pub devkit::node::NodeProcess);

impl std::ops::Deref for TestNode {
    type Target = devkit::node::NodeProcess;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
impl std::ops::DerefMut for TestNode {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl TestNode {
    pub async fn start(db: &str, extra: &[&str]) -> TestNode {
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_rollup-node"));
        TestNode(devkit::node::NodeProcess::start(binary, db, extra).await)
    }

    pub async fn client(&self) -> RollupClient<Channel> {
        RollupClient::connect(self.grpc.clone())
            .await
            .expect("connect to the node")
    }
}

pub async fn domain(c: &mut RollupClient<Channel>) -> (Domain, u64) {
    let s = c
        .get_status(pb::GetStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    let rollup: [u8; 20] = s
        .rollup_address
        .as_slice()
        .try_into()
        .expect("20-byte address");
    (
        Domain {
            chain_id: s.chain_id,
            rollup,
        },
        s.now,
    )
}

pub fn raw(tx: &Transaction) -> pb::SubmitRequest {
    pb::SubmitRequest {
        tx: Some(pb::submit_request::Tx::Raw(tx.encode())),
        work_nonce: 0,
    }
}

/// The registration proof of work the test nodes ask for (devkit passes it to every node that
/// does not set `--registration-work-bits` itself).
pub const WORK_BITS: u32 = devkit::node::TEST_REGISTRATION_WORK_BITS;

/// `tx` as a raw request; a Register carries the proof of work of [`WORK_BITS`].
pub fn raw_with_work(d: &Domain, tx: &Transaction) -> pb::SubmitRequest {
    let mut req = raw(tx);
    if let Transaction::Register(r) = tx {
        req.work_nonce = rollup_proto::work::solve(d, &r.pubkey.to_bytes(), WORK_BITS);
    }
    req
}

pub fn key(seed: u64) -> SecretKey {
    use rand::SeedableRng;
    SecretKey::random(&mut rand::rngs::StdRng::seed_from_u64(seed))
}

/// A signed registration of `sk`'s key.
pub fn register_tx(d: &Domain, now: u64, sk: &SecretKey) -> Transaction {
    Transaction::Register(
        UnsignedRegister {
            pubkey: sk.public_key(),
            valid_until: Timestamp::new(now + 3600).unwrap(),
        }
        .sign(d, sk),
    )
}

/// Registers a key and returns its account index.
pub async fn register(
    c: &mut RollupClient<Channel>,
    d: &Domain,
    now: u64,
    sk: &SecretKey,
) -> AccountIndex {
    let tx = UnsignedRegister {
        pubkey: sk.public_key(),
        valid_until: Timestamp::new(now + 3600).unwrap(),
    }
    .sign(d, sk);
    let r = c
        .submit(raw_with_work(d, &Transaction::Register(tx)))
        .await
        .expect("register")
        .into_inner();
    assert_eq!(
        r.status,
        pb::TxStatus::Accepted as i32,
        "register rejected: {r:?}"
    );
    AccountIndex(r.account_index.expect("registered index"))
}

pub async fn faucet(c: &mut RollupClient<Channel>, to: AccountIndex, amount: u64) -> pb::Receipt {
    let r = c
        .faucet(pb::FaucetRequest {
            account: to.0,
            amount,
        })
        .await
        .expect("faucet")
        .into_inner();
    assert_eq!(
        r.status,
        pb::TxStatus::Accepted as i32,
        "faucet rejected: {r:?}"
    );
    r
}

#[allow(clippy::too_many_arguments)]
pub fn transfer(
    d: &Domain,
    sk: &SecretKey,
    from: AccountIndex,
    to: AccountIndex,
    amount: u64,
    fee: u64,
    nonce: u64,
    valid_until: u64,
) -> Transaction {
    Transaction::Transfer(
        UnsignedTransfer {
            from,
            to,
            amount: Amount::new(amount).unwrap(),
            fee: Amount::new(fee).unwrap(),
            nonce: Nonce::new(nonce).unwrap(),
            valid_until: Timestamp::new(valid_until).unwrap(),
        }
        .sign(d, sk),
    )
}

pub async fn account(c: &mut RollupClient<Channel>, i: AccountIndex) -> pb::Account {
    c.get_account(pb::GetAccountRequest { index: i.0 })
        .await
        .expect("account")
        .into_inner()
}
