#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls exactly this).
# Everything it needs is installed by scripts/ensure-tools.sh, so it works on a clean machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every phase line carries the seconds since the start, so a slow run says where its time went.
T0=$(date +%s)
phase() { echo "==> [+$(($(date +%s) - T0))s] $*"; }

scripts/ensure-tools.sh

if [ "${CI:-}" = "true" ]; then
  # A clean build gains nothing from incremental compilation, and its caches were the larger
  # part of the target folder: a CI run once stopped on "No space left on device".
  export CARGO_INCREMENTAL=0
  phase "disk before the build"
  df -h . "${TMPDIR:-/tmp}" || true
fi

phase "the agent SDK pulls no database driver (DESIGN.md: dependencies flow one way)"
sdk_tree=$(cargo tree --locked -q -p rollup-client -e normal) # a failing cargo tree fails the run
if grep -E 'sqlx|postgres' <<<"$sdk_tree"; then
  echo "error: rollup-client depends on a database driver (above): depend on rollup-l1-client, not rollup-bridge" >&2
  exit 1
fi

phase "L1 contracts: committed artifacts match the sources"
scripts/check-artifacts.sh

phase "L1 contracts: forge test"
scripts/forge-test.sh

phase "cargo fmt --check"
cargo fmt --all --check

# Lints and the build are one compilation. `cargo clippy` is `cargo check` with clippy-driver
# as the workspace members' compiler, and that check compiled every dependency a second time
# in metadata-only mode (7 of a cold run's 38 minutes), which the build then compiled again in
# full. clippy-driver is rustc with the lints added, so the build runs the lints itself, through
# cargo-clippy's own interface: the driver as RUSTC_WORKSPACE_WRAPPER (workspace members only,
# so every dependency is compiled once, by rustc) and its arguments in CLIPPY_ARGS. Both stay
# exported for every later cargo command of this run, whose units are then the same and fresh.
# The SDK, CLI and loadtest end-to-end tests start the rollup-node built beside them on a fresh
# database (devkit::node), and the exodus test runs the `rollup` wallet, so the binaries are
# built here too (scripts/build-bins.sh: the features and selection of `cargo test`, so
# nothing is compiled twice), with the benches: clippy's `--all-targets` (there is no example).
phase "building every target, clippy's lints included (warnings are errors)"
RUSTC_WORKSPACE_WRAPPER=$(command -v clippy-driver) || {
  echo "error: clippy-driver not found (rustup component add clippy)" >&2
  exit 1
}
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
scripts/build-bins.sh --benches

phase "cargo test"
cargo test --workspace --all-features --locked --no-fail-fast

phase "independent gRPC client (Python grpcio, reflection v1alpha and v1)"
interop/run.sh

phase "the explorer in a headless browser (Debian chromium, puppeteer-core) against a devnet"
interop/explorer/run.sh

if [ "${CI:-}" = "true" ]; then
  phase "disk after the run"
  df -h . "${TMPDIR:-/tmp}" || true
  du -sh target 2>/dev/null || true
fi
phase "done"
