# Shared by scripts/cluster/{start,stop,submit,status}.sh (sourced, not run).
# A local Spark standalone cluster started with pyspark's own spark-class: no download, no sbin
# scripts, everything bound to 127.0.0.1, pid/log/url files in one state folder.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${DRIFTLINE_VENV:-$ROOT/.venv}"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
PY="$VENV/bin/python"
STATE="${DRIFTLINE_CLUSTER_DIR:-$ROOT/.driftline/cluster}"
PROG="$(basename "$0")"

die() {  # die CODE MESSAGE: one line on stderr, then exit
  echo "cluster/$PROG: error: $2" >&2
  exit "$1"
}

say() { echo "cluster/$PROG: $*" >&2; }

need_venv() {
  [ -x "$PY" ] || die 2 "expected a venv with pyspark at $VENV, found no $PY (run scripts/setup.sh)"
  [ -x "$VENV/bin/spark-class" ] || die 2 "expected pyspark's spark-class at $VENV/bin/spark-class, found none"
}

absolute() {  # absolute PATH (the folder need not exist)
  case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac
}

# The process group of a recorded pid, if it still holds a Spark daemon we started.
spark_group_alive() {
  local pid="$1"
  [ -n "$pid" ] || return 1
  pgrep -g "$pid" >/dev/null 2>&1 || return 1
  # a live leader must still be our JVM (guards against a recycled pid)
  if kill -0 "$pid" 2>/dev/null; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "org.apache.spark.deploy" || return 1
  fi
  return 0
}

# Stop the process group led by the pid in FILE: TERM, wait, then KILL; remove FILE.
stop_group() {
  local file="$1" pid waited=0
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  if spark_group_alive "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    while pgrep -g "$pid" >/dev/null 2>&1 && [ "$waited" -lt "${DRIFTLINE_CLUSTER_STOP_WAIT:-20}" ]; do
      sleep 1; waited=$((waited + 1))
    done
    if pgrep -g "$pid" >/dev/null 2>&1; then
      say "$(basename "$file" .pid) (process group $pid) still running after ${waited}s: sending KILL"
      kill -KILL -- "-$pid" 2>/dev/null || true
      sleep 1
    fi
  fi
  rm -f "$file"
}

# JSON status of the master web UI (empty when it does not answer).
master_json() {
  "$PY" - "$1" <<'PYEOF' 2>/dev/null
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1].rstrip("/") + "/json/", timeout=3) as r:
        print(r.read().decode())
except Exception:
    pass
PYEOF
}
