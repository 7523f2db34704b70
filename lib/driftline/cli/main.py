"""The ``driftline`` command: every job as a subcommand, plus registry, report and demo commands."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

import driftline
from driftline.cli.runner import JOBS, run_job
from driftline.context import code_version

# Commands that are not jobs: (summary, issue that builds them, "module:function" taking argv or
# None while not built). An unbuilt command exits 2 with a line saying so.
COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "models": ("list registered versions, promote a version, roll back the champion", "[training]",
               "driftline.registry.cli:models_command"),
    "report": ("print the path of the HTML monitoring report of a run", "[monitoring]",
               "driftline.monitoring.cli:report_command"),
    "jar": ("build driftline's JVM profile fold (needs a JDK) and print the jar's path, for spark-submit --jars",
            "[monitoring]", "driftline.jvm.cli:jar_command"),
    "demo": ("generate a drifting scenario and run the pipeline on it", "[demo]", "driftline.demo.run:demo_command"),
    "schedule": ("render the pipeline for cron, Airflow or Databricks Workflows", "[retrain]",
                 "driftline.pipeline.schedulers:schedule_command"),
}


def usage() -> str:
    width = max(map(len, [*JOBS, *COMMANDS]))
    jobs = "\n".join(f"  {name:<{width}}  {spec.summary}" for name, spec in JOBS.items())
    cmds = "\n".join(f"  {name:<{width}}  {summary}" for name, (summary, _, _) in COMMANDS.items())
    return (
        "usage: driftline <command> [options]\n\n"
        "Parameterized Spark jobs that keep a batch ML model honest: features, scoring, drift and\n"
        "quality monitoring, retraining behind a promotion gate. All outputs are Delta tables.\n\n"
        f"jobs (each takes --model NAME and --date D or --from D1 --to D2):\n{jobs}\n\n"
        f"other commands:\n{cmds}\n\n"
        "options:\n  -h, --help     show this help; `driftline <command> --help` explains a command\n"
        "  --version      print the driftline version\n\n"
        "exit codes: 0 ok · 1 unexpected error · 2 configuration/usage/environment · 3 data-quality gate\n"
    )


def _not_built(name: str, issue: str) -> Callable[[Sequence[str]], int]:
    def command(argv: Sequence[str]) -> int:
        if any(a in ("-h", "--help") for a in argv):
            print(f"usage: driftline {name} ...\n\n{COMMANDS[name][0]}.\nNot built yet (planned in issue {issue}).")
            return 0
        print(f"driftline {name}: error: the {name} command is not built yet (planned in issue {issue}); "
              "nothing was run", file=sys.stderr)
        return 2
    return command


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``driftline`` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(usage(), file=sys.stderr)
        return 2
    command, rest = args[0], args[1:]
    if command in ("-h", "--help", "help"):
        print(usage())
        return 0
    if command == "--version":
        print(f"driftline {driftline.__version__} ({code_version()})")
        return 0
    if command in JOBS:
        return run_job(command, rest)
    if command in COMMANDS:
        _, issue, target = COMMANDS[command]
        if target is None:
            return _not_built(command, issue)(rest)
        module, _, func = target.partition(":")
        return int(getattr(importlib.import_module(module), func)(rest))
    known = ", ".join([*JOBS, *COMMANDS])
    print(f"driftline: error: expected a command ({known}), found {command!r}; see driftline --help",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
