"""``driftline jar``: build driftline's JVM code if needed and print the jar's path (for ``spark-submit --jars``).

Exit codes: 0 the path is printed · 2 the jar cannot be built (no JDK, javac failed); the error is one line.
"""

from __future__ import annotations

from collections.abc import Sequence

from driftline.cli.runner import CliParser, command
from driftline.errors import EnvironmentProblem
from driftline.jvm import JarBuildError, build_jar


def jar_command(argv: Sequence[str]) -> int:
    """``driftline jar``: build the jar if needed and print its path (for ``spark-submit --jars``)."""
    parser = CliParser(
        prog="driftline jar",
        description="Compile driftline's JVM code (the profile fold of the monitor and of training) with this "
                    "machine's javac against pyspark's jars, unless already cached, and print the jar's path. "
                    "driftline puts it on spark.jars itself when it starts Spark; under spark-submit pass it "
                    "with --jars \"$(driftline jar)\" (without it, profiles use the slower Arrow fold).",
        epilog="exit codes: 0 the path is printed · 2 the jar cannot be built (no JDK, javac failed)",
    )

    def body(_: object) -> int:
        try:
            path = build_jar()
        except (JarBuildError, OSError) as exc:
            raise EnvironmentProblem(str(exc)) from exc
        print(path)
        return 0

    return command("driftline jar", parser, argv, body)
