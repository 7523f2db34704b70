#!/usr/bin/env bash
# Set up (if needed) and run the demo: a drifting churn scenario through the pipeline on the
# embedded default. Options go to `driftline demo` (--days, --customers, --seed, --workspace).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${DRIFTLINE_VENV:-.venv}"
exec "$VENV/bin/driftline" demo "$@"
