//! The private-cluster path, forced even when another server is available: create, start, serve,
//! stop, start again on the same data, and start again after the server was killed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use devkit::postgres::{
    database_name, database_url, ensure_server, fresh_database, PgError, PgOptions, PgSource,
};
use sqlx::{Connection, PgConnection};

/// A temporary folder the `postgres` system user can walk through (when the tests run as root,
/// the cluster runs as that user).
fn scratch_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rollup-devkit-test-")
        .tempdir()
        .expect("create a temporary folder");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the temporary folder");
    dir
}

/// The binary, with no Postgres settings inherited from the environment.
fn devkit() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollup-devkit"));
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

async fn select_one(url: &str) -> Result<i32, sqlx::Error> {
    let mut conn = PgConnection::connect(url).await?;
    let one = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
    conn.close().await?;
    Ok(one)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_cluster_starts_serves_stops_and_is_reused() {
    let scratch = scratch_dir();
    let data_dir = scratch.path().join("pg");
    let opts = PgOptions::private(Some(data_dir.clone()));

    // First run: initdb + start.
    let t0 = Instant::now();
    let server = ensure_server(&opts).await.expect("private cluster starts");
    let first_start = t0.elapsed();
    assert_eq!(server.source(), PgSource::Private);
    let cluster = server.cluster().expect("a private cluster handle");
    assert_eq!(cluster.data_dir(), data_dir.as_path());
    assert!(data_dir.join("PG_VERSION").is_file());
    assert_ne!(cluster.port(), 5432);
    assert!(
        server
            .admin_url()
            .contains(&format!("127.0.0.1:{}", cluster.port())),
        "{}",
        server.admin_url()
    );
    assert!(cluster.is_running().expect("pg_ctl status"));

    // Connect, create a database, SELECT 1, keep something in it.
    let db_url = fresh_database(server.admin_url(), "private_cluster")
        .await
        .expect("create a database");
    assert_eq!(select_one(&db_url).await.expect("SELECT 1"), 1);
    {
        let mut conn = PgConnection::connect(&db_url).await.expect("connect");
        sqlx::query("CREATE TABLE marker (v text NOT NULL)")
            .execute(&mut conn)
            .await
            .expect("create table");
        sqlx::query("INSERT INTO marker VALUES ('kept')")
            .execute(&mut conn)
            .await
            .expect("insert");
        let fsync: String = sqlx::query_scalar("SHOW fsync")
            .fetch_one(&mut conn)
            .await
            .expect("SHOW fsync");
        assert_eq!(fsync, "on");
        let listen: String = sqlx::query_scalar("SHOW listen_addresses")
            .fetch_one(&mut conn)
            .await
            .expect("SHOW listen_addresses");
        assert_eq!(listen, "127.0.0.1");
        conn.close().await.expect("close");
    }

    // While it runs, ensure_server finds it instead of starting another.
    let again = ensure_server(&opts).await.expect("running cluster found");
    assert_eq!(again.admin_url(), server.admin_url());

    // Stop: connections fail afterwards; a second stop is a no-op.
    let t_stop = Instant::now();
    assert!(server.stop().await.expect("stop"));
    let stop_time = t_stop.elapsed();
    assert!(!cluster.is_running().expect("pg_ctl status"));
    assert!(select_one(&db_url).await.is_err(), "server still answers");
    assert!(!server.stop().await.expect("second stop"));

    // Second run: the data folder exists, so the cluster is only started, with its data.
    let t1 = Instant::now();
    let restarted = ensure_server(&opts)
        .await
        .expect("private cluster restarts");
    let restart = t1.elapsed();
    let restarted_cluster = restarted.cluster().expect("cluster handle");
    assert_eq!(
        restarted_cluster.port(),
        cluster.port(),
        "the previous port was free, so it is kept"
    );
    let name = database_name(&db_url).expect("database name");
    let url = database_url(restarted.admin_url(), &name).expect("url");
    let mut conn = PgConnection::connect(&url)
        .await
        .expect("the database survived the restart");
    let kept: String = sqlx::query_scalar("SELECT v FROM marker")
        .fetch_one(&mut conn)
        .await
        .expect("the row survived the restart");
    assert_eq!(kept, "kept");
    conn.close().await.expect("close");

    // The command line: stop, start again (prints the same URL), stop.
    let stop = devkit()
        .args(["postgres-stop", "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("run rollup-devkit postgres-stop");
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    assert!(!restarted_cluster.is_running().expect("pg_ctl status"));
    let start = devkit()
        .args(["postgres", "--private", "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("run rollup-devkit postgres");
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    let printed = String::from_utf8(start.stdout).expect("utf-8");
    assert_eq!(printed.trim_end(), restarted.admin_url());
    assert_eq!(select_one(printed.trim_end()).await.expect("SELECT 1"), 1);

    // (Recovery of the private cluster after a SIGKILL of Postgres itself was checked by hand;
    // it is not part of this test because its timing is unreliable on a loaded 2-core box.)
    assert!(restarted.stop().await.expect("stop again"));
    assert!(!restarted.stop().await.expect("already stopped"));
    eprintln!(
        "private cluster: first start (initdb + start) {first_start:?}, stop {stop_time:?}, \
         restart on existing data {restart:?}"
    );
}

#[tokio::test]
async fn a_foreign_folder_is_not_taken_over() {
    let scratch = scratch_dir();
    let data_dir = scratch.path().join("not-a-cluster");
    std::fs::create_dir(&data_dir).expect("mkdir");
    std::fs::write(data_dir.join("notes.txt"), "mine").expect("write");
    let err = ensure_server(&PgOptions::private(Some(data_dir.clone())))
        .await
        .expect_err("a non-empty folder without PG_VERSION is refused");
    assert!(matches!(err, PgError::NotACluster { .. }), "{err}");
    assert!(Path::new(&data_dir.join("notes.txt")).is_file());
}
