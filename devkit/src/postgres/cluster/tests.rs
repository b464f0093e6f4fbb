use std::process::Command;

use super::binaries::{parse_major, pick_binaries};
use super::data_dir::{clear_stale_lock_files, conf_quote, existing_cluster, process_alive};
use super::locking::lock_path;
use super::*;

#[test]
fn parses_versions() {
    assert_eq!(
        parse_major("pg_ctl (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n").as_deref(),
        Some("15")
    );
    assert_eq!(
        parse_major("pg_ctl (PostgreSQL) 17.2\n").as_deref(),
        Some("17")
    );
    assert_eq!(
        parse_major("pg_ctl (PostgreSQL) 9.6.24\n").as_deref(),
        Some("9.6")
    );
    assert_eq!(
        parse_major("pg_ctl (PostgreSQL) 18beta1\n").as_deref(),
        Some("18")
    );
    assert_eq!(parse_major("garbage"), None);
}

#[test]
fn missing_binaries_say_how_to_install() {
    let err = pick_binaries(
        vec![PathBuf::from("/nonexistent/bin")],
        None,
        "in /nonexistent/bin",
    )
    .expect_err("no binaries there");
    let message = err.to_string();
    assert!(message.contains("apt-get install postgresql"), "{message}");
    assert!(message.contains("DATABASE_URL"), "{message}");
}

#[test]
fn finds_the_machine_binaries() {
    // The development machine and CI have PostgreSQL installed (scripts/ensure-tools.sh).
    let Ok(bins) = locate_binaries(None, None) else {
        eprintln!("PostgreSQL server programs not installed; skipping");
        return;
    };
    assert!(bins.initdb.ends_with("initdb"));
    assert!(bins.pg_ctl.ends_with("pg_ctl"));
    assert!(!bins.major.is_empty());
    let wrong = locate_binaries(None, Some("8.4")).expect_err("no 8.4 here");
    assert!(matches!(wrong, PgError::VersionMismatch { .. }), "{wrong}");
}

#[test]
fn processes_alive_or_not() {
    assert!(process_alive(std::process::id()));
    // A child that exited and was not waited for is a zombie.
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!process_alive(pid), "zombie {pid} counted as alive");
    child.wait().expect("reap");
    assert!(!process_alive(pid), "reaped {pid} counted as alive");
}

#[test]
fn stale_lock_files_of_a_dead_server_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead = child.id();
    child.wait().expect("reap");
    let data = dir.path();
    let pid_file = format!(
        "{dead}\n{}\n0\n5433\n{}\n127.0.0.1\n",
        data.display(),
        data.display()
    );
    fs::write(data.join("postmaster.pid"), pid_file).expect("write pid file");
    fs::write(data.join(".s.PGSQL.5433.lock"), format!("{dead}\n")).expect("write");
    fs::write(data.join(".s.PGSQL.5434.lock"), "1\n").expect("write");
    clear_stale_lock_files(data).expect("clear");
    assert!(!data.join("postmaster.pid").exists());
    assert!(!data.join(".s.PGSQL.5433.lock").exists());
    assert!(
        data.join(".s.PGSQL.5434.lock").exists(),
        "another server's lock is kept"
    );

    // A live owner keeps its files.
    let me = std::process::id();
    fs::write(data.join("postmaster.pid"), format!("{me}\n")).expect("write");
    clear_stale_lock_files(data).expect("clear");
    assert!(data.join("postmaster.pid").exists());
}

#[test]
fn conf_values_are_quoted() {
    assert_eq!(conf_quote("/tmp/a b"), "'/tmp/a b'");
    assert_eq!(conf_quote("it's"), "'it''s'");
}

#[test]
fn lock_file_sits_next_to_the_folder() {
    assert_eq!(
        lock_path(Path::new("/x/.devnet/postgres")),
        PathBuf::from("/x/.devnet/postgres.lock")
    );
}

#[test]
fn empty_and_foreign_folders() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        existing_cluster(&dir.path().join("missing")).expect("missing"),
        None
    );
    assert_eq!(existing_cluster(dir.path()).expect("empty"), None);
    fs::write(dir.path().join("x"), "x").expect("write");
    assert!(matches!(
        existing_cluster(dir.path()),
        Err(PgError::NotACluster { .. })
    ));
    fs::write(dir.path().join("PG_VERSION"), "15\n").expect("write");
    assert_eq!(
        existing_cluster(dir.path()).expect("cluster").as_deref(),
        Some("15")
    );
}
