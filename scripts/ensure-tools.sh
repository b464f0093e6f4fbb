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
