//! Developer bootstrap for the rollup: the Postgres server the devnet and the integration tests
//! use, per-test databases, free ports, and anvil (the devnet L1, [`anvil::Anvil`]).
//!
//! Postgres comes from, in order (see [`postgres::ensure_server`]):
//! 1. `DATABASE_URL` when it is set;
//! 2. a server answering on 127.0.0.1:5432 as user `postgres` without a password;
//! 3. a private cluster this crate creates in a data folder with the machine's `initdb`/`pg_ctl`
//!    (forced with `ROLLUP_PG_PRIVATE=1` or `rollup-devkit postgres --private`).
//!
//! Integration tests call [`postgres::test_database`] for a fresh, uniquely named database.

pub mod anvil;
pub mod node;
pub mod ports;
pub mod postgres;
