//! A real anvil (the devnet L1) as a child process on a free port of 127.0.0.1.
//!
//! The binary comes from `ROLLUP_ANVIL` when set, else from the pinned npm package installed by
//! `scripts/ensure-l1-tools.sh`: `<workspace>/bridge/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`.
//! anvil's default accounts are unlocked and funded (mnemonic `test test ... junk`), so a
//! client can send transactions with `eth_sendTransaction` without holding keys.

use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_port;

/// The npm package path of the anvil binary, relative to the workspace root.
pub const ANVIL_NPM_PATH: &str = "bridge/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";

/// The workspace root (the folder above `devkit/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("devkit lives inside the workspace")
        .to_path_buf()
}

/// Where the anvil binary is: `ROLLUP_ANVIL`, else the npm package. Errors with the command
/// that installs it.
pub fn anvil_binary() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("ROLLUP_ANVIL") {
        return Ok(PathBuf::from(path));
    }
    let path = workspace_root().join(ANVIL_NPM_PATH);
    if path.exists() {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "anvil not found at {}; run scripts/ensure-l1-tools.sh (or set ROLLUP_ANVIL)",
                path.display()
            ),
        ))
    }
}

/// A running anvil, killed when dropped.
pub struct Anvil {
    child: Child,
    port: u16,
}

impl Anvil {
    /// Starts anvil with its defaults (chain id 31337, latest hardfork, instant mining) on a
    /// free port plus `extra` arguments, and waits until it accepts connections (30 s at most).
    pub fn start(extra: &[&str]) -> io::Result<Anvil> {
        let binary = anvil_binary()?;
        let mut last_err = None;
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&binary)
                .args(["--port", &port.to_string(), "--silent"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(Anvil { child, port });
                }
                if let Some(status) = child.try_wait()? {
                    // Most likely the port was taken between free_port and bind: retry.
                    last_err = Some(io::Error::other(format!("anvil exited early: {status}")));
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "anvil did not listen within 30 s",
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("anvil did not start")))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// JSON-RPC endpoint, e.g. `http://127.0.0.1:8545`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
