#!/usr/bin/env bash
# Set up (if needed) and run the test suite. Extra arguments go to pytest (e.g. -m "not slow"), one pass.
# Without arguments: the whole suite on the embedded Delta backend, then the job tests marked
# `both_backends` again on the native one (delta-spark), DRIFTLINE_STORAGE_BACKEND telling both passes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${DRIFTLINE_VENV:-.venv}"

run() {
  set +e
  "$VENV/bin/python" -m pytest --durations=25 "$@"
  local rc=$?
  set -e
  if [ "$rc" -eq 5 ]; then
    echo "test: pytest collected no tests; that is a failure" >&2
    return 1
  fi
  return "$rc"
}

if [ "$#" -gt 0 ]; then
  run "$@"
  exit $?
fi
echo "test: pass 1 of 2: the whole suite, embedded backend (delta-rs)" >&2
rc1=0; DRIFTLINE_STORAGE_BACKEND=embedded run || rc1=$?
echo "test: pass 2 of 2: the job tests again, native backend (delta-spark)" >&2
rc2=0; DRIFTLINE_STORAGE_BACKEND=native run -m both_backends || rc2=$?
echo "test: embedded pass exit $rc1, native pass exit $rc2" >&2
[ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ]
