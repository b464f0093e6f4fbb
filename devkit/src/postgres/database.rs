//! Creating and dropping databases, and the URL helpers around them.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use sqlx::{Connection, PgConnection};
use url::Url;

use super::{PgError, Result};

/// Longest identifier Postgres keeps (NAMEDATALEN - 1).
const MAX_NAME_LEN: usize = 63;

/// Checks that `url` is a `postgres://` or `postgresql://` URL.
pub(crate) fn check_url(url: &str) -> Result<Url> {
    let parsed = Url::parse(url).map_err(|err| PgError::InvalidUrl {
        url: redact_url(url),
        reason: err.to_string(),
    })?;
    match parsed.scheme() {
        "postgres" | "postgresql" => Ok(parsed),
        other => Err(PgError::InvalidUrl {
            url: redact_url(url),
            reason: format!("scheme {other:?} is not postgres:// or postgresql://"),
        }),
    }
}

/// `url` with any password replaced by `***`, for logs and error messages. Text that does not
/// parse as a URL is returned as is (it holds no recognisable password).
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only fails for URLs that cannot have a password, which this one has.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The URL of database `name` on the server of `admin_url` (same host, user, password and
/// parameters; a `dbname` parameter is replaced too).
pub fn database_url(admin_url: &str, name: &str) -> Result<String> {
    check_name(name)?;
    let mut url = check_url(admin_url)?;
    url.set_path(&format!("/{name}"));
    let had_dbname = url.query_pairs().any(|(k, _)| k == "dbname");
    if had_dbname {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "dbname" {
                    name.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    Ok(url.to_string())
}

/// The database a URL points at (`dbname` parameter first, then the path; the user name when
/// neither is given, as libpq does).
pub fn database_name(url: &str) -> Result<String> {
    let parsed = check_url(url)?;
    if let Some((_, v)) = parsed.query_pairs().find(|(k, _)| k == "dbname") {
        return Ok(v.into_owned());
    }
    let path = parsed.path().trim_start_matches('/');
    if !path.is_empty() {
        return percent_decode(path).ok_or_else(|| PgError::InvalidUrl {
            url: redact_url(url),
            reason: "the database name is not valid percent-encoded UTF-8".into(),
        });
    }
    if !parsed.username().is_empty() {
        return Ok(parsed.username().to_owned());
    }
    Err(PgError::InvalidUrl {
        url: redact_url(url),
        reason: "it names no database".into(),
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Database names this crate creates: ASCII letters, digits, `_` and `-`, starting with a letter
/// or `_`, at most 63 bytes. They are always double-quoted in SQL, so case is kept.
fn check_name(name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(PgError::InvalidName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    let Some(first) = name.chars().next() else {
        return bad("it is empty");
    };
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 63 bytes");
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return bad("it must start with a letter or `_`");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return bad("only ASCII letters, digits, `_` and `-` are allowed");
    }
    Ok(())
}

/// A name no other call (in this or another process) returns: `prefix_pid_counter_random`.
fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random: u32 = rand::thread_rng().gen();
    let suffix = format!("_{}_{n}_{random:08x}", std::process::id());

    let mut clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        clean.push_str("db");
    }
    if !clean.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        clean.insert(0, 'd');
    }
    clean.truncate(MAX_NAME_LEN.saturating_sub(suffix.len()));
    clean + &suffix
}

/// Connects to the admin database.
async fn admin_connection(admin_url: &str) -> Result<PgConnection> {
    check_url(admin_url)?;
    PgConnection::connect(admin_url)
        .await
        .map_err(|source| PgError::Connect {
            what: "the admin database",
            url: redact_url(admin_url),
            error: Box::new(source),
        })
}

async fn exists(conn: &mut PgConnection, name: &str) -> Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(conn)
        .await
        .map_err(|err| PgError::sql(format!("checking whether database {name} exists"), err))
}

async fn create(conn: &mut PgConnection, name: &str) -> Result<()> {
    // `name` passed check_name: no quote can appear in it.
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(conn)
        .await
        .map_err(|err| {
            PgError::sql(
                format!("creating database {name} (the admin user needs CREATEDB)"),
                err,
            )
        })?;
    Ok(())
}

async fn drop_named(conn: &mut PgConnection, name: &str) -> Result<()> {
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut *conn)
        .await
        .map_err(|err| PgError::sql("reading the server version", err))?;
    let sql = if version >= 130_000 {
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")
    } else {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(|err| PgError::sql(format!("disconnecting sessions of {name}"), err))?;
        format!("DROP DATABASE IF EXISTS \"{name}\"")
    };
    sqlx::query(&sql)
        .execute(conn)
        .await
        .map_err(|err| PgError::sql(format!("dropping database {name}"), err))?;
    Ok(())
}

/// Creates a new, uniquely named database (`prefix` + process id + counter + random characters)
/// on the server of `admin_url` and returns its URL.
pub async fn fresh_database(admin_url: &str, prefix: &str) -> Result<String> {
    let name = unique_name(prefix);
    let url = database_url(admin_url, &name)?;
    let mut conn = admin_connection(admin_url).await?;
    create(&mut conn, &name).await?;
    let _ = conn.close().await;
    tracing::debug!(database = %name, "created a fresh database");
    Ok(url)
}

/// Creates database `name` on the server of `admin_url` and returns its URL. An existing database
/// is kept, unless `reset`, which drops it (disconnecting its sessions) and creates it again.
pub async fn create_database(admin_url: &str, name: &str, reset: bool) -> Result<String> {
    let url = database_url(admin_url, name)?;
    let mut conn = admin_connection(admin_url).await?;
    if exists(&mut conn, name).await? {
        if reset {
            tracing::info!(database = name, "dropping the existing database (--reset)");
            drop_named(&mut conn, name).await?;
            create(&mut conn, name).await?;
        } else {
            tracing::info!(database = name, "database exists; keeping it");
        }
    } else {
        create(&mut conn, name).await?;
        tracing::info!(database = name, "created database");
    }
    let _ = conn.close().await;
    Ok(url)
}

/// Drops a database (disconnecting its sessions first). `database` is a name or a URL whose
/// database is meant. Dropping a database that does not exist is not an error.
pub async fn drop_database(admin_url: &str, database: &str) -> Result<()> {
    let name = if database.contains("://") {
        database_name(database)?
    } else {
        database.to_owned()
    };
    check_name(&name)?;
    if name == database_name(admin_url)? {
        return Err(PgError::InvalidName {
            name,
            reason: "it is the admin database itself".into(),
        });
    }
    let mut conn = admin_connection(admin_url).await?;
    drop_named(&mut conn, &name).await?;
    let _ = conn.close().await;
    tracing::debug!(database = %name, "dropped database");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_for_another_database() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "t_1").unwrap(),
            "postgres://postgres@127.0.0.1:5432/t_1"
        );
        assert_eq!(
            database_url("postgresql://u:p%40ss@db:6000/admin?sslmode=disable", "x").unwrap(),
            "postgresql://u:p%40ss@db:6000/x?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://u@h/?dbname=a&sslmode=disable", "b").unwrap(),
            "postgres://u@h/b?dbname=b&sslmode=disable"
        );
        assert!(database_url("mysql://u@h/a", "b").is_err());
        assert!(database_url("postgres://u@h/a", "bad\"name").is_err());
    }

    #[test]
    fn names_from_urls() {
        assert_eq!(database_name("postgres://u@h:1/abc").unwrap(), "abc");
        assert_eq!(database_name("postgres://u@h:1/?dbname=q").unwrap(), "q");
        assert_eq!(database_name("postgres://u@h:1").unwrap(), "u");
        assert_eq!(database_name("postgres://u@h/a%20b").unwrap(), "a b");
    }

    #[test]
    fn unique_names_are_valid_and_distinct() {
        let a = unique_name("Sequencer Tests!");
        let b = unique_name("Sequencer Tests!");
        assert_ne!(a, b);
        assert!(a.starts_with("sequencer_tests__"), "{a}");
        check_name(&a).unwrap();
        let long = unique_name(&"x".repeat(200));
        assert!(long.len() <= MAX_NAME_LEN);
        check_name(&long).unwrap();
        check_name(&unique_name("")).unwrap();
        check_name(&unique_name("9lives")).unwrap();
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("ok_Name-1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("1abc").is_err());
        assert!(check_name("a;drop").is_err());
        assert!(check_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
