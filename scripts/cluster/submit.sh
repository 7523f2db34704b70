#!/usr/bin/env bash
# Submit a driftline job to the local standalone cluster started by scripts/cluster/start.sh.
#
#   scripts/cluster/submit.sh [--state-dir DIR] [--executor-memory 1g] [--total-executor-cores N]
#                             [--conf KEY=VALUE ...] JOB [job options: --model M --date D ...]
#
# Runs spark-submit --master <the cluster> --deploy-mode client jobs/JOB.py with the venv's Python
# on the driver and the executors; returns the job's exit code (0 ok, 1 error, 2 usage, 3 quality gate).
set -euo pipefail
source "$(dirname "$0")/common.sh"

EXEC_MEMORY=1g CORES="" EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --state-dir) STATE="${2:-}"; shift 2 ;;
    --executor-memory) EXEC_MEMORY="${2:-}"; shift 2 ;;
    --total-executor-cores) CORES="${2:-}"; shift 2 ;;
    --conf) EXTRA+=(--conf "${2:-}"); shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die 2 "unknown option $1 before the job name (expected --state-dir, --executor-memory, --total-executor-cores, --conf)" ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || die 2 "expected a job name (e.g. score) and its options, found none"
JOB="$1"; shift
[[ "$JOB" =~ ^[a-z_]+$ ]] && [ -f "$ROOT/jobs/$JOB.py" ] || die 2 "expected a job of $ROOT/jobs (e.g. score, monitor), found '$JOB'"
need_venv
STATE="$(absolute "$STATE")"
[ -f "$STATE/master.url" ] && spark_group_alive "$(cat "$STATE/master.pid" 2>/dev/null)" \
  || die 2 "expected a running cluster in $STATE, found none (start one with scripts/cluster/start.sh)"
[ -n "$CORES" ] && EXTRA+=(--total-executor-cores "$CORES")

# driftline's JVM profile fold (compiled once by the JDK's javac; without one the Arrow fold is used)
if JAR="$("$VENV/bin/driftline" jar)"; then
  EXTRA+=(--jars "$JAR")
else
  echo "submit: no JVM profile fold (the line above says why), profiles use the Arrow fold" >&2
fi

export SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON="$PY" PYSPARK_DRIVER_PYTHON="$PY"
export PATH="$VENV/bin:$PATH"
unset SPARK_HOME
exec "$VENV/bin/spark-submit" --master "$(cat "$STATE/master.url")" --deploy-mode client \
  --name "driftline-$JOB" --driver-memory 1g --executor-memory "$EXEC_MEMORY" \
  --conf spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1 \
  --conf spark.ui.enabled=false --conf spark.ui.showConsoleProgress=false \
  --conf "spark.pyspark.python=$PY" --conf "spark.pyspark.driver.python=$PY" \
  --conf spark.driver.extraJavaOptions=-Duser.timezone=UTC \
  --conf spark.executor.extraJavaOptions=-Duser.timezone=UTC \
  --conf spark.executorEnv.OMP_NUM_THREADS=1 \
  "${EXTRA[@]}" "$ROOT/jobs/$JOB.py" "$@"
