//! Fresh, named and dropped databases on the process's shared server (DATABASE_URL, the local
//! server or the private cluster, whichever `test_database` picks here).

use devkit::postgres::{
    create_database, database_name, drop_database, shared_server, test_database, PgError,
};
use sqlx::{Connection, PgConnection};

async fn exists(admin_url: &str, name: &str) -> bool {
    let mut conn = PgConnection::connect(admin_url)
        .await
        .expect("admin connect");
    let found: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .expect("query pg_database");
    conn.close().await.expect("close");
    found
}

async fn table_count(url: &str) -> i64 {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let n = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("count tables");
    conn.close().await.expect("close");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_databases_are_distinct_and_isolated() {
    let admin = shared_server()
        .await
        .expect("a server")
        .admin_url()
        .to_owned();

    let urls = futures_join(5, "distinct").await;
    let names: Vec<String> = urls
        .iter()
        .map(|u| database_name(u).expect("name"))
        .collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    for name in &names {
        assert!(name.starts_with("distinct_"), "{name}");
        assert!(
            name.contains(&format!("_{}_", std::process::id())),
            "{name}"
        );
        assert!(exists(&admin, name).await, "{name} missing");
    }

    // A table in one is not seen in another.
    {
        let mut conn = PgConnection::connect(&urls[0]).await.expect("connect");
        sqlx::query("CREATE TABLE only_here (x int)")
            .execute(&mut conn)
            .await
            .expect("create table");
        conn.close().await.expect("close");
    }
    assert_eq!(table_count(&urls[0]).await, 1);
    assert_eq!(table_count(&urls[1]).await, 0);

    // Dropping (by URL or by name) removes them, even with a session open.
    let open = PgConnection::connect(&urls[0]).await.expect("connect");
    drop_database(&admin, &urls[0]).await.expect("drop by URL");
    drop(open);
    for name in &names[1..] {
        drop_database(&admin, name).await.expect("drop by name");
    }
    for name in &names {
        assert!(!exists(&admin, name).await, "{name} still there");
    }
    drop_database(&admin, &names[0])
        .await
        .expect("dropping a missing database is fine");
}

async fn futures_join(n: usize, prefix: &str) -> Vec<String> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let prefix = prefix.to_owned();
            tokio::spawn(async move { test_database(&prefix).await })
        })
        .collect();
    let mut urls = Vec::new();
    for task in tasks {
        urls.push(task.await.expect("task").expect("test_database"));
    }
    urls
}

#[tokio::test]
async fn named_database_is_kept_or_reset() {
    let admin = shared_server()
        .await
        .expect("a server")
        .admin_url()
        .to_owned();
    let name = format!("devkit_named_{}", std::process::id());

    let url = create_database(&admin, &name, true).await.expect("create");
    assert_eq!(database_name(&url).expect("name"), name);
    {
        let mut conn = PgConnection::connect(&url).await.expect("connect");
        sqlx::query("CREATE TABLE t (x int)")
            .execute(&mut conn)
            .await
            .expect("create table");
        conn.close().await.expect("close");
    }
    let again = create_database(&admin, &name, false)
        .await
        .expect("create again");
    assert_eq!(again, url);
    assert_eq!(table_count(&url).await, 1, "kept without --reset");

    create_database(&admin, &name, true).await.expect("reset");
    assert_eq!(table_count(&url).await, 0, "empty after --reset");

    drop_database(&admin, &name).await.expect("drop");
    assert!(!exists(&admin, &name).await);
}

#[tokio::test]
async fn bad_names_and_the_admin_database_are_refused() {
    let admin = shared_server()
        .await
        .expect("a server")
        .admin_url()
        .to_owned();
    for bad in ["", "1x", "a\"b", "a b", "x;DROP"] {
        let err = create_database(&admin, bad, false)
            .await
            .expect_err("bad name");
        assert!(matches!(err, PgError::InvalidName { .. }), "{bad:?}: {err}");
    }
    let admin_db = database_name(&admin).expect("admin db name");
    let err = drop_database(&admin, &admin_db)
        .await
        .expect_err("the admin database cannot be dropped");
    assert!(matches!(err, PgError::InvalidName { .. }), "{err}");
}
