#!/usr/bin/env bash
# Regenerates .sqlx/, the offline data of the compile-checked queries (`sqlx::query!` in
# storage/). Builds never need a database: .cargo/config.toml sets SQLX_OFFLINE=true, and a
# query whose text or types changed without a new .sqlx/ entry fails to compile.
#
# Run after changing a `query!` or a migration, then commit .sqlx/:
#   scripts/sqlx-prepare.sh
# It installs sqlx-cli (pinned, into .devnet/tools), starts the devkit's Postgres (DATABASE_URL,
# a server on 127.0.0.1:5432, or a private cluster), migrates a scratch database and runs
# `cargo sqlx prepare --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."

SQLX_VERSION=0.8.6
TOOLS="$PWD/.devnet/tools"
if ! "$TOOLS/bin/sqlx" --version 2>/dev/null | grep -q " $SQLX_VERSION"; then
  echo "installing sqlx-cli $SQLX_VERSION into $TOOLS" >&2
  cargo install sqlx-cli --version "=$SQLX_VERSION" --locked --no-default-features \
    --features rustls,postgres --root "$TOOLS"
fi
export PATH="$TOOLS/bin:$PATH"

admin="$(cargo run -q -p rollup-devkit -- postgres)"
DATABASE_URL="$(cargo run -q -p rollup-devkit -- create-db --admin-url "$admin" --name sqlx_prepare --reset)"
export DATABASE_URL
sqlx migrate run --source storage/migrations
# The macros must see the database here, whatever .cargo/config.toml says.
SQLX_OFFLINE=false cargo sqlx prepare --workspace -- --all-targets
echo "updated .sqlx/ ($(ls .sqlx | wc -l) queries); commit it" >&2
