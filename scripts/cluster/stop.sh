#!/usr/bin/env bash
# Stop the local standalone cluster started by scripts/cluster/start.sh: workers first (with their
# executors and Python workers: each daemon's whole process group), then the master. TERM, then
# KILL after $DRIFTLINE_CLUSTER_STOP_WAIT seconds (default 20). Safe to run when nothing runs.
#
#   scripts/cluster/stop.sh [--state-dir DIR]
set -euo pipefail
source "$(dirname "$0")/common.sh"

while [ $# -gt 0 ]; do
  case "$1" in
    --state-dir) STATE="${2:-}"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die 2 "unknown option $1 (expected --state-dir)" ;;
  esac
done
STATE="$(absolute "$STATE")"
found=0
for f in "$STATE"/worker-*.pid "$STATE/master.pid"; do
  [ -e "$f" ] || continue
  found=1
  stop_group "$f"
done
rm -f "$STATE/master.url" "$STATE/master-ui.url"
if [ "$found" -eq 1 ]; then say "stopped the cluster of $STATE"; else say "no cluster running from $STATE"; fi
