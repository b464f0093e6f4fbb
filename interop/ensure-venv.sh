#!/usr/bin/env bash
# Creates the Python venv of the independent gRPC client (interop/) and installs the pinned
# packages of interop/requirements.txt from PyPI, idempotently: when the venv exists and was
# filled from the same requirements file, it returns at once. Prints nothing on that fast path.
#
#   interop/ensure-venv.sh            # venv in <workspace>/.venv-interop
#   INTEROP_VENV=/some/dir interop/ensure-venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${INTEROP_VENV:-.venv-interop}
REQ=interop/requirements.txt
STAMP="$VENV/.requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)

if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ] \
  && "$VENV/bin/python" -c 'import grpc, grpc_reflection, grpc_health' 2>/dev/null; then
  exit 0
fi

need() { command -v "$1" >/dev/null 2>&1; }
if ! need python3; then
  echo "error: python3 not found; the gRPC interop test needs Python 3." >&2
  exit 1
fi

echo "==> Python venv for the gRPC interop test ($VENV, pinned packages from $REQ)" >&2
rm -rf "$VENV"
# `python3 -m venv` needs the venv and ensurepip modules, which Debian ships separately
# (python3-venv): without them venv creation fails, so install them and try once more.
if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
  rm -rf "$VENV"
  if [ "$(id -u)" = 0 ] && need apt-get; then
    echo "==> installing python3-venv (apt-get install python3-venv)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$VENV"
  else
    echo "error: 'python3 -m venv' does not work. Install it (e.g. 'sudo apt-get install python3-venv')." >&2
    exit 1
  fi
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --require-virtualenv -r "$REQ"
echo "$want" >"$STAMP"
