//! The DATABASE_URL path (library and binary), the automatic choice, and the command line.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use devkit::ports::free_port;
use devkit::postgres::{
    database_name, drop_database, ensure_server, fresh_database, shared_server, PgError, PgOptions,
    PgSource, LOCAL_SERVER_URL,
};
use sqlx::{Connection, PgConnection};

const BIN: &str = env!("CARGO_BIN_EXE_rollup-devkit");

/// The binary with no Postgres settings inherited from the environment.
fn devkit() -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "DATABASE_URL",
        "ROLLUP_PG_PRIVATE",
        "ROLLUP_PG_DATA_DIR",
        "ROLLUP_PG_BIN_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

fn stdout_line(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout.clone()).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "stdout is exactly the result: {text:?}");
    lines[0].to_owned()
}

async fn select_one(url: &str) -> i32 {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let one = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .expect("SELECT 1");
    conn.close().await.expect("close");
    one
}

#[tokio::test]
async fn database_url_is_used_as_is() {
    // Some real server: DATABASE_URL in CI, else the local one, else the private cluster.
    let url = shared_server()
        .await
        .expect("a server")
        .admin_url()
        .to_owned();

    let server = ensure_server(&PgOptions {
        database_url: Some(url.clone()),
        ..PgOptions::default()
    })
    .await
    .expect("DATABASE_URL server");
    assert_eq!(server.source(), PgSource::External);
    assert_eq!(server.admin_url(), url);
    assert!(server.cluster().is_none());
    assert!(
        !server.stop().await.expect("stop"),
        "an external server is never stopped"
    );
    assert_eq!(select_one(server.admin_url()).await, 1);

    let db = fresh_database(server.admin_url(), "external")
        .await
        .expect("fresh database on the external server");
    assert_eq!(select_one(&db).await, 1);
    drop_database(server.admin_url(), &db).await.expect("drop");

    // The binary reads DATABASE_URL and prints it back.
    let output = devkit()
        .arg("postgres")
        .env("DATABASE_URL", &url)
        .output()
        .expect("run rollup-devkit");
    assert_eq!(stdout_line(&output), url);
}

#[tokio::test]
async fn a_dead_database_url_is_an_error_not_a_fallback() {
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", free_port());
    let err = ensure_server(&PgOptions {
        database_url: Some(url),
        ..PgOptions::default()
    })
    .await
    .expect_err("nothing listens there");
    assert!(matches!(err, PgError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("DATABASE_URL"), "{err}");

    let err = ensure_server(&PgOptions {
        database_url: Some("mysql://root@127.0.0.1/x".into()),
        ..PgOptions::default()
    })
    .await
    .expect_err("wrong scheme");
    assert!(matches!(err, PgError::InvalidUrl { .. }), "{err}");

    let output = devkit()
        .arg("postgres")
        .env("DATABASE_URL", "postgres://u:secret@127.0.0.1:1/x")
        .output()
        .expect("run rollup-devkit");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(!stderr.contains("secret"), "password leaked: {stderr}");
}

#[tokio::test]
async fn without_database_url_the_local_server_or_a_private_cluster_is_used() {
    let scratch = tempfile::Builder::new()
        .prefix("rollup-devkit-test-")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let server = ensure_server(&PgOptions {
        data_dir: Some(scratch.path().join("pg")),
        ..PgOptions::default()
    })
    .await
    .expect("a server");
    match server.source() {
        PgSource::Local => assert_eq!(server.admin_url(), LOCAL_SERVER_URL),
        PgSource::Private => {
            assert!(scratch.path().join("pg/PG_VERSION").is_file());
        }
        PgSource::External => panic!("no DATABASE_URL was given"),
    }
    assert_eq!(select_one(server.admin_url()).await, 1);
    server
        .stop()
        .await
        .expect("stop (no-op for the local server)");
}

#[tokio::test]
async fn command_line_create_db_and_free_port() {
    let admin = shared_server()
        .await
        .expect("a server")
        .admin_url()
        .to_owned();
    let name = format!("devkit_cli_{}", std::process::id());

    let create = |reset: bool| {
        let mut cmd = devkit();
        cmd.args(["create-db", "--admin-url", &admin, "--name", &name]);
        if reset {
            cmd.arg("--reset");
        }
        cmd.output().expect("run rollup-devkit create-db")
    };
    let url = stdout_line(&create(true));
    assert_eq!(database_name(&url).expect("name"), name);
    assert_eq!(select_one(&url).await, 1);
    assert_eq!(stdout_line(&create(false)), url, "idempotent");
    drop_database(&admin, &name).await.expect("drop");

    let bad = devkit()
        .args(["create-db", "--admin-url", &admin, "--name", "no good"])
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid database name"));

    let port: u16 = stdout_line(&devkit().arg("free-port").output().expect("run"))
        .parse()
        .expect("a port number");
    assert!(devkit::ports::is_port_free(port));

    let help = devkit().arg("--help").output().expect("run --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for command in ["postgres", "postgres-stop", "create-db", "free-port"] {
        assert!(help.contains(command), "{command} missing from --help");
    }
}
