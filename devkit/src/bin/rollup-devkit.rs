//! `rollup-devkit`: the Postgres bootstrap used by the devnet script and by hand.
//!
//! Results (URLs, ports) go to stdout, one per line, so scripts can capture them; logs go to
//! stderr.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use devkit::postgres::{self, PgOptions, PrivateCluster};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "rollup-devkit",
    version,
    about = "Development bootstrap for the rollup: Postgres servers, databases and free ports",
    long_about = "Development bootstrap for the rollup: Postgres servers, databases and free ports.\n\n\
        Results (URLs, port numbers) are printed on stdout, logs on stderr; set RUST_LOG \
        (e.g. RUST_LOG=debug) for more detail.\n\n\
        Example: export DATABASE_URL=\"$(cargo run -q -p rollup-devkit -- postgres)\""
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Make sure a Postgres server is available and print its admin URL.
    ///
    /// Uses, in order: DATABASE_URL when set; a server answering on 127.0.0.1:5432 as user
    /// `postgres` without a password; otherwise a private cluster in the data folder, created with
    /// the machine's initdb on first use and started with pg_ctl (as the `postgres` system user
    /// when run as root). The private cluster listens on a free port of 127.0.0.1 and is left
    /// running; stop it with `rollup-devkit postgres-stop`.
    Postgres {
        /// Data folder of the private cluster [default: <workspace>/.devnet/postgres].
        #[arg(long, value_name = "DIR", env = "ROLLUP_PG_DATA_DIR")]
        data_dir: Option<PathBuf>,

        /// Always use the private cluster, ignoring DATABASE_URL and any server on port 5432.
        #[arg(
            long,
            env = "ROLLUP_PG_PRIVATE",
            value_parser = flag_value
        )]
        private: bool,

        /// Use this existing server (printed back as is) instead of finding or starting one.
        #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,

        /// Do not try the server on 127.0.0.1:5432.
        #[arg(long)]
        no_local: bool,

        /// Folder holding initdb and pg_ctl [default: search PATH, then /usr/lib/postgresql/*/bin].
        #[arg(long, value_name = "DIR", env = "ROLLUP_PG_BIN_DIR")]
        bin_dir: Option<PathBuf>,
    },

    /// Stop the private cluster in the data folder (`pg_ctl stop -m fast`); the data is kept and
    /// the next `postgres` starts it again. Does nothing when it is not running.
    PostgresStop {
        /// Data folder of the private cluster [default: <workspace>/.devnet/postgres].
        #[arg(long, value_name = "DIR", env = "ROLLUP_PG_DATA_DIR")]
        data_dir: Option<PathBuf>,

        /// Folder holding pg_ctl [default: search PATH, then /usr/lib/postgresql/*/bin].
        #[arg(long, value_name = "DIR", env = "ROLLUP_PG_BIN_DIR")]
        bin_dir: Option<PathBuf>,
    },

    /// Create a database and print its URL. An existing database is kept unless --reset.
    CreateDb {
        /// Admin connection to the server (a role allowed to create databases).
        #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
        admin_url: String,

        /// Name of the database: ASCII letters, digits, `_` and `-`, starting with a letter or `_`,
        /// at most 63 bytes.
        #[arg(long, value_name = "NAME")]
        name: String,

        /// Drop the database first if it exists (its sessions are disconnected).
        #[arg(long)]
        reset: bool,
    },

    /// Print a TCP port on 127.0.0.1 that is free right now.
    FreePort,
}

/// Values of the `ROLLUP_PG_PRIVATE` flag, read like the library does (empty, `0`, `false`, `no`,
/// `off` are false).
fn flag_value(value: &str) -> Result<bool, std::convert::Infallible> {
    Ok(postgres::env_flag(value))
}

/// An empty path from the environment means "not set".
fn non_empty(path: Option<PathBuf>) -> Option<PathBuf> {
    path.filter(|p| !p.as_os_str().is_empty())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Postgres {
            data_dir,
            private,
            database_url,
            no_local,
            bin_dir,
        } => {
            let opts = PgOptions {
                database_url: database_url.filter(|u| !u.is_empty()),
                force_private: private,
                probe_local: !no_local,
                data_dir: non_empty(data_dir),
                bin_dir: non_empty(bin_dir),
            };
            let server = postgres::ensure_server(&opts)
                .await
                .context("no Postgres server available")?;
            if let Some(cluster) = server.cluster() {
                tracing::info!(
                    data_dir = %cluster.data_dir().display(),
                    log = %cluster.log_file().display(),
                    "stop it with: rollup-devkit postgres-stop --data-dir {}",
                    cluster.data_dir().display()
                );
            }
            println!("{}", server.admin_url());
        }
        Cmd::PostgresStop { data_dir, bin_dir } => {
            let stopped = tokio::task::spawn_blocking(move || {
                PrivateCluster::stop_dir(non_empty(data_dir), non_empty(bin_dir).as_deref())
            })
            .await
            .context("the stop task failed")?
            .context("cannot stop the private cluster")?;
            if !stopped {
                tracing::info!("nothing to stop");
            }
        }
        Cmd::CreateDb {
            admin_url,
            name,
            reset,
        } => {
            let url = postgres::create_database(&admin_url, &name, reset)
                .await
                .with_context(|| format!("cannot create database {name}"))?;
            println!("{url}");
        }
        Cmd::FreePort => {
            let port = devkit::ports::try_free_port().context("no free port on 127.0.0.1")?;
            println!("{port}");
        }
    }
    Ok(())
}
