#!/usr/bin/env bash
# Builds every binary of the workspace (node, wallet, prover, devkit, loadtest, the paid demo
# API), debug by default or `--release`.
#
#   scripts/build-bins.sh            # target/debug
#   scripts/build-bins.sh --release  # target/release
#
# Why one script: cargo resolves features per command line. `-p rollup-x402 --features demo`
# alone resolves tokio, hyper, axum and their kin with other features than a workspace build,
# and so compiles them a second time (minutes at opt-level 3 on two cores). scripts/test.sh,
# scripts/devnet.sh and interop/run.sh all build through here, with the same selection and
# features as `cargo test --workspace --all-features`, so whichever runs second finds everything
# built. (`--all-features` turns on rollup-x402's `paywall` and `demo`, the only features in
# the workspace.)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo build --locked -q --workspace --bins --all-features "$@"
