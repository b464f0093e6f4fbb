#!/usr/bin/env bash
# Installs what the build and tests need, idempotently. CI starts from a clean clone, so every
# install step lives here rather than in anyone's head.
set -euo pipefail

need() { command -v "$1" >/dev/null 2>&1; }

if ! need cargo; then
  echo "error: cargo not found. Install Rust with rustup (https://rustup.rs), then rerun." >&2
  exit 1
fi
for comp in rustfmt clippy; do
  if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
    if need rustup; then
      rustup component add "$comp"
    else
      echo "error: cargo $comp is missing and rustup is not available to add it." >&2
      exit 1
    fi
  fi
done

# Postgres: the devnet and the integration tests use DATABASE_URL, a server on 127.0.0.1:5432,
# or a private cluster started with initdb/pg_ctl (rollup-devkit). Install the server binaries
# only when none of those can work.
have_pg_bins() {
  need initdb && need pg_ctl && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null 2>&1
}
local_pg_up() {
  (exec 3<>/dev/tcp/127.0.0.1/5432) >/dev/null 2>&1
}
if [ -z "${DATABASE_URL:-}" ] && ! local_pg_up && ! have_pg_bins; then
  if [ "$(id -u)" = 0 ] && need apt-get; then
    echo "==> installing PostgreSQL server binaries (apt-get install postgresql)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "error: no Postgres available. Set DATABASE_URL, run a server on 127.0.0.1:5432," >&2
    echo "       or install the server binaries (e.g. 'sudo apt-get install postgresql')." >&2
    exit 1
  fi
fi

# The L1 toolchain (solc-js, forge, anvil) in bridge/node_modules.
"$(dirname "$0")/ensure-l1-tools.sh"

# The independent gRPC client of interop/run.sh: a Python venv (.venv-interop) with pinned
# grpcio, grpcio-reflection, grpcio-health-checking and protobuf from PyPI.
"$(dirname "$0")/../interop/ensure-venv.sh"
