#!/usr/bin/env bash
# Start a local Spark standalone cluster (one master, N workers) on 127.0.0.1 with pyspark's own
# spark-class: no download. Prints the master URL (spark://127.0.0.1:PORT) on stdout once every
# worker has registered. Stop it with scripts/cluster/stop.sh (same --state-dir).
#
#   scripts/cluster/start.sh [--workers N] [--cores C] [--memory M] [--state-dir DIR] [--timeout SECONDS]
#
# defaults: 2 workers × 1 core × 1g (each worker offers that much to executors), state folder
# $DRIFTLINE_CLUSTER_DIR or .driftline/cluster. Workers run Python with the venv's interpreter.
set -euo pipefail
source "$(dirname "$0")/common.sh"

WORKERS=2 CORES=1 MEMORY=1g TIMEOUT=180
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) WORKERS="${2:-}"; shift 2 ;;
    --cores) CORES="${2:-}"; shift 2 ;;
    --memory) MEMORY="${2:-}"; shift 2 ;;
    --state-dir) STATE="${2:-}"; shift 2 ;;
    --timeout) TIMEOUT="${2:-}"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die 2 "unknown option $1 (expected --workers, --cores, --memory, --state-dir, --timeout)" ;;
  esac
done
[[ "$WORKERS" =~ ^[1-9][0-9]?$ ]] || die 2 "--workers: expected a number 1-99, found '$WORKERS'"
[[ "$CORES" =~ ^[1-9][0-9]*$ ]] || die 2 "--cores: expected a whole number >= 1, found '$CORES'"
[[ "$MEMORY" =~ ^[1-9][0-9]*[mMgG]$ ]] || die 2 "--memory: expected a size like 1g or 768m, found '$MEMORY'"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die 2 "--timeout: expected seconds >= 1, found '$TIMEOUT'"
need_venv
command -v java >/dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ] || die 2 "expected Java 17+ (java on PATH or JAVA_HOME), found none"
STATE="$(absolute "$STATE")"

if [ -f "$STATE/master.pid" ] && spark_group_alive "$(cat "$STATE/master.pid")"; then
  die 1 "a cluster is already running from $STATE at $(cat "$STATE/master.url" 2>/dev/null || echo '?') (stop it with scripts/cluster/stop.sh --state-dir $STATE)"
fi
for f in "$STATE"/*.pid; do [ -e "$f" ] && stop_group "$f"; done   # leftovers of a crashed run
mkdir -p "$STATE/logs" "$STATE/work" "$STATE/local"
rm -f "$STATE/master.url" "$STATE/master-ui.url"

# free ports: master RPC, master UI, one UI per worker (held together so they differ)
read -r -a PORTS <<<"$("$PY" - "$((2 + WORKERS))" <<'PYEOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PYEOF
)"
MASTER_PORT="${PORTS[0]}" UI_PORT="${PORTS[1]}"
MASTER_URL="spark://127.0.0.1:$MASTER_PORT"
UI_URL="http://127.0.0.1:$UI_PORT"

export SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_HOSTNAME=127.0.0.1
export SPARK_LOCAL_DIRS="$STATE/local" SPARK_DAEMON_MEMORY="${SPARK_DAEMON_MEMORY:-512m}"
export PYSPARK_PYTHON="$PY" PYSPARK_DRIVER_PYTHON="$PY"
export PATH="$VENV/bin:$PATH"
unset SPARK_HOME   # pyspark's bin scripts find their own installation

started=0
cleanup_on_failure() {
  if [ "$started" -eq 0 ]; then
    for f in "$STATE"/worker-*.pid "$STATE/master.pid"; do [ -e "$f" ] && stop_group "$f"; done
  fi
}
trap cleanup_on_failure EXIT

# setsid: each daemon leads its own process group (executors and Python workers included), so
# stop.sh can end the whole group; spark-class execs the JVM, so the recorded pid is the JVM.
setsid "$VENV/bin/spark-class" org.apache.spark.deploy.master.Master \
  --host 127.0.0.1 --port "$MASTER_PORT" --webui-port "$UI_PORT" \
  >"$STATE/logs/master.log" 2>&1 </dev/null &
echo $! >"$STATE/master.pid"
say "master starting at $MASTER_URL (web UI $UI_URL, log $STATE/logs/master.log)"

deadline=$((SECONDS + TIMEOUT))
until [ -n "$(master_json "$UI_URL")" ]; do
  spark_group_alive "$(cat "$STATE/master.pid")" || die 1 "the master exited during start-up; see $STATE/logs/master.log: $(tail -n 3 "$STATE/logs/master.log" | tr '\n' ' ')"
  [ "$SECONDS" -lt "$deadline" ] || die 1 "the master did not answer on $UI_URL within ${TIMEOUT}s; see $STATE/logs/master.log"
  sleep 1
done

for i in $(seq 1 "$WORKERS"); do
  mkdir -p "$STATE/work/worker-$i"
  setsid "$VENV/bin/spark-class" org.apache.spark.deploy.worker.Worker \
    --host 127.0.0.1 --webui-port "${PORTS[$((1 + i))]}" --cores "$CORES" --memory "$MEMORY" \
    --work-dir "$STATE/work/worker-$i" "$MASTER_URL" \
    >"$STATE/logs/worker-$i.log" 2>&1 </dev/null &
  echo $! >"$STATE/worker-$i.pid"
done
say "$WORKERS worker(s) starting ($CORES core(s), $MEMORY each), waiting until they registered"

alive=0
while :; do
  alive="$("$PY" -c 'import json,sys; t=sys.stdin.read(); print(json.loads(t).get("aliveworkers", 0) if t.strip() else 0)' \
    <<<"$(master_json "$UI_URL")")"
  [ "$alive" -ge "$WORKERS" ] && break
  for i in $(seq 1 "$WORKERS"); do
    spark_group_alive "$(cat "$STATE/worker-$i.pid")" || die 1 "worker $i exited during start-up; see $STATE/logs/worker-$i.log: $(tail -n 3 "$STATE/logs/worker-$i.log" | tr '\n' ' ')"
  done
  [ "$SECONDS" -lt "$deadline" ] || die 1 "expected $WORKERS registered worker(s) within ${TIMEOUT}s, found $alive; see $STATE/logs"
  sleep 1
done

echo "$MASTER_URL" >"$STATE/master.url"
echo "$UI_URL" >"$STATE/master-ui.url"
started=1
say "cluster ready: $MASTER_URL with $alive worker(s); web UI $UI_URL; submit with scripts/cluster/submit.sh JOB --model M --date D"
echo "$MASTER_URL"
