//! Test harness: a real Postgres database per test and the real `rollup-node` binary as a
//! child process (so crash tests can `kill -9` it).

#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rollup_proto::v1 as pb;
use rollup_proto::v1::rollup_client::RollupClient;
use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::crypto::schnorr::SecretKey;
use state::tx::{Domain, Transaction, UnsignedRegister, UnsignedTransfer};
use tonic::transport::Channel;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

static DB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty database on a real Postgres server (see `rollup-devkit`).
pub async fn fresh_database(prefix: &str) -> String {
    let n = DB_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}_{}_{n}", std::process::id());
    devkit::postgres::test_database(&name)
        .await
        .expect("a Postgres server for the integration tests (see rollup-devkit)")
}

pub struct TestNode {
    pub child: Child,
    pub grpc: String,
    pub http: String,
    pub db: String,
    pub args: Vec<String>,
    pub log: std::path::PathBuf,
}

impl TestNode {
    pub async fn start(db: &str, extra: &[&str]) -> TestNode {
        let grpc_port = free_port();
        let http_port = free_port();
        let log = std::env::temp_dir().join(format!(
            "rollup-node-{}-{grpc_port}.log",
            std::process::id()
        ));
        let mut args: Vec<String> = vec![
            "--devnet".into(),
            "--grpc-addr".into(),
            format!("127.0.0.1:{grpc_port}"),
            "--http-addr".into(),
            format!("127.0.0.1:{http_port}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut node = TestNode {
            child: spawn(db, &args, &log),
            grpc: format!("http://127.0.0.1:{grpc_port}"),
            http: format!("http://127.0.0.1:{http_port}"),
            db: db.to_string(),
            args,
            log,
        };
        node.wait_ready().await;
        node
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "rollup-node exited early ({status}); log:\n{}",
                    self.log_text()
                );
            }
            if let Ok(r) = reqwest::get(format!("{}/readyz", self.http)).await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node not ready in time; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn client(&self) -> RollupClient<Channel> {
        RollupClient::connect(self.grpc.clone())
            .await
            .expect("connect to the node")
    }

    /// SIGKILL: no flush, no goodbye.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait for the node")
    }

    /// Starts the node again on the same database and ports.
    pub async fn restart(&mut self) {
        self.child = spawn(&self.db, &self.args, &self.log);
        self.wait_ready().await;
    }

    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(db: &str, args: &[String], log: &std::path::Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let err = out.try_clone().expect("log file");
    Command::new(env!("CARGO_BIN_EXE_rollup-node"))
        .args(args)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "info,sqlx=warn")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn rollup-node")
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
    }
}

pub fn key(seed: u64) -> SecretKey {
    use rand::SeedableRng;
    SecretKey::random(&mut rand::rngs::StdRng::seed_from_u64(seed))
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
        .submit(raw(&Transaction::Register(tx)))
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
