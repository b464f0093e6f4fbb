//! The `rollup` binary without a node: help, key files, input errors and an unreachable node.

use std::os::unix::fs::PermissionsExt;

use assert_cmd::Command;

fn rollup() -> Command {
    let mut cmd = Command::cargo_bin("rollup").unwrap();
    // Never reach a node a developer happens to run: port 9 (discard) refuses connections.
    cmd.env("ROLLUP_ENDPOINT", "http://127.0.0.1:9");
    // A command that should end but hangs fails its test instead of the whole run.
    cmd.timeout(std::time::Duration::from_secs(60));
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
        "stream",
        "split",
        "--endpoint",
        "ROLLUP_ENDPOINT",
        "--json",
        "Exit status",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    let cases: [(&str, &[&str]); 8] = [
        ("split", &["--key", "--to", "--fee", "--nonce"]),
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
    let streams: [(&str, &[&str]); 6] = [
        (
            "open",
            &[
                "--key",
                "--to",
                "--price",
                "--max-ticks",
                "--lasts",
                "--slot",
                "--fee",
                "--out",
            ],
        ),
        ("tick", &["--stream", "--count", "--every"]),
        ("watch", &["--account", "--key", "--settle-every"]),
        ("show", &["--payer", "--slot"]),
        ("settle", &["--key", "--payer", "--slot", "--fee"]),
        ("close", &["--key", "--payer", "--slot", "--fee"]),
    ];
    for (command, options) in streams {
        let help = stdout(rollup().args(["stream", command, "--help"]));
        for option in options {
            assert!(
                help.contains(option),
                "stream {command} --help lacks {option}:\n{help}"
            );
        }
    }
    let policy = [
        "--cap",
        "--window",
        "--max-payment",
        "--max-fee",
        "--lasts",
        "--allow",
        "--card-uri",
        "--card-hash",
    ];
    let agents: [(&str, &[&str]); 7] = [
        ("create", &["--key", "--agent-key", "--fund", "--fee"]),
        ("policy", &["--key", "--agent", "--fee"]),
        ("revoke", &["--key", "--agent", "--fee"]),
        ("sweep", &["--key", "--agent", "--amount", "--fee"]),
        ("show", &["--agent"]),
        ("list", &["--owner"]),
        (
            "bind-l1",
            &["--key", "--l1-key", "--l1-rpc", "--rollup", "--show"],
        ),
    ];
    for (command, options) in [
        ("register", &["--key", "--to", "--fee"][..]),
        ("distribute", &["--key", "--account", "--fee"]),
        ("show", &["--account"]),
    ] {
        let help = stdout(rollup().args(["shares", command, "--help"]));
        for option in options {
            assert!(
                help.contains(option),
                "shares {command} --help lacks {option}:\n{help}"
            );
        }
    }
    for (command, options) in agents {
        let help = stdout(rollup().args(["agent", command, "--help"]));
        let with_policy = matches!(command, "create" | "policy");
        for option in options.iter().chain(policy.iter().filter(|_| with_policy)) {
            assert!(
                help.contains(option),
                "agent {command} --help lacks {option}:\n{help}"
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
    let devnet = devkit::node::Devnet::start_with(
        "client_cli_e2e",
        &["--experimental-streams", "--experimental-agents"],
    )
    .await;
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

    stream_commands(&node, &endpoint, dir.path(), (a_path, &ia), (b_path, &ib));
    split_command(&node, dir.path(), (a_path, &ia), (b_path, &ib));
    agent_commands(&node, dir.path(), (a_path, &ia), &ib);
    shares_commands(&node, dir.path(), (a_path, &ia), &ib);
}

/// `rollup shares …` (experimental, like splits): a new account registers its shares, is
/// locked (exit status 3, `SHARES_LOCKED`), and another account's distribute pays its balance
/// out by them; a second distribute finds nothing; a malformed share is a usage error.
fn shares_commands(
    node: &dyn Fn(&[&str]) -> Command,
    dir: &std::path::Path,
    (a_path, ia): (&str, &str),
    ib: &str,
) {
    let balance = |who: &str| balance_of(node, who);
    let (r, ir) = new_account(node, dir, "revenue.json");
    let r_path = r.to_str().unwrap();
    stdout(&mut node(&["faucet", "--account", &ir, "--amount", "100"]));
    let receipt = json(&mut node(&[
        "--json",
        "shares",
        "register",
        "--key",
        r_path,
        "--to",
        &format!("{ib}:6000"),
        "--to",
        &format!("{ia}:4000"),
    ]));
    assert_eq!(receipt["status"], "accepted", "{receipt}");
    let shown = json(&mut node(&["--json", "shares", "show", "--account", &ir]));
    let (a, b): (u64, u64) = (ia.parse().unwrap(), ib.parse().unwrap());
    assert_eq!(shown["shares"], serde_json::json!([[a, 4000], [b, 6000]]));
    assert_eq!(shown["balance"], 100);
    let err = stderr_failure(
        &mut node(&["pay", "--key", r_path, "--to", ib, "--amount", "1"]),
        3,
    );
    assert!(err.contains("SHARES_LOCKED"), "{err}");
    let (a0, b0) = (balance(ia), balance(ib));
    let receipt = json(&mut node(&[
        "--json",
        "shares",
        "distribute",
        "--key",
        a_path,
        "--account",
        &ir,
    ]));
    assert_eq!(receipt["status"], "accepted", "{receipt}");
    // Payee 2 (b, 60 %) gets floor(100 x 0.6); payee 1 (a) the rest.
    assert_eq!(
        (balance(&ir), balance(ia), balance(ib)),
        (0, a0 + 40, b0 + 60)
    );
    let err = stderr_failure(
        &mut node(&["shares", "distribute", "--key", a_path, "--account", &ir]),
        3,
    );
    assert!(err.contains("NOTHING_TO_DISTRIBUTE"), "{err}");
    let err = stderr_failure(
        &mut node(&["shares", "register", "--key", r_path, "--to", "7"]),
        2,
    );
    assert!(err.contains("ACCOUNT:BPS"), "{err}");
}

/// `rollup agent …` (the node runs with --experimental-agents): the owner creates an agent
/// under a policy, the agent pays within it and is refused past it with the reason, the agent
/// cannot change its own policy, the owner revokes it and sweeps its balance back.
fn agent_commands(
    node: &dyn Fn(&[&str]) -> Command,
    dir: &std::path::Path,
    (a_path, ia): (&str, &str),
    ib: &str,
) {
    let g = dir.join("agent.json");
    let g_path = g.to_str().unwrap();
    stdout(&mut node(&["keygen", "--out", g_path]));
    let created = json(&mut node(&[
        "--json",
        "agent",
        "create",
        "--key",
        a_path,
        "--agent-key",
        g_path,
        "--fund",
        "100",
        "--cap",
        "50",
        "--window",
        "3600",
        "--max-payment",
        "30",
        "--allow",
        ib,
        "--card-uri",
        "https://agents.example/cli.json",
    ]));
    let agent = created["agent"].to_string();
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(g_path).unwrap()).unwrap();
    assert_eq!(
        stored["account_index"].to_string(),
        agent,
        "stored in the agent's key file"
    );

    stdout(&mut node(&[
        "pay", "--key", g_path, "--to", ib, "--amount", "30",
    ]));
    for (to, amount, reason) in [(ib, "25", "POLICY_CAP"), (ia, "1", "POLICY_PAYEE")] {
        let err = stderr_failure(
            &mut node(&["pay", "--key", g_path, "--to", to, "--amount", amount]),
            3,
        );
        assert!(
            err.starts_with(&format!("error: rejected: {reason}")),
            "{err}"
        );
    }
    let shown = json(&mut node(&["--json", "agent", "show", "--agent", &agent]));
    assert_eq!(shown["owner"].to_string(), ia);
    assert_eq!(
        (shown["spent"].as_u64(), shown["remaining"].as_u64()),
        (Some(30), Some(20))
    );
    let listed = stdout(&mut node(&["agent", "list", "--owner", ia]));
    assert!(
        listed.contains(&format!("agent {agent} of owner {ia}")),
        "{listed}"
    );
    let err = stderr_failure(
        &mut node(&[
            "agent", "policy", "--key", g_path, "--agent", &agent, "--cap", "100000",
        ]),
        3,
    );
    assert!(
        err.contains("NOT_OWNER"),
        "the agent cannot raise its cap: {err}"
    );

    stdout(&mut node(&[
        "agent", "revoke", "--key", a_path, "--agent", &agent,
    ]));
    let err = stderr_failure(
        &mut node(&["pay", "--key", g_path, "--to", ib, "--amount", "1"]),
        3,
    );
    assert!(err.starts_with("error: rejected: REVOKED"), "{err}");
    stdout(&mut node(&[
        "agent", "sweep", "--key", a_path, "--agent", &agent, "--amount", "70",
    ]));
    let balance = json(&mut node(&["--json", "balance", "--account", &agent]));
    assert_eq!(balance["balance"].as_u64(), Some(0));
}

/// The JSON a successful `--json` command prints.
fn json(cmd: &mut Command) -> serde_json::Value {
    serde_json::from_str(stdout(cmd).trim()).unwrap()
}

/// A new key file `name` in `dir`, registered: its path and account index.
fn new_account(
    node: &dyn Fn(&[&str]) -> Command,
    dir: &std::path::Path,
    name: &str,
) -> (std::path::PathBuf, String) {
    let path = dir.join(name);
    let p = path.to_str().unwrap();
    stdout(&mut node(&["keygen", "--out", p]));
    stdout(&mut node(&["register", "--key", p]));
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let index = stored["account_index"].to_string();
    (path, index)
}

/// An account's balance, as `rollup --json balance` reports it.
fn balance_of(node: &dyn Fn(&[&str]) -> Command, account: &str) -> u64 {
    let out = stdout(&mut node(&["--json", "balance", "--account", account]));
    serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["balance"]
        .as_u64()
        .unwrap()
}

/// `rollup split` (experimental, like streams): payees in any order, paid at once; a bad split
/// is refused whole with its reason (exit status 3) and pays nobody.
fn split_command(
    node: &dyn Fn(&[&str]) -> Command,
    dir: &std::path::Path,
    (a_path, ia): (&str, &str),
    (_b_path, ib): (&str, &str),
) {
    let balance = |who: &str| balance_of(node, who);
    let (_, ic) = new_account(node, dir, "c.json");
    let (a0, b0) = (balance(ia), balance(ib));
    let paid = stdout(&mut node(&[
        "--json",
        "split",
        "--key",
        a_path,
        "--to",
        &format!("{ic}:7"),
        "--to",
        &format!("{ib}:5"),
        "--fee",
        "1",
    ]));
    let receipt: serde_json::Value = serde_json::from_str(paid.trim()).unwrap();
    assert_eq!(receipt["status"], "accepted", "{receipt}");
    assert_eq!(
        (balance(ia), balance(ib), balance(&ic)),
        (a0 - 13, b0 + 5, 7)
    );
    // A payee twice: refused whole, nobody paid.
    let err = stderr_failure(
        &mut node(&[
            "split",
            "--key",
            a_path,
            "--to",
            &format!("{ib}:1"),
            "--to",
            &format!("{ib}:1"),
        ]),
        3,
    );
    assert!(err.contains("PAYEES_NOT_SORTED"), "{err}");
    let err = stderr_failure(
        &mut node(&[
            "split",
            "--key",
            a_path,
            "--to",
            &format!("{ib}:1"),
            "--to",
            "4242:1",
        ]),
        3,
    );
    assert!(err.contains("UNKNOWN_ACCOUNT"), "{err}");
    assert_eq!((balance(ia), balance(ib)), (a0 - 13, b0 + 5));
    // Not ACCOUNT:AMOUNT: a usage error before anything is sent.
    let err = stderr_failure(&mut node(&["split", "--key", a_path, "--to", "7"]), 2);
    assert!(err.contains("ACCOUNT:AMOUNT"), "{err}");
}

/// `rollup stream …` (the node runs with --experimental-streams): the payer opens a stream
/// and ticks it, the payee watches and settles, a forged seed's ticks are refused, the payer
/// cannot close early, the payee closes and the rest of the escrow returns.
fn stream_commands(
    node: &dyn Fn(&[&str]) -> Command,
    endpoint: &str,
    dir: &std::path::Path,
    (a_path, ia): (&str, &str),
    (b_path, ib): (&str, &str),
) {
    let json = |text: String| -> serde_json::Value { serde_json::from_str(text.trim()).unwrap() };
    let balance = |who: &str| {
        json(stdout(&mut node(&["--json", "balance", "--account", who])))["balance"]
            .as_u64()
            .unwrap()
    };
    let file = dir.join("stream.json");
    let file = file.to_str().unwrap();
    let a_before = balance(ia);
    let opened = json(stdout(&mut node(&[
        "--json",
        "stream",
        "open",
        "--key",
        a_path,
        "--to",
        ib,
        "--price",
        "2",
        "--max-ticks",
        "100",
        "--slot",
        "1",
        "--out",
        file,
    ])));
    assert_eq!(opened["escrow"], 200, "{opened}");
    assert_eq!(opened["receipt"]["status"], "accepted", "{opened}");
    assert_eq!(
        balance(ia),
        a_before - 200,
        "the escrow left the payer's balance"
    );
    let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the stream file holds the seed: private");
    // A second open into the same file is refused before anything is signed.
    let err = stderr_failure(
        &mut node(&[
            "stream",
            "open",
            "--key",
            a_path,
            "--to",
            ib,
            "--price",
            "2",
            "--max-ticks",
            "5",
            "--slot",
            "2",
            "--out",
            file,
        ]),
        1,
    );
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(balance(ia), a_before - 200, "nothing opened");

    let shown = json(stdout(&mut node(&[
        "--json", "stream", "show", "--payer", ia, "--slot", "1",
    ])));
    assert_eq!(
        (&shown["settled"], &shown["escrow"], &shown["relayed"]),
        (
            &serde_json::json!(0),
            &serde_json::json!(200),
            &serde_json::Value::Null
        ),
        "{shown}"
    );

    // The payee watches; ticks sent before its subscription is in place are not shown, so
    // tick one at a time until the watch shows one (deadline), then ten more.
    let watch = Watch::start(endpoint, &["--key", b_path]);
    let mut seen = watch.first_tick(node, file);
    let ticked = json(stdout(&mut node(&[
        "--json", "stream", "tick", "--stream", file, "--count", "10",
    ])));
    let last = ticked["last"].as_u64().unwrap();
    assert_eq!(last, ticked["first"].as_u64().unwrap() + 9, "{ticked}");
    assert_eq!(ticked["owed"].as_u64(), Some(2 * last), "{ticked}");
    while seen["k"].as_u64() != Some(last) {
        seen = watch
            .lines
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the payee sees every accepted tick, the last one included");
    }
    assert_eq!(seen["payer"].to_string(), ia);
    drop(watch);

    // The payee settles the latest relayed tick: 2 per tick.
    let b_before = balance(ib);
    let settled = json(stdout(&mut node(&[
        "--json", "stream", "settle", "--key", b_path, "--payer", ia, "--slot", "1",
    ])));
    assert_eq!(
        (
            settled["from"].as_u64(),
            settled["to"].as_u64(),
            settled["paid"].as_u64()
        ),
        (Some(0), Some(last), Some(2 * last)),
        "{settled}"
    );
    assert_eq!(balance(ib), b_before + 2 * last);
    // Nothing new to settle: refused before signing anything.
    let err = stderr_failure(
        &mut node(&[
            "stream", "settle", "--key", b_path, "--payer", ia, "--slot", "1",
        ]),
        1,
    );
    assert!(err.contains("nothing to settle"), "{err}");

    // A stream file whose seed was changed makes ticks off the chain: refused by the relay.
    let text = std::fs::read_to_string(file).unwrap();
    let stored: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        stored["ticked"].as_u64(),
        Some(last),
        "the file records the last accepted tick"
    );
    let seed = stored["seed"].as_str().unwrap();
    let forged = dir.join("forged.json");
    let flipped = if seed.ends_with('1') { "2" } else { "1" };
    std::fs::write(
        &forged,
        text.replace(seed, &format!("{}{flipped}", &seed[..seed.len() - 1])),
    )
    .unwrap();
    let err = stderr_failure(
        &mut node(&["stream", "tick", "--stream", forged.to_str().unwrap()]),
        3,
    );
    assert!(err.contains("TICK_MISMATCH"), "{err}");

    // The payer may not close before expiry and the payee's hour; the payee may, any time.
    let err = stderr_failure(
        &mut node(&[
            "stream", "close", "--key", a_path, "--payer", ia, "--slot", "1",
        ]),
        3,
    );
    assert!(err.contains("CLOSE_TOO_EARLY"), "{err}");
    let a_before = balance(ia);
    let closed = json(stdout(&mut node(&[
        "--json", "stream", "close", "--key", b_path, "--payer", ia, "--slot", "1",
    ])));
    assert_eq!(
        closed["refunded"].as_u64(),
        Some(200 - 2 * last),
        "{closed}"
    );
    assert_eq!(balance(ia), a_before + 200 - 2 * last);
    let err = stderr_failure(
        &mut node(&["stream", "show", "--payer", ia, "--slot", "1"]),
        1,
    );
    assert!(err.contains("holds no open stream"), "{err}");

    // A payee that settles as it watches: every 4 unsettled ticks, without being asked.
    let err = stderr_failure(
        &mut node(&["stream", "watch", "--account", ib, "--settle-every", "4"]),
        2,
    );
    assert!(
        err.contains("--settle-every") && err.contains("cannot be used"),
        "settling needs the payee's key, not just its index: {err}"
    );
    let file2 = dir.join("stream2.json");
    let file2 = file2.to_str().unwrap();
    stdout(&mut node(&[
        "stream",
        "open",
        "--key",
        a_path,
        "--to",
        ib,
        "--price",
        "3",
        "--max-ticks",
        "50",
        "--slot",
        "2",
        "--out",
        file2,
    ]));
    let watch = Watch::start(endpoint, &["--key", b_path, "--settle-every", "4"]);
    let b_before = balance(ib);
    watch.first_tick(node, file2);
    stdout(&mut node(&[
        "stream", "tick", "--stream", file2, "--count", "4",
    ]));
    let settled = loop {
        let line = watch
            .lines
            .recv_timeout(std::time::Duration::from_secs(15))
            .expect("the watch settles within 15 s of the fourth unsettled tick");
        if line["event"] == "settled" {
            break line;
        }
    };
    drop(watch);
    let to = settled["to"].as_u64().unwrap();
    assert_eq!(settled["from"].as_u64(), Some(0), "{settled}");
    assert!(to >= 4, "{settled}");
    assert_eq!(settled["receipt"]["status"], "accepted", "{settled}");
    assert_eq!(balance(ib), b_before + 3 * to);
}

/// `rollup --json stream watch ARGS` running in the background, its output lines parsed; the
/// process is killed when this is dropped (a failed assertion included).
struct Watch {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Watch {
    fn start(endpoint: &str, args: &[&str]) -> Watch {
        use std::io::BufRead;
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rollup"))
            .env("ROLLUP_ENDPOINT", endpoint)
            .args(["--json", "stream", "watch"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel::<serde_json::Value>();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                    break;
                }
            }
        });
        Watch { child, lines }
    }

    /// Ticks the stream of `file` one tick at a time until the watch shows one (ticks sent
    /// before its subscription is in place are not shown), within 30 s; that first line.
    fn first_tick(&self, node: &dyn Fn(&[&str]) -> Command, file: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "the watch showed no tick in 30 s"
            );
            stdout(&mut node(&["stream", "tick", "--stream", file]));
            if let Ok(t) = self
                .lines
                .recv_timeout(std::time::Duration::from_millis(300))
            {
                return t;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
