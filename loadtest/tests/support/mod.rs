//! A real devnet node for the end-to-end tests.
//!
//! `ROLLUP_E2E_ENDPOINT` names a running `--devnet` node to use. Otherwise the `rollup-node`
//! binary built beside this test (`cargo test --workspace` builds it) is started on a fresh
//! database from `rollup-devkit` and killed when the test ends. Without either, the test says
//! why and passes without doing anything.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rollup_client::Client;

pub struct Devnet {
    pub endpoint: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Devnet {
    pub async fn start(name: &str) -> Option<Devnet> {
        if let Ok(endpoint) = std::env::var("ROLLUP_E2E_ENDPOINT") {
            return Some(Devnet {
                endpoint,
                child: None,
                log: PathBuf::new(),
            });
        }
        // target/<profile>/deps/<test> -> target/<profile>/rollup-node
        let exe = std::env::current_exe().ok()?;
        let node = exe.parent()?.parent()?.join("rollup-node");
        if !node.exists() {
            eprintln!(
                "skipping {name}: no {} (build it with `cargo build -p rollup-sequencer`) and no ROLLUP_E2E_ENDPOINT",
                node.display()
            );
            return None;
        }
        let db = devkit::postgres::test_database(name)
            .await
            .expect("a Postgres server for the end-to-end tests (see rollup-devkit)");
        let (grpc, http) = (devkit::ports::free_port(), devkit::ports::free_port());
        let log = std::env::temp_dir().join(format!("{name}-{}-{grpc}.log", std::process::id()));
        let out = std::fs::File::create(&log).expect("node log file");
        let child = Command::new(&node)
            .args(["--devnet", "--grpc-addr", &format!("127.0.0.1:{grpc}")])
            .args(["--http-addr", &format!("127.0.0.1:{http}")])
            .env("DATABASE_URL", db)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("node log file"))
            .stderr(out)
            .spawn()
            .expect("start rollup-node");
        let mut devnet = Devnet {
            endpoint: format!("http://127.0.0.1:{grpc}"),
            child: Some(child),
            log,
        };
        devnet.wait_ready().await;
        Some(devnet)
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("rollup-node exited ({status}):\n{}", self.log_text());
            }
            if Client::connect(&self.endpoint).await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "rollup-node not ready in 60 s:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
