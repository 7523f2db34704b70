#!/usr/bin/env bash
# Create ./.venv (or $DRIFTLINE_VENV) and install driftline with the pinned versions from
# constraints.txt. Re-running is cheap: nothing is installed when pyproject.toml and
# constraints.txt have not changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${DRIFTLINE_VENV:-.venv}"
PY="${PYTHON:-python3}"
EXTRAS="${DRIFTLINE_EXTRAS:-dev}"

if ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
  echo "setup: Java 17+ is required by Spark 4 and was not found; on Debian: apt-get install -y openjdk-17-jdk-headless" >&2
  exit 2
fi
"$PY" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)' || {
  echo "setup: Python 3.11 or 3.12 is required, found $("$PY" --version 2>&1)" >&2; exit 2; }

stamp_value="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)-$EXTRAS"
stamp="$VENV/.driftline-installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_value" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi
if ! command -v javac >/dev/null 2>&1 && [ ! -x "${JAVA_HOME:-/nonexistent}/bin/javac" ]; then
  echo "setup: note: no javac (a JRE, not a JDK): profiles will use the slower Arrow fold; on Debian: apt-get install -y openjdk-17-jdk-headless" >&2
fi
echo "setup: installing driftline and its pinned dependencies into $VENV (first run takes a few minutes)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade "pip>=24" >&2
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[$EXTRAS]" >&2
# delta-spark's JVM jars for the pinned pyspark, from Maven Central, SHA-1 checked, into the venv (offline afterwards)
"$VENV/bin/python" -m driftline.cli.delta_jars fetch
echo "$stamp_value" > "$stamp"
