"""The ``driftline`` command: every job as a subcommand, plus registry, report and demo commands."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import driftline
from driftline.cli.runner import JOBS, run_job
from driftline.context import code_version

# Commands that are not jobs: (summary, issue that builds them). They exit 2 until built.
COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("list registered versions, promote a version, roll back the champion", "[training]"),
    "report": ("print the path of the HTML monitoring report of a run", "[monitoring]"),
    "demo": ("generate a drifting scenario and run the whole pipeline on it, day by day", "[demo]"),
}


def usage() -> str:
    width = max(map(len, [*JOBS, *COMMANDS]))
    jobs = "\n".join(f"  {name:<{width}}  {spec.summary}" for name, spec in JOBS.items())
    cmds = "\n".join(f"  {name:<{width}}  {summary}" for name, (summary, _) in COMMANDS.items())
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
        return _not_built(command, COMMANDS[command][1])(rest)
    known = ", ".join([*JOBS, *COMMANDS])
    print(f"driftline: error: expected a command ({known}), found {command!r}; see driftline --help",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
