//! The `rollup` binary without a node: help, key files, input errors and an unreachable node.

use std::os::unix::fs::PermissionsExt;

use assert_cmd::Command;

fn rollup() -> Command {
    let mut cmd = Command::cargo_bin("rollup").unwrap();
    // Never reach a node a developer happens to run: port 9 (discard) refuses connections.
    cmd.env("ROLLUP_ENDPOINT", "http://127.0.0.1:9");
    cmd
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

fn stderr_failure(cmd: &mut Command, code: i32) -> String {
    let out = cmd.assert().code(code).get_output().stderr.clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn help_explains_every_command_and_option() {
    let help = stdout(rollup().arg("--help"));
    for word in [
        "keygen",
        "register",
        "pay",
        "balance",
        "watch",
        "faucet",
        "status",
        "--endpoint",
        "ROLLUP_ENDPOINT",
        "--json",
        "Exit status",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    let cases: [(&str, &[&str]); 7] = [
        ("keygen", &["--out", "--force"]),
        ("register", &["--key", "--valid-for"]),
        (
            "pay",
            &[
                "--key",
                "--to",
                "--amount",
                "--fee",
                "--nonce",
                "--valid-for",
            ],
        ),
        ("balance", &["--account", "--key"]),
        ("watch", &["--account", "--from-seq"]),
        ("faucet", &["--account", "--amount"]),
        ("status", &["--endpoint"]),
    ];
    for (command, options) in cases {
        let help = stdout(rollup().args([command, "--help"]));
        for option in options {
            assert!(
                help.contains(option),
                "{command} --help lacks {option}:\n{help}"
            );
        }
    }
}

#[test]
fn keygen_writes_a_private_key_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.json");
    let out = stdout(rollup().args(["--json", "keygen", "--out"]).arg(&path));
    let printed: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(stored["public_key"], printed["public_key"]);

    let err = stderr_failure(rollup().args(["keygen", "--out"]).arg(&path), 1);
    assert!(err.contains("already exists"), "{err}");
    assert!(err.contains("--force"), "{err}");
    let unchanged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(unchanged, stored);

    stdout(rollup().args(["keygen", "--force", "--out"]).arg(&path));
    let replaced: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_ne!(replaced["public_key"], stored["public_key"]);
}

#[test]
fn pay_needs_a_registered_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.json");
    stdout(rollup().args(["keygen", "--out"]).arg(&path));
    let err = stderr_failure(
        rollup()
            .args(["pay", "--to", "3", "--amount", "5", "--key"])
            .arg(&path),
        1,
    );
    assert!(err.contains("rollup register"), "{err}");
}

#[test]
fn bad_amounts_are_usage_errors() {
    for amount in ["-1", "1.5", "9223372036854775808", "lots"] {
        let err = stderr_failure(
            rollup().args(["pay", "--key", "k.json", "--to", "1", "--amount", amount]),
            2,
        );
        assert!(err.contains("--amount"), "{amount}: {err}");
    }
}

#[test]
fn an_unreachable_node_is_a_one_line_error() {
    let err = stderr_failure(rollup().args(["balance", "--account", "1"]), 1);
    assert!(
        err.starts_with("error: cannot reach the node at http://127.0.0.1:9"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// The wallet against a real devnet node (see `support`).
#[tokio::test]
async fn wallet_flow_against_a_node() {
    let devnet = devkit::node::Devnet::start("client_cli_e2e").await;
    let endpoint = devnet.endpoint.clone();
    let node = |args: &[&str]| {
        let mut cmd = rollup();
        cmd.env("ROLLUP_ENDPOINT", &endpoint).args(args);
        cmd
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let (a_path, b_path) = (a.to_str().unwrap(), b.to_str().unwrap());
    for path in [a_path, b_path] {
        stdout(&mut node(&["keygen", "--out", path]));
        stdout(&mut node(&["register", "--key", path]));
        let stored: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(stored["account_index"].as_u64().is_some(), "{stored}");
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the rewritten key file stays private");
    }
    let index = |path: &str| -> String {
        let stored: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        stored["account_index"].to_string()
    };
    let (ia, ib) = (index(a_path), index(b_path));

    let err = stderr_failure(&mut node(&["register", "--key", a_path]), 1);
    assert!(err.contains("already registered"), "{err}");

    stdout(&mut node(&["faucet", "--account", &ia, "--amount", "500"]));
    let paid = stdout(&mut node(&[
        "--json", "pay", "--key", a_path, "--to", &ib, "--amount", "120", "--fee", "1",
    ]));
    let receipt: serde_json::Value = serde_json::from_str(paid.trim()).unwrap();
    assert_eq!(receipt["status"], "accepted");

    let balance = stdout(&mut node(&["--json", "balance", "--key", a_path]));
    let balance: serde_json::Value = serde_json::from_str(balance.trim()).unwrap();
    assert_eq!(
        (balance["balance"].as_u64(), balance["nonce"].as_u64()),
        (Some(379), Some(1))
    );
    let text = stdout(&mut node(&["balance", "--account", &ib]));
    assert!(text.contains("balance 120"), "{text}");

    // A rejection: exit status 3 and the reason code on one line.
    let err = stderr_failure(
        &mut node(&["pay", "--key", a_path, "--to", &ib, "--amount", "100000"]),
        3,
    );
    assert!(
        err.starts_with("error: rejected: INSUFFICIENT_BALANCE"),
        "{err}"
    );
    let err = stderr_failure(
        &mut node(&[
            "pay", "--key", a_path, "--to", &ib, "--amount", "1", "--nonce", "0",
        ]),
        3,
    );
    assert!(err.starts_with("error: rejected: BAD_NONCE"), "{err}");

    let tx_id = receipt["tx_id"].as_str().unwrap();
    let shown = stdout(&mut node(&["receipt", tx_id]));
    assert!(shown.starts_with("accepted tx"), "{shown}");
    let status = stdout(&mut node(&["--json", "status"]));
    let status: serde_json::Value = serde_json::from_str(status.trim()).unwrap();
    assert_eq!(status["devnet"], true);
}
