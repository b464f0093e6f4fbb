//! The `loadtest` binary: help, an unreachable node, and a short run against a real devnet node
//! (see `support`) whose stdout is exactly one JSON report.

use assert_cmd::Command;

fn loadtest() -> Command {
    let mut cmd = Command::cargo_bin("loadtest").unwrap();
    cmd.env_remove("ROLLUP_ENDPOINT");
    cmd
}

#[test]
fn help_lists_every_flag() {
    let out = loadtest()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(out).unwrap();
    for flag in [
        "--endpoint",
        "--agents",
        "--streams",
        "--duration",
        "--rate",
        "--fee",
        "--json",
        "--warmup",
        "--window",
        "--max-presigned",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn an_unreachable_node_fails_with_a_clear_message() {
    let out = loadtest()
        .args(["--endpoint", "http://127.0.0.1:9", "--json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("cannot reach the node at http://127.0.0.1:9"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no report without a node");
}

#[tokio::test]
async fn a_short_run_prints_one_json_report() {
    let Some(devnet) = devkit::node::Devnet::start("loadtest_e2e").await else {
        return;
    };
    let endpoint = devnet.endpoint.clone();
    let out = loadtest()
        .args([
            "--endpoint",
            &endpoint,
            "--json",
            "--agents",
            "20",
            "--streams",
            "4",
        ])
        .args(["--duration", "2", "--rate", "200", "--fee", "1"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    let report: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    for key in [
        "accepted",
        "rejected",
        "tps",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
        "duration_s",
        "rejected_by_reason",
    ] {
        assert!(report.get(key).is_some(), "missing {key}: {report}");
    }
    assert!(report["accepted"].as_u64().unwrap() >= 300, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
}
