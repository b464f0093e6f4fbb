#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls exactly this).
# Everything it needs is installed by scripts/ensure-tools.sh, so it works on a clean machine.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-tools.sh

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --locked --no-fail-fast
