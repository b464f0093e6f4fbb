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
