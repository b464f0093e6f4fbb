//! A real `rollup-node` as a child process, for end-to-end tests: started on a database of the
//! caller's choice and free ports, waited for until `/readyz` answers, and killable with
//! SIGKILL (crash tests) or stopped with SIGTERM (graceful shutdown tests).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ports::free_port;

/// A running node and how to reach it.
pub struct NodeProcess {
    child: Child,
    binary: PathBuf,
    args: Vec<String>,
    /// gRPC endpoint, e.g. `http://127.0.0.1:50051`.
    pub grpc: String,
    /// HTTP base URL, e.g. `http://127.0.0.1:8080`.
    pub http: String,
    http_port: u16,
    /// The node's `DATABASE_URL`.
    pub db: String,
    log: PathBuf,
}

/// The `rollup-node` built in the same target directory as the running test binary
/// (`target/<profile>/deps/<test>` -> `target/<profile>/rollup-node`), if it exists.
pub fn binary_beside_tests() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let node = exe.parent()?.parent()?.join("rollup-node");
    node.exists().then_some(node)
}

impl NodeProcess {
    /// Starts `binary --devnet` on `db` with fresh ports plus `extra` flags, and waits until
    /// it is ready (panics with the node's log if it exits or is not ready within 60 s).
    pub async fn start(binary: &Path, db: &str, extra: &[&str]) -> NodeProcess {
        let Launch {
            args,
            grpc_port,
            http_port,
            log,
        } = Launch::devnet(extra);
        let child = spawn(binary, db, &args, &log)
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let mut node = NodeProcess {
            child,
            binary: binary.to_path_buf(),
            args,
            grpc: format!("http://127.0.0.1:{grpc_port}"),
            http: format!("http://127.0.0.1:{http_port}"),
            http_port,
            db: db.to_string(),
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
            if ready(self.http_port).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "rollup-node not ready in 60 s; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the node to exit by itself; `None` if it is still running.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `binary --devnet` with `extra` flags on `db` until it exits (within `limit`, else
    /// it is killed and `None` returned): for start-up refusals. Returns the status and log.
    pub async fn run_to_exit(
        binary: &Path,
        db: &str,
        extra: &[&str],
        limit: Duration,
    ) -> (Option<ExitStatus>, String) {
        let Launch { args, log, .. } = Launch::devnet(extra);
        let mut child = spawn(binary, db, &args, &log)
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        (status, std::fs::read_to_string(&log).unwrap_or_default())
    }

    /// SIGKILL: no flush, no goodbye.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(&mut self) -> io::Result<ExitStatus> {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        self.child.wait()
    }

    /// Starts the node again with the same database, ports and flags.
    /// The node must have been stopped first (`terminate` or `kill9`): a node still running
    /// holds the ports, so the new process would exit at once and the old one would keep
    /// answering, and a test of recovery would test nothing. That is a panic here.
    pub async fn restart(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            panic!(
                "restart of node {} while it is still running: stop it first (terminate or kill9)",
                self.child.id()
            );
        }
        self.child = spawn(&self.binary, &self.db, &self.args, &self.log)
            .unwrap_or_else(|e| panic!("restart {}: {e}", self.binary.display()));
        self.wait_ready().await;
    }

    /// Resident memory of the node in KiB (Linux), 0 if unknown.
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

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The registration proof of work test nodes ask for (`--registration-work-bits`, unless a
/// test passes its own): low, so that suites registering thousands of accounts stay fast (256
/// hashes on average), but not 0, so that every registration in the tests carries real work.
pub const TEST_REGISTRATION_WORK_BITS: u32 = 8;

/// How a devnet node is launched: its flags, fresh ports and log file.
struct Launch {
    args: Vec<String>,
    grpc_port: u16,
    http_port: u16,
    log: PathBuf,
}

impl Launch {
    fn devnet(extra: &[&str]) -> Launch {
        let (grpc_port, http_port) = (free_port(), free_port());
        let mut args: Vec<String> = vec![
            "--devnet".into(),
            "--grpc-addr".into(),
            format!("127.0.0.1:{grpc_port}"),
            "--http-addr".into(),
            format!("127.0.0.1:{http_port}"),
        ];
        if !extra
            .iter()
            .any(|a| a.starts_with("--registration-work-bits"))
        {
            args.push("--registration-work-bits".into());
            args.push(TEST_REGISTRATION_WORK_BITS.to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = std::env::temp_dir().join(format!(
            "rollup-node-{}-{grpc_port}.log",
            std::process::id()
        ));
        Launch {
            args,
            grpc_port,
            http_port,
            log,
        }
    }
}

fn spawn(binary: &Path, db: &str, args: &[String], log: &Path) -> io::Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let err = out.try_clone()?;
    Command::new(binary)
        .args(args)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "info,sqlx=warn")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
}

/// `GET /readyz` answered 200 (plain HTTP/1.0 over TCP: no HTTP client needed here).
async fn ready(port: u16) -> bool {
    let Ok(Ok(mut s)) = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    else {
        return false;
    };
    if s.write_all(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
        Ok(Ok(n)) => buf[..n].starts_with(b"HTTP/1.0 200") || buf[..n].starts_with(b"HTTP/1.1 200"),
        _ => false,
    }
}

/// A devnet node for SDK/CLI/loadtest end-to-end tests: `ROLLUP_E2E_ENDPOINT` when set (a node
/// someone else runs), else the `rollup-node` built beside the tests on a fresh database.
pub struct Devnet {
    pub endpoint: String,
    pub process: Option<NodeProcess>,
}

impl Devnet {
    /// Panics when there is neither an endpoint nor a binary: a test that cannot reach a node
    /// fails, it never passes by skipping (scripts/test.sh builds the binary first).
    pub async fn start(name: &str) -> Devnet {
        Devnet::start_with(name, &[]).await
    }

    /// [`Devnet::start`] with `extra` node flags (e.g. `--experimental-streams`). A node at
    /// `ROLLUP_E2E_ENDPOINT` is used as it runs: it must have been started with them.
    pub async fn start_with(name: &str, extra: &[&str]) -> Devnet {
        if let Ok(endpoint) = std::env::var("ROLLUP_E2E_ENDPOINT") {
            return Devnet {
                endpoint,
                process: None,
            };
        }
        let binary = binary_beside_tests().unwrap_or_else(|| {
            panic!(
                "{name}: no rollup-node beside the tests: build it with `cargo build -p \
                 rollup-sequencer --bin rollup-node` (scripts/test.sh does), or point \
                 ROLLUP_E2E_ENDPOINT at a running node"
            )
        });
        let db = crate::postgres::test_database(name)
            .await
            .expect("a Postgres server for the end-to-end tests (see rollup-devkit)");
        let process = NodeProcess::start(&binary, &db, extra).await;
        Devnet {
            endpoint: process.grpc.clone(),
            process: Some(process),
        }
    }
}
