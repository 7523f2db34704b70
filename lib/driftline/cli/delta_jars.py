"""``python -m driftline.cli.delta_jars fetch``: scripts/setup.sh's step that installs the delta-spark jars.

Prints one line per jar fetched (or the reason there is none to fetch) on stderr; exit 2 with one line when a
download fails or its SHA-1 is not the published one (`driftline.jvm.delta.fetch`).
"""

from __future__ import annotations

import sys

from driftline.errors import EnvironmentProblem
from driftline.jvm import delta


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["fetch"]:
        print("usage: python -m driftline.cli.delta_jars fetch", file=sys.stderr)
        return 2
    if not delta.expected_jars():
        print(f"delta-spark: Delta publishes no build for pyspark {delta.spark_minor()}; the embedded backend is used",
              file=sys.stderr)
        return 0
    try:
        jars = delta.fetch()
    except EnvironmentProblem as exc:
        print(f"setup: {exc}", file=sys.stderr)
        return 2
    for jar in jars:
        print(f"delta-spark jar: {jar}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
