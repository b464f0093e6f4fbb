use std::path::PathBuf;

/// Result of the Postgres helpers.
pub type Result<T, E = PgError> = std::result::Result<T, E>;

/// What can go wrong while finding, starting or using a Postgres server. Each message says what
/// to do about it, and includes the underlying error's text (so the underlying errors are fields,
/// not `source()`, to keep error chains from repeating them).
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "PostgreSQL server programs (initdb, pg_ctl) not found {searched}. Install them \
         (Debian/Ubuntu: `apt-get install postgresql`; Fedora/RHEL: `dnf install postgresql-server`; \
         macOS: `brew install postgresql`), point ROLLUP_PG_BIN_DIR at the folder holding them, \
         or set DATABASE_URL to an existing server"
    )]
    BinariesNotFound {
        /// Where they were looked for ("on PATH or under ...", "in DIR").
        searched: String,
    },

    #[error(
        "the data folder {data_dir} holds a PostgreSQL {data_version} cluster but only version \
         {bin_version} programs were found ({bin_dir}); install PostgreSQL {data_version} \
         (e.g. `apt-get install postgresql-{data_version}`), or delete the folder to start over"
    )]
    VersionMismatch {
        data_dir: PathBuf,
        data_version: String,
        bin_version: String,
        bin_dir: PathBuf,
    },

    #[error(
        "{path} exists, is not empty and is not a PostgreSQL data folder (no PG_VERSION); choose \
         another data folder or delete it"
    )]
    NotACluster { path: PathBuf },

    #[error(
        "running as root, so the private cluster must run as the `postgres` system user, which does \
         not exist here; install PostgreSQL from the distribution (`apt-get install postgresql` \
         creates it), create the user, or run as an ordinary user"
    )]
    NoPostgresUser,

    #[error(
        "the `postgres` system user cannot reach {path} (a parent folder is not searchable by it); \
         choose a data folder it can reach, e.g. `--data-dir /tmp/rollup-pg` or \
         ROLLUP_PG_DATA_DIR=/tmp/rollup-pg"
    )]
    NotAccessible { path: PathBuf },

    #[error(
        "the data folder {data_dir} is owned by uid {owner}, but the cluster must run as uid \
         {expected}; fix the owner (`chown -R`) or choose another data folder"
    )]
    WrongOwner {
        data_dir: PathBuf,
        owner: u32,
        expected: u32,
    },

    #[error("the private Postgres cluster in {data_dir} did not start: {reason}\n--- last lines of {log} ---\n{log_tail}")]
    StartFailed {
        data_dir: PathBuf,
        reason: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error("`{command}` failed ({status}){output}")]
    Command {
        command: String,
        status: String,
        /// Captured output, formatted for the message (":\n..." or empty).
        output: String,
    },

    #[error("timed out after {seconds} s waiting for the lock {path} (another process is starting or stopping the same cluster)")]
    LockTimeout { path: PathBuf, seconds: u64 },

    #[error("invalid database URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("invalid database name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },

    #[error("cannot connect to {what} at {url}: {error}")]
    Connect {
        what: &'static str,
        url: String,
        error: Box<sqlx::Error>,
    },

    #[error("{context}: {error}")]
    Sql {
        context: String,
        error: Box<sqlx::Error>,
    },

    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },
}

impl PgError {
    pub(crate) fn io(context: impl Into<String>, error: std::io::Error) -> Self {
        PgError::Io {
            context: context.into(),
            error,
        }
    }

    pub(crate) fn sql(context: impl Into<String>, error: sqlx::Error) -> Self {
        PgError::Sql {
            context: context.into(),
            error: Box::new(error),
        }
    }
}
