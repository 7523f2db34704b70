#!/usr/bin/env bash
# Build ./.venv-nannyml (or $NANNYML_VENV) once: NannyML 0.13.1, the test oracle of driftline's estimated
# performance (CBPE, `driftline.monitoring.estimated`). It lives in its own venv and only ever runs in a
# subprocess (scripts/oracles/nannyml_cbpe.py): importing it in the test process would turn Spark's ANSI mode
# off (FLAML's import) and post usage to segment.io (docs/research/cbpe/README.md). Re-running is cheap: nothing
# is installed when this script and constraints.txt have not changed since the last successful build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${NANNYML_VENV:-.venv-nannyml}"
PY="${PYTHON:-python3}"
export NML_DISABLE_USAGE_LOGGING=1

stamp_value="$(cat scripts/nannyml_oracle.sh constraints.txt | sha256sum | cut -c1-16)"
stamp="$VENV/.nannyml-installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_value" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi
echo "nannyml_oracle: installing nannyml 0.13.1 into $VENV (first run takes a minute or two, ~2 GB)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade "pip>=24" >&2
# NannyML imports statsmodels without declaring it
"$VENV/bin/python" -m pip install --quiet -c constraints.txt "nannyml==0.13.1" statsmodels >&2
"$VENV/bin/python" -c "import nannyml" >/dev/null
echo "$stamp_value" > "$stamp"
