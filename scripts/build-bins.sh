#!/usr/bin/env bash
# Builds every binary of the workspace (node, wallet, prover, devkit, loadtest, the paid demo
# API), debug by default or `--release`.
#
#   scripts/build-bins.sh            # target/debug
#   scripts/build-bins.sh --release  # target/release
#
# Why one script: cargo resolves features per command line, and a dependency built with other
# features is compiled again (minutes at opt-level 3 on two cores). `-p rollup-x402 --features
# demo` alone resolves tokio, hyper and axum differently from a workspace build, and a plain
# `cargo build` differently from `cargo test`, whose dev-dependencies (proptest, criterion)
# add features to rand, regex and zerocopy, and so to plonky2, sqlx and everything above them.
# A debug build here therefore builds the tests too (`--tests`), with the selection and
# features of `cargo test --workspace --all-features`: scripts/test.sh, scripts/devnet.sh and
# interop/run.sh all build through here, and whichever runs second finds everything built.
# A release build (the devnet's default) needs no tests and builds the binaries only.
# (`--all-features` turns on rollup-x402's `paywall` and `demo`, the only features here.)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --release ]; then
  exec cargo build --locked -q --workspace --bins --all-features --release
fi
exec cargo build --locked -q --workspace --bins --tests --all-features "$@"
