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

phase "cargo clippy (warnings are errors)"
# One pass with every feature (rollup-x402's paywall and demo API included): a second pass
# with other features re-checks half the dependency tree. (Running the lints inside the build
# instead, clippy-driver as the workspace's compiler, was measured no faster: this pass
# compiles the proc-macros and build scripts the build then reuses, and checking the other
# dependencies is cheap; docs/BENCHMARKS.md, "The test command's compile phases".)
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

# The SDK, CLI and loadtest end-to-end tests start the rollup-node built beside them on a
# fresh database (devkit::node), and the exodus test runs the `rollup` wallet, so build the
# binaries first: without them they would have nothing to test. The same features as every
# other build here (scripts/build-bins.sh), so that nothing is compiled twice.
phase "building the binaries"
scripts/build-bins.sh

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
