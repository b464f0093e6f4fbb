#!/usr/bin/env bash
# The main job: a local devnet (Postgres, the node, an L1 node, demo agents).
# The node arrives with the sequencer issue; until then this says so instead of pretending.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-tools.sh
if [ ! -f sequencer/src/main.rs ] && [ ! -d sequencer/src/bin ]; then
  echo "devnet: the sequencer node (rollup-node) is not built yet; see README 'Status'." >&2
  echo "devnet: what exists today is the state core: run scripts/test.sh." >&2
  exit 2
fi
