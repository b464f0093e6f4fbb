//! The `loadtest` binary: help, an unreachable node, a bad `--node-pid`, and a short run against
//! a real devnet node (see `support`) whose stdout is exactly one JSON report, then an idle
//! watchers measurement of the same node.

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
        "--ceiling-seconds",
        "--idle-watchers",
        "--node-pid",
        "--background-tps",
        "--watchers-per-connection",
        "--settle",
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

#[test]
fn idle_watchers_need_a_readable_node_pid() {
    // clap: --idle-watchers needs --node-pid, and refuses the load's flags.
    loadtest().args(["--idle-watchers", "10"]).assert().code(2);
    loadtest()
        .args(["--idle-watchers", "10", "--node-pid", "1", "--rate", "5"])
        .assert()
        .code(2);
    loadtest().args(["--node-pid", "1"]).assert().code(2);
    // A process that does not exist: a clear error before anything else, never a 0% report.
    let out = loadtest()
        .args(["--endpoint", "http://127.0.0.1:9", "--json"])
        .args(["--idle-watchers", "10", "--node-pid", "4294967295"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cannot read /proc/4294967295/stat"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "no report without the node's CPU time"
    );
}

#[tokio::test]
async fn a_short_run_prints_one_json_report() {
    let devnet =
        devkit::node::Devnet::start_with("loadtest_e2e", &["--experimental-streams"]).await;
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
        .args(["--ceiling-seconds", "1"])
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
    // Measured before and after the load; the ratio is to the higher of the two.
    let ceiling = report["ceiling_tps"].as_f64().unwrap();
    let before = report["ceiling_before_tps"].as_f64().unwrap();
    let after = report["ceiling_after_tps"].as_f64().unwrap();
    assert!(before > 0.0 && after > 0.0, "{report}");
    assert_eq!(ceiling, before.max(after), "{report}");
    let ratio = report["ratio"].as_f64().unwrap();
    assert!((ratio - report["tps"].as_f64().unwrap() / ceiling).abs() < 1e-9);

    // The tick relay: ten agents, each streaming to the next, 2 s at 2,000 ticks a second.
    let out = loadtest()
        .args(["--endpoint", &endpoint, "--json", "--ticks"])
        .args(["--agents", "10", "--streams", "2", "--duration", "2"])
        .args(["--rate", "2000"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let ticks: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(ticks["mode"], "ticks", "{ticks}");
    assert!(ticks["accepted"].as_u64().unwrap() >= 3_000, "{ticks}");
    assert_eq!(ticks["refused"], serde_json::json!({}), "{ticks}");
    assert!(
        ticks["latency_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{ticks}"
    );

    // The same node's CPU with idle watchers (only when this test started it: its pid).
    let Some(node) = &devnet.process else { return };
    let out = loadtest()
        .args(["--endpoint", &endpoint, "--json"])
        .args(["--idle-watchers", "40", "--watchers-per-connection", "16"])
        .args(["--node-pid", &node.pid().to_string()])
        .args(["--duration", "2", "--settle", "1", "--background-tps", "20"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    let idle: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(idle["count"], 40, "{idle}");
    assert_eq!(idle["connections"], 3, "{idle}");
    assert!(idle["seconds"].as_f64().unwrap() >= 2.0, "{idle}");
    assert!(idle["node_cpu_percent"].as_f64().unwrap() >= 0.0, "{idle}");
    assert_eq!(idle["background_tps"], 20, "{idle}");
    assert!(
        idle["background_accepted_tps"].as_f64().unwrap() > 10.0,
        "{idle}"
    );
    assert_eq!(idle["watcher_receipts"], 0, "{idle}");
    assert_eq!(idle["watchers_closed"], 0, "{idle}");
}
